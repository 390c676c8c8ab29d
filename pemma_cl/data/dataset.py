"""Case records -> tensors the networks read, wrapped as Avalanche datasets with task labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.benchmarks.utils.data_attribute import DataAttribute, TaskLabels
from monai.transforms import ScaleIntensityRange
from torch.utils.data import Dataset

from pemma_cl.data.description import ClinicalField
from pemma_cl.data.ehr import ehr_vector
from pemma_cl.data.patches import SAMPLINGS, WHOLE, serve, served_shape
from pemma_cl.data.records import EHR, MODALITIES, CaseRecord

#: CT soft-tissue window (HU) mapped to [0, 1], clipped; PET SUV scaled by 1/10, not clipped (hot spots stay hot).
CT_WINDOW = ScaleIntensityRange(a_min=-200.0, a_max=300.0, b_min=0.0, b_max=1.0, clip=True)
PET_SCALE = ScaleIntensityRange(a_min=0.0, a_max=10.0, b_min=0.0, b_max=1.0, clip=False)


def case_tensors(case: CaseRecord) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised input [2, D, H, W] (CT, PET) float32 and label [1, D, H, W] int64 of one case."""
    # Plain tensors, not MONAI MetaTensors: the metadata is not needed and slows every forward pass.
    ct = torch.as_tensor(CT_WINDOW(case.ct.astype(np.float32))).as_subclass(torch.Tensor)
    pet = torch.as_tensor(PET_SCALE(case.pet.astype(np.float32))).as_subclass(torch.Tensor)
    x = torch.stack([ct, pet]).float()
    y = torch.as_tensor(case.label.astype(np.int64))[None]
    return x, y


class CaseDataset(Dataset):
    """Pre-normalised cases; each item is ``(x, y, modality_mask, survival, ehr)``, its volumes served by a
    sampling rule of :mod:`pemma_cl.data.patches` (a volume equal to the patch is served as it is).

    ``survival`` is ``[RFS days, relapse]`` float32 (NaN without an endpoint); ``ehr`` is the case's EHR vector
    (:func:`pemma_cl.data.ehr.ehr_vector`). A modality the experience does not have is absent from the data
    itself, not only from the mask: its channel of ``x`` is all zeros (and without ``ehr`` every clinical field is
    missing), so no model can read it, whatever it does with the mask.

    Args:
        cases: the case records.
        modalities: modalities available in this experience (``ct``, ``pet``, and ``ehr``); the mask marks the
            missing images.
        tensors: normalised ``(x, y)`` per case id, shared between the datasets of a stream so that a case used
            by several experiences is held once; filled as needed.
        patch: the network's cubic patch side; None serves every volume whole.
        sampling: one of :data:`~pemma_cl.data.patches.SAMPLINGS`: ``random`` (training), ``centred`` (prognosis)
            or ``whole`` (evaluation).
        clinical_fields: the data's clinical fields (:attr:`DatasetDescription.clinical
            <pemma_cl.data.description.DatasetDescription.clinical>`); none: an empty EHR vector.
    """

    def __init__(self, cases: Sequence[CaseRecord], modalities: Sequence[str],
                 tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None, patch: int | None = None,
                 sampling: str = WHOLE, clinical_fields: Mapping[str, ClinicalField] | None = None) -> None:
        images = [m for m in modalities if m in MODALITIES]
        unknown = sorted(set(modalities) - set(MODALITIES) - {EHR})
        if unknown or not images:
            raise ValueError(f"modalities must hold a non-empty subset of {MODALITIES} (and optionally "
                             f"{EHR!r}), got {tuple(modalities)}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        self.patch, self.sampling = patch, sampling
        tensors = {} if tensors is None else tensors
        self.case_ids = [c.case_id for c in cases]
        self.centres = [c.centre for c in cases]
        self.mask = torch.tensor([m in images for m in MODALITIES])
        self.present = self.mask.to(torch.float32)[:, None, None, None]
        for case in cases:
            if case.case_id not in tensors:
                tensors[case.case_id] = case_tensors(case)
        self.images = [tensors[c.case_id] for c in cases]
        #: The spatial shape of each item's volumes as served.
        self.shapes = [served_shape(y.shape[1:], patch, sampling) for _, y in self.images]
        nan = float("nan")
        self.survival = [torch.tensor([c.rfs_days if c.has_endpoint else nan, c.relapse if c.has_endpoint else nan],
                                      dtype=torch.float32) for c in cases]
        self.ehr = [torch.from_numpy(ehr_vector(c.clinical, clinical_fields or {}, available=EHR in modalities))
                    for c in cases]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        x, y = serve(*self.images[index], self.patch, self.sampling)
        return x * self.present, y, self.mask, self.survival[index], self.ehr[index]


#: Name of the data attribute holding each item's served volume shape (the evaluation loader batches by it).
SHAPES_ATTRIBUTE = "volume_shapes"


def avalanche_dataset(cases: Sequence[CaseRecord], modalities: Sequence[str], task: int,
                      tensors: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None, patch: int | None = None,
                      sampling: str = WHOLE, clinical_fields: Mapping[str, ClinicalField] | None = None
                      ) -> AvalancheDataset:
    """An Avalanche dataset of the cases (:class:`CaseDataset`) whose mini-batches end with the task label; its data
    attribute :data:`SHAPES_ATTRIBUTE` holds each item's volume shape."""
    data = CaseDataset(cases, modalities, tensors, patch, sampling, clinical_fields)
    return AvalancheDataset([data], data_attributes=[TaskLabels([task] * len(data)),
                                                     DataAttribute(data.shapes, SHAPES_ATTRIBUTE)])
