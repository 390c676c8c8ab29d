"""Names and paths of the official HECKTOR 2022 training folder and of its prepared cache.

The folder as the challenge distributes it::

    imagesTr/<CENTRE>-<NNN>__CT.nii.gz        CT in HU
    imagesTr/<CENTRE>-<NNN>__PT.nii.gz        PET in SUV (on its own, coarser grid)
    labelsTr/<CENTRE>-<NNN>.nii.gz            0 background, 1 GTVp, 2 GTVn (on the CT grid)
    hecktor2022_clinical_info_training.csv    one row per patient (CLINICAL_COLUMNS)
    hecktor2022_endpoint_training.csv         PatientID, Relapse, RFS (days); not every patient has a row

This module is imported by the command line and by :mod:`pemma_cl.run.config`, so it stays light (no numpy,
pandas or SimpleITK).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from pemma_cl.data.description import ClinicalField

#: HECKTOR 2022's label values and structures (0 background): the primary tumour and the lymph nodes. The built-in
#: synthetic cohort imitates them.
HEAD_AND_NECK_STRUCTURES: dict[int, str] = {1: "GTVp", 2: "GTVn"}
#: HECKTOR 2022's clinical fields, as :class:`~pemma_cl.data.records.CaseRecord.clinical` names them, with the
#: fixed (centre, scale) each recorded value is mapped through into the EHR vector (not fitted on any data, so no
#: statistic of the evaluated cases leaks into it). The built-in cohort records the same fields.
HEAD_AND_NECK_CLINICAL: dict[str, ClinicalField] = {name: ClinicalField(centre, scale) for name, (centre, scale) in {
    "age": (60.0, 10.0),
    "gender": (0.0, 1.0),
    "weight": (75.0, 15.0),
    "tobacco": (0.0, 1.0),
    "alcohol": (0.0, 1.0),
    "performance_status": (0.0, 1.0),
    "hpv_status": (0.0, 1.0),
    "surgery": (0.0, 1.0),
    "chemotherapy": (0.0, 1.0),
}.items()}
#: HECKTOR 2022 centres in the order the challenge lists them.
CENTRES: tuple[str, ...] = ("CHUM", "CHUP", "CHUS", "CHUV", "MDA", "HGJ", "HMR")

IMAGES_DIR = "imagesTr"
LABELS_DIR = "labelsTr"
CLINICAL_CSV = "hecktor2022_clinical_info_training.csv"
ENDPOINT_CSV = "hecktor2022_endpoint_training.csv"
ID_COLUMN = "PatientID"

#: Columns of the clinical table, in the official order, mapped to the ``CaseRecord.clinical`` keys
#: (``None``: bookkeeping columns that are not clinical data; the centre is taken from the PatientID).
CLINICAL_COLUMNS: dict[str, str | None] = {
    ID_COLUMN: None,
    "Task 1": None,
    "Task 2": None,
    "CenterID": None,
    "Gender": "gender",
    "Age": "age",
    "Weight": "weight",
    "Tobacco": "tobacco",
    "Alcohol": "alcohol",
    "Performance status": "performance_status",
    "HPV status (0=-, 1=+)": "hpv_status",
    "Surgery": "surgery",
    "Chemotherapy": "chemotherapy",
}
#: Gender as written in the table (``M``/``F``) -> the 1 (male) / 0 (female) coding of the cohort.
GENDER_CODES: dict[str, int] = {"M": 1, "F": 0}
#: Clinical keys holding a real number; every other clinical key holds an integer code.
REAL_FIELDS: frozenset[str] = frozenset({"age", "weight"})

RELAPSE_COLUMN = "Relapse"
RFS_COLUMN = "RFS"
ENDPOINT_COLUMNS: tuple[str, ...] = (ID_COLUMN, RELAPSE_COLUMN, RFS_COLUMN)

#: Subfolder of the HECKTOR folder holding the prepared cache of each crop size.
CACHE_DIR = ".pemma_cache"
REPORT_CSV = "prepare_report.csv"
#: Statuses in the report: prepared by this run, prepared by an earlier run, not usable.
STATUS_OK, STATUS_CACHED, STATUS_BAD = "ok", "cached", "bad"

_IMAGE_NAME = re.compile(r"^(?P<case>.+)__(?:CT|PT)\.nii\.gz$")
_LABEL_NAME = re.compile(r"^(?P<case>.+)\.nii\.gz$")


def ct_file(case_id: str) -> Path:
    """Path of a case's CT relative to the HECKTOR folder."""
    return Path(IMAGES_DIR) / f"{case_id}__CT.nii.gz"


def pet_file(case_id: str) -> Path:
    """Path of a case's PET relative to the HECKTOR folder."""
    return Path(IMAGES_DIR) / f"{case_id}__PT.nii.gz"


def label_file(case_id: str) -> Path:
    """Path of a case's label relative to the HECKTOR folder."""
    return Path(LABELS_DIR) / f"{case_id}.nii.gz"


def centre_of(case_id: str) -> str:
    """The centre part of a PatientID (``CHUM-001`` -> ``CHUM``); may not be a HECKTOR centre."""
    return case_id.rsplit("-", 1)[0]


def is_hecktor_centre(centre: str) -> bool:
    """Whether ``centre`` is one of the seven HECKTOR 2022 training centres."""
    return centre in CENTRES


def find_case_ids(root: Path, table_ids: Iterable[str] = ()) -> list[str]:
    """Every case the folder mentions: image and label file names plus ``table_ids``, sorted.

    Files whose names do not follow the layout are not cases and are ignored.
    """
    ids = set(table_ids)
    for folder, pattern in ((root / IMAGES_DIR, _IMAGE_NAME), (root / LABELS_DIR, _LABEL_NAME)):
        if folder.is_dir():
            ids.update(m["case"] for m in map(pattern.match, (p.name for p in folder.iterdir())) if m)
    return sorted(ids)


def layout_problem(root: Path) -> str | None:
    """Why ``root`` is not a HECKTOR 2022 training folder, or ``None`` if its top level looks right."""
    missing = [name for name in (IMAGES_DIR, LABELS_DIR) if not (root / name).is_dir()]
    missing += [name for name in (CLINICAL_CSV, ENDPOINT_CSV) if not (root / name).is_file()]
    if missing:
        return (f"'{root}' is not a HECKTOR 2022 training folder: {', '.join(missing)} missing "
                f"(run 'pemma-bench synth --out DIR' to see the expected layout)")
    return None


def default_cache(root: Path, size: int) -> Path:
    """Where ``prepare`` puts the cache of crop size ``size`` unless told otherwise."""
    return root / CACHE_DIR / f"size{size}"


def case_cache_file(cache: Path, case_id: str) -> Path:
    """The prepared ``.npz`` of one case."""
    return cache / f"{case_id}.npz"


def prepare_command(root: Path, size: int, cache: Path | None = None) -> str:
    """The command that prepares ``root`` for crop size ``size`` into ``cache`` (quoted in messages)."""
    return f"pemma-bench prepare --hecktor {root} --size {size}" + (f" --cache {cache}" if cache else "")
