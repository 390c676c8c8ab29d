"""Case records -> tensors the networks read, wrapped as Avalanche datasets with task labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.benchmarks.utils.data_attribute import TaskLabels
from monai.transforms import ScaleIntensityRange
from torch.utils.data import Dataset

from pemma_cl.data.records import MODALITIES, CaseRecord

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


class SegmentationCases(Dataset):
    """Pre-normalised cases; each item is ``(x, y, modality_mask)``.

    A modality the experience does not have is absent from the data itself, not only from the mask: its
    channel of ``x`` is all zeros, so no model can read it, whatever it does with the mask.

    Args:
        cases: the case records.
        modalities: modalities available in this experience (``ct``, ``pet``); the mask marks the others missing.
    """

    def __init__(self, cases: Sequence[CaseRecord], modalities: Sequence[str]) -> None:
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown or not modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {tuple(modalities)}")
        self.case_ids = [c.case_id for c in cases]
        self.centres = [c.centre for c in cases]
        self.mask = torch.tensor([m in modalities for m in MODALITIES])
        present = self.mask.to(torch.float32)[:, None, None, None]
        self.items = [(x * present, y) for x, y in map(case_tensors, cases)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, y = self.items[index]
        return x, y, self.mask


def avalanche_dataset(cases: Sequence[CaseRecord], modalities: Sequence[str], task: int) -> AvalancheDataset:
    """An Avalanche dataset of the cases whose mini-batches end with the task label."""
    data = SegmentationCases(cases, modalities)
    return AvalancheDataset([data], data_attributes=[TaskLabels([task] * len(data))])
