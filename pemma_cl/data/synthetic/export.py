"""Write the built-in synthetic cohort as an official HECKTOR 2022 training folder (``pemma-bench synth``).

The phantoms are written at about life size (a field of view of ``EXPORT_FOV_MM``), with the kinds of
files, grids and tables the challenge distributes: an ``int16`` CT in HU and a ``uint8`` label on one
grid, and a ``float32`` PET in SUV on a grid with twice the spacing and another origin that still
covers the CT, as scanners reconstruct PET. The folder is written under a hidden partial name and
renamed when complete, so an interrupted export leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from pemma_cl.data.hecktor import layout
from pemma_cl.data.records import CaseRecord
from pemma_cl.data.synthetic.centres import CENTRES
from pemma_cl.data.synthetic.cohort import generate_cohort
from pemma_cl.data.synthetic.writing import new_folder, on_grid, refuse_files

#: Physical side of the exported field of view (mm): the phantom's head-and-neck anatomy at about life size.
EXPORT_FOV_MM = 240.0
#: The folder's default size as a share of HECKTOR 2022's per-centre case counts (106 cases).
HECKTOR_CASE_SCALE = 0.2


def export_synthetic(
    out: Path,
    seed: int = 0,
    case_scale: float = HECKTOR_CASE_SCALE,
    size: int = 32,
    centres: Sequence[str] = CENTRES,
) -> int:
    """Write ``generate_cohort``'s cases to ``out`` in the official HECKTOR 2022 layout.

    Args:
        out: Folder to create; it must not exist or be empty.
        seed: Cohort seed.
        case_scale: Multiplier on HECKTOR 2022's per-centre case counts (minimum 5 per centre).
        size: CT grid side in voxels (the PET has about half as many per axis).
        centres: Centres to write.

    Returns:
        The number of cases written.

    Raises:
        UserError: If ``out`` holds files, or on invalid cohort parameters.
    """
    refuse_files(out)
    cases = generate_cohort(seed=seed, shape=(size,) * 3, spacing_mm=EXPORT_FOV_MM / size,
                            case_scale=case_scale, centres=centres)
    with new_folder(out) as partial:
        for folder in (layout.IMAGES_DIR, layout.LABELS_DIR):
            (partial / folder).mkdir()
        for case in cases:
            _write_images(partial, case)
        _clinical_table(cases).to_csv(partial / layout.CLINICAL_CSV, index=False)
        _endpoint_table(cases).to_csv(partial / layout.ENDPOINT_CSV, index=False)
    return len(cases)


def _ct_grid(size: int) -> sitk.Image:
    """An empty image with the CT (and label) geometry of the export: centred on the origin, axis-aligned."""
    spacing = EXPORT_FOV_MM / size
    grid = sitk.Image([size] * 3, sitk.sitkUInt8)
    grid.SetSpacing([spacing] * 3)
    grid.SetOrigin([-(size - 1) / 2 * spacing] * 3)
    return grid


def _pet_grid(size: int) -> sitk.Image:
    """An empty image with the PET geometry: twice the CT spacing, shifted origin, covering the CT."""
    ct = _ct_grid(size)
    spacing = 2.0 * ct.GetSpacing()[0]
    grid = sitk.Image([size // 2 + 1] * 3, sitk.sitkFloat32)
    grid.SetSpacing([spacing] * 3)
    shift = np.array([0.35, 0.4, 0.3]) * spacing
    grid.SetOrigin(list(np.array(ct.GetOrigin()) - shift))
    return grid


def _clinical_table(cases: Sequence[CaseRecord]) -> pd.DataFrame:
    """The clinical table of ``cases`` with the official columns; missing values stay empty."""
    gender_names = {code: name for name, code in layout.GENDER_CODES.items()}
    rows = []
    for case in cases:
        # CenterID numbers the centres in CENTRES order; the loader takes the centre from the PatientID.
        row = {layout.ID_COLUMN: case.case_id, "Task 1": 1, "Task 2": 1, "CenterID": CENTRES.index(case.centre)}
        for column, key in layout.CLINICAL_COLUMNS.items():
            if key is not None:
                value = case.clinical.get(key)
                row[column] = gender_names[value] if key == "gender" and value is not None else value
        rows.append(row)
    codes = [column for column, key in layout.CLINICAL_COLUMNS.items()
             if key not in (None, "gender") and key not in layout.REAL_FIELDS]
    # Integer codes stay integers next to missing values ("1", not "1.0"); missing cells stay empty.
    return pd.DataFrame(rows, columns=list(layout.CLINICAL_COLUMNS)).astype(dict.fromkeys(codes, "Int64"))


def _endpoint_table(cases: Sequence[CaseRecord]) -> pd.DataFrame:
    """The endpoint table: relapse flag and recurrence-free survival (days) of each case."""
    rows = [{layout.ID_COLUMN: c.case_id, layout.RELAPSE_COLUMN: c.relapse, layout.RFS_COLUMN: c.rfs_days}
            for c in cases]
    return pd.DataFrame(rows, columns=list(layout.ENDPOINT_COLUMNS))


def _write_images(root: Path, case: CaseRecord) -> None:
    size = case.ct.shape[0]
    ct_ref, pet_ref = _ct_grid(size), _pet_grid(size)
    ct = on_grid(np.round(case.ct).astype(np.int16), ct_ref)
    label = on_grid(case.label.astype(np.uint8), ct_ref)
    pet_on_ct = on_grid(case.pet.astype(np.float32), ct_ref)
    pet = sitk.Resample(pet_on_ct, pet_ref, sitk.Transform(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    for image, relpath in ((ct, layout.ct_file(case.case_id)), (pet, layout.pet_file(case.case_id)),
                           (label, layout.label_file(case.case_id))):
        sitk.WriteImage(image, str(root / relpath), useCompression=True)
