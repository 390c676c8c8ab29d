"""What a data set is, read from the data and carried through a run instead of module constants.

A :class:`DatasetDescription` holds the facts every layer above the data needs:

* ``structures``: the foreground labels, value -> name (nnU-Net's ``dataset.json`` ``labels`` without background):
  the network's output channels are background plus one per structure; Dice, HD95 and the per-case rows are per
  structure, and ``aggregated`` is the mean over them. Values are 1, 2, ..., K (nnU-Net's rule: consecutive).
* ``groups``: the case table's grouping columns (``centre``, ``tracer``, ...) that streams select experiences by.
* ``normalisation``: how each image modality's intensities map to the network's input range (CT: a Hounsfield
  window; PET: SUV scaled, not clipped, so hot spots stay hot).
* ``clinical``: the clinical fields a prognosis model reads (the EHR vector, :mod:`pemma_cl.data.ehr`), each with
  the (centre, scale) its recorded values are mapped through; none for data without clinical records.

Every data source builds one (the built-in cohort and HECKTOR 2022 describe GTVp and GTVn; an nnU-Net folder says
what its ``dataset.json`` says); a run stores it in its manifest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The grouping column every source has: the centre a case comes from (a stream's ``centres:`` shorthand reads it).
CENTRE_COLUMN = "centre"


@dataclass(frozen=True)
class IntensityWindow:
    """A linear map of ``[low, high]`` to ``[0, 1]``, clipped or not (MONAI's ``ScaleIntensityRange``)."""

    low: float
    high: float
    clip: bool

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "clip": self.clip}


@dataclass(frozen=True)
class ClinicalField:
    """A clinical field's linear map into the EHR vector: ``(value - centre) / scale``."""

    centre: float
    scale: float

    def to_dict(self) -> dict[str, float]:
        return {"centre": self.centre, "scale": self.scale}


#: The default normalisation of each image modality: CT's soft-tissue window in HU, PET's SUV / 10, not clipped.
DEFAULT_NORMALISATION: dict[str, IntensityWindow] = {
    "ct": IntensityWindow(-200.0, 300.0, clip=True),
    "pet": IntensityWindow(0.0, 10.0, clip=False),
}


@dataclass(frozen=True)
class DatasetDescription:
    """The facts of one data set (see the module docstring).

    Attributes:
        name: a short name for tables and manifests (``synthetic``, ``hecktor``, the nnU-Net dataset's name).
        structures: ``{label value: structure name}`` of the foreground labels, values 1..K.
        groups: the grouping columns of its cases (always including :data:`CENTRE_COLUMN`).
        normalisation: the intensity window of each image modality (``ct``, ``pet``).
        clinical: the clinical fields of the EHR vector, in its order, with their maps (empty: no clinical record).
    """

    name: str
    structures: Mapping[int, str]
    groups: tuple[str, ...] = (CENTRE_COLUMN,)
    normalisation: Mapping[str, IntensityWindow] = field(default_factory=lambda: dict(DEFAULT_NORMALISATION))
    clinical: Mapping[str, ClinicalField] = field(default_factory=dict)

    def __post_init__(self) -> None:
        values = sorted(self.structures)
        if not values or values != list(range(1, len(values) + 1)):
            raise ValueError(f"structures must have the label values 1..K, got {values}")
        names = list(self.structures.values())
        if len(set(names)) != len(names) or "aggregated" in names or any(not str(n).strip() for n in names):
            raise ValueError(f"structure names must be distinct, non-empty and not 'aggregated', got {names}")
        if CENTRE_COLUMN not in self.groups:
            raise ValueError(f"groups must include {CENTRE_COLUMN!r}, got {self.groups}")
        if any(not f.scale > 0 for f in self.clinical.values()):
            raise ValueError(f"clinical scales must be positive, got {dict(self.clinical)}")
        object.__setattr__(self, "structures", {value: self.structures[value] for value in values})

    @property
    def structure_names(self) -> tuple[str, ...]:
        """The structures' names in label order."""
        return tuple(self.structures.values())

    @property
    def num_classes(self) -> int:
        """The network's output channels: background plus one per structure."""
        return 1 + len(self.structures)

    @property
    def ehr_size(self) -> int:
        """The EHR vector's length: a value and a missingness indicator per clinical field."""
        return 2 * len(self.clinical)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (a run's manifest and config hold it)."""
        return {"name": self.name, "structures": {str(k): v for k, v in self.structures.items()},
                "groups": list(self.groups),
                "normalisation": {m: w.to_dict() for m, w in self.normalisation.items()},
                "clinical": {name: f.to_dict() for name, f in self.clinical.items()}}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DatasetDescription:
        """The inverse of :meth:`to_dict`."""
        return cls(name=raw["name"], structures={int(k): v for k, v in raw["structures"].items()},
                   groups=tuple(raw["groups"]),
                   normalisation={m: IntensityWindow(**w) for m, w in raw["normalisation"].items()},
                   clinical={name: ClinicalField(**f) for name, f in raw.get("clinical", {}).items()})
