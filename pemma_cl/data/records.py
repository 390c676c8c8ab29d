"""The in-memory case records every data source produces (one per case; a source's cases as :class:`LoadedData`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pemma_cl.data.description import CENTRE_COLUMN, DatasetDescription

#: The image modalities, in the order of the networks' input channels (0 CT, 1 PET).
MODALITIES: tuple[str, ...] = ("ct", "pet")
#: The clinical record as a modality of a prognosis experience (not an image channel).
EHR = "ehr"


@dataclass
class CaseRecord:
    """One patient: co-registered CT (HU) and PET (SUV) volumes on one grid, a label, clinical data, RFS endpoint.

    Arrays are indexed ``[z, y, x]``; ``spacing`` is in mm in the same order. ``groups`` holds the case's values of
    its data set's grouping columns other than the centre (``{"tracer": "PSMA"}``); :meth:`group` reads any of them.
    """

    case_id: str
    centre: str
    ct: np.ndarray
    pet: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    clinical: dict[str, float | int | None] = field(default_factory=dict)
    rfs_days: float | None = None
    relapse: int | None = None
    #: What generated a synthetic case (``volume_ml``, ``suv_max``, ``risk``: the true latent log-hazard); empty
    #: for real data. Only the prognosis ceilings read it, never a model.
    truth: dict[str, float] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)

    def group(self, column: str) -> str | None:
        """The case's value of a grouping column (``centre`` or one of :attr:`groups`); None if it has none."""
        return self.centre if column == CENTRE_COLUMN else self.groups.get(column)

    @property
    def has_endpoint(self) -> bool:
        """Whether the case has a recurrence-free survival time and a relapse flag (a prognosis case)."""
        return self.rfs_days is not None and self.relapse is not None


@dataclass
class LoadedData:
    """The cases of a data source.

    Attributes:
        cases: the usable case records.
        key: identifies the data (part of cache keys and of the manifest).
        description: what the data set is (its structures, grouping columns, normalisation).
        skipped: ``{case_id: reason}`` of cases left out (``--on-bad-case skip``); recorded in the manifest.
        test: the test cases when the source has them apart from ``cases`` (the built-in cohort's separately drawn
            ones, an nnU-Net dataset's imagesTs); None: the test cases are a share of ``cases``
            (:func:`pemma_cl.data.splits.split_cases`).
        drops_test_share: the built-in cohort only: its split's test share still stays out of training although
            ``test`` replaces it (its stored reference runs were made so); other sources train on every non-test
            case.
    """

    cases: list[CaseRecord]
    key: str
    description: DatasetDescription
    skipped: dict[str, str] = field(default_factory=dict)
    test: list[CaseRecord] | None = None
    drops_test_share: bool = False
