"""Write the built-in synthetic cohort in nnU-Net's raw layout with a case table (``synth --format nnunet``).

The folder holds exactly the cases ``--data synthetic`` trains and tests on at a preset whose volumes have ``size``
voxels a side: the same case ids, the same ``float32`` CT (HU) and PET (SUV) voxels and ``uint8`` labels, on the same
4 mm grid (identity direction, origin at the volume's centre). So ``--data nnunet:DIR`` on it can be compared with
``--data synthetic`` case for case::

    dataset.json                {"channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, ...},
                                 "numTraining": N, "file_ending": ".nii.gz", "name": ..., "description": ...}
    imagesTr/CASE_0000.nii.gz   CT    imagesTr/CASE_0001.nii.gz   PET    labelsTr/CASE.nii.gz   label
    imagesTs/, labelsTs/        the separately drawn test cases (generate_test_cohort), named the same way
    cases.csv                   case_id, the grouping columns (centre, tracer), the clinical fields, rfs_days, relapse
                                (training and test cases; a missing clinical value is an empty cell)

The names and paths are those of :mod:`pemma_cl.data.nnunet.layout`, the reader's. The folder is written under a
hidden partial name and renamed when complete.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from pemma_cl.data.nnunet import layout
from pemma_cl.data.records import CaseRecord
from pemma_cl.data.sources import SYNTHETIC_DESCRIPTION
from pemma_cl.data.synthetic.cohort import generate_cohort, generate_test_cohort
from pemma_cl.data.synthetic.writing import new_folder, on_grid, refuse_files

#: The nnU-Net channel of each image modality (``CASE_0000`` is the CT, ``CASE_0001`` the PET).
CHANNELS = {"ct": 0, "pet": 1}
FILE_ENDING = ".nii.gz"
#: The case table's columns after the case id, the grouping columns and the clinical fields.
SURVIVAL_COLUMNS = ("rfs_days", "relapse")


def export_nnunet(
    out: Path,
    seed: int,
    case_scale: float,
    test_cases_per_centre: int,
    size: int,
    centres: Sequence[str],
    tracers: Sequence[str],
) -> tuple[int, int]:
    """Write the built-in cohort's training and test cases to ``out`` in nnU-Net's raw layout.

    Args:
        out: Folder to create; it must not exist or be empty.
        seed: Cohort seed (a run's seed).
        case_scale: Multiplier on HECKTOR 2022's per-centre case counts (a run's is
            :data:`~pemma_cl.data.sources.SYNTHETIC_CASE_SCALE`).
        test_cases_per_centre: FDG test cases per centre (other tracers: their share of it).
        size: Voxels per side (a preset's ``img_size``); the spacing is the generator's 4 mm, as in a run.
        centres: Centres to write.
        tracers: Tracers to write.

    Returns:
        The numbers of training and test cases written.

    Raises:
        UserError: If ``out`` holds files, or on invalid cohort parameters.
    """
    refuse_files(out)
    shape = (size,) * 3
    train = generate_cohort(seed=seed, shape=shape, case_scale=case_scale, centres=centres, tracers=tracers)
    test = generate_test_cohort(seed=seed, shape=shape, per_centre=test_cases_per_centre, centres=centres,
                                tracers=tracers)
    with new_folder(out) as partial:
        for part, cases in ((layout.TRAIN, train), (layout.TEST, test)):
            for folder in layout.FOLDERS[part]:
                (partial / folder).mkdir()
            for case in cases:
                _write_case(partial, case, part)
        (partial / layout.DATASET_JSON).write_text(json.dumps(_dataset_json(len(train)), indent=2) + "\n",
                                                   encoding="utf-8")
        _case_table(train + test).to_csv(partial / layout.CASE_TABLE, index=False)
    return len(train), len(test)


def _dataset_json(num_training: int) -> dict:
    description = SYNTHETIC_DESCRIPTION
    return {"channel_names": {str(channel): modality.upper() for modality, channel in CHANNELS.items()},
            "labels": {"background": 0, **{name: value for value, name in description.structures.items()}},
            "numTraining": num_training, "file_ending": FILE_ENDING, "name": "pemma-synthetic",
            "description": "The built-in synthetic head-and-neck PET/CT cohort of pemma-cl (pemma-bench synth); "
                           "case groups, clinical data and recurrence-free survival in cases.csv"}


def _case_table(cases: Sequence[CaseRecord]) -> pd.DataFrame:
    """``cases.csv``: one row per case; integer codes stay integers beside missing values (empty cells)."""
    groups = list(SYNTHETIC_DESCRIPTION.groups)
    clinical = list(cases[0].clinical)
    rows = [{layout.CASE_ID_COLUMN: case.case_id, **{column: case.group(column) for column in groups},
             **case.clinical, "rfs_days": case.rfs_days, "relapse": case.relapse} for case in cases]
    columns = [layout.CASE_ID_COLUMN, *groups, *clinical, *SURVIVAL_COLUMNS]
    codes = [column for column in columns
             if all(isinstance(row[column], int) for row in rows if row[column] is not None)]
    return pd.DataFrame(rows, columns=columns).astype(dict.fromkeys(codes, "Int64"))


def _write_case(root: Path, case: CaseRecord, part: str) -> None:
    grid = _grid(case)
    for modality, channel in CHANNELS.items():
        image = on_grid(getattr(case, modality).astype(np.float32), grid)
        sitk.WriteImage(image, str(root / layout.image_file(case.case_id, channel, FILE_ENDING, part)),
                        useCompression=True)
    sitk.WriteImage(on_grid(case.label.astype(np.uint8), grid),
                    str(root / layout.label_file(case.case_id, FILE_ENDING, part)), useCompression=True)


def _grid(case: CaseRecord) -> sitk.Image:
    """An empty image with the case's grid: its spacing, identity direction, the origin at the volume's centre."""
    size = case.label.shape[::-1]  # SimpleITK orders axes x, y, z
    spacing = case.spacing[::-1]
    grid = sitk.Image([int(n) for n in size], sitk.sitkUInt8)
    grid.SetSpacing([float(s) for s in spacing])
    grid.SetOrigin([-(n - 1) / 2 * s for n, s in zip(size, spacing)])
    return grid
