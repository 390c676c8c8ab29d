"""``pemma-bench synth``: the synthetic cohort written in the official HECKTOR 2022 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import TEST_CENTRES, TEST_SEED, invoke_cli

from pemma_cl.data.hecktor import layout
from pemma_cl.data.hecktor.checks import physical_box
from pemma_cl.data.synthetic.cohort import generate_cohort


@pytest.fixture(scope="module")
def cohort():
    """The cases ``hecktor_dir`` was written from, by id."""
    from pemma_cl.data.synthetic.export import EXPORT_FOV_MM

    cases = generate_cohort(seed=TEST_SEED, shape=(32,) * 3, spacing_mm=EXPORT_FOV_MM / 32, case_scale=0.05,
                            centres=TEST_CENTRES)
    return {case.case_id: case for case in cases}


def test_folder_has_the_official_file_names(hecktor_dir: Path, cohort: dict) -> None:
    ids = sorted(cohort)
    assert len(ids) == 15
    images = sorted(p.name for p in (hecktor_dir / "imagesTr").iterdir())
    assert images == sorted([f"{i}__CT.nii.gz" for i in ids] + [f"{i}__PT.nii.gz" for i in ids])
    assert sorted(p.name for p in (hecktor_dir / "labelsTr").iterdir()) == [f"{i}.nii.gz" for i in ids]
    assert sorted(p.name for p in hecktor_dir.iterdir()) == [
        "hecktor2022_clinical_info_training.csv", "hecktor2022_endpoint_training.csv", "imagesTr", "labelsTr",
    ]
    assert not [p for p in hecktor_dir.parent.iterdir() if ".partial-" in p.name]
    assert layout.find_case_ids(hecktor_dir) == ids
    assert layout.layout_problem(hecktor_dir) is None


def test_tables_have_the_official_columns(hecktor_dir: Path, cohort: dict) -> None:
    clinical = pd.read_csv(hecktor_dir / layout.CLINICAL_CSV, dtype=str, keep_default_na=False)
    assert list(clinical.columns) == [
        "PatientID", "Task 1", "Task 2", "CenterID", "Gender", "Age", "Weight", "Tobacco", "Alcohol",
        "Performance status", "HPV status (0=-, 1=+)", "Surgery", "Chemotherapy",
    ]
    endpoint = pd.read_csv(hecktor_dir / layout.ENDPOINT_CSV, dtype=str, keep_default_na=False)
    assert list(endpoint.columns) == ["PatientID", "Relapse", "RFS"]
    assert sorted(clinical["PatientID"]) == sorted(endpoint["PatientID"]) == sorted(cohort)
    assert set(clinical["Gender"]) <= {"M", "F"}
    hpv = dict(zip(clinical["PatientID"], clinical["HPV status (0=-, 1=+)"]))
    missing = [case_id for case_id, case in cohort.items() if case.clinical["hpv_status"] is None]
    assert missing and all(hpv[case_id] == "" for case_id in missing)  # missing is written as an empty cell
    assert all(hpv[c] == str(cohort[c].clinical["hpv_status"]) for c in cohort if c not in missing)


def test_images_hold_the_cohort_on_ct_and_coarser_pet_grids(hecktor_dir: Path, cohort: dict) -> None:
    case = cohort["HGJ-002"]
    ct = sitk.ReadImage(str(hecktor_dir / layout.ct_file(case.case_id)))
    pet = sitk.ReadImage(str(hecktor_dir / layout.pet_file(case.case_id)))
    label = sitk.ReadImage(str(hecktor_dir / layout.label_file(case.case_id)))
    assert (ct.GetPixelID(), pet.GetPixelID(), label.GetPixelID()) == (
        sitk.sitkInt16, sitk.sitkFloat32, sitk.sitkUInt8)
    # The label shares the CT grid; the PET has twice the spacing, another origin and size, and covers the CT.
    for attribute in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert getattr(label, attribute)() == getattr(ct, attribute)()
    assert np.allclose(pet.GetSpacing(), 2 * np.array(ct.GetSpacing()))
    assert pet.GetSize() != ct.GetSize() and not np.allclose(pet.GetOrigin(), ct.GetOrigin())
    (ct_lo, ct_hi), (pet_lo, pet_hi) = physical_box(ct), physical_box(pet)
    assert np.all(pet_lo <= ct_lo) and np.all(pet_hi >= ct_hi)
    assert np.array_equal(sitk.GetArrayFromImage(label), case.label)
    assert np.abs(sitk.GetArrayFromImage(ct) - case.ct).max() <= 0.5  # HU rounded to int16
    # PET sampled back onto the CT grid keeps the uptake (linear interpolation of a 2x coarser grid).
    back = sitk.GetArrayFromImage(sitk.Resample(pet, ct, sitk.Transform(), sitk.sitkLinear, 0.0))
    assert np.corrcoef(back.ravel(), case.pet.ravel())[0, 1] > 0.9


def test_synth_refuses_a_folder_with_files_and_leaves_nothing_behind(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    result = invoke_cli("synth", "--out", tmp_path / "taken")
    assert result.exit_code == 2
    assert result.stderr == f"error: --out: '{tmp_path / 'taken'}' already exists and is not an empty folder\n"
    result = invoke_cli("synth", "--out", tmp_path / "new", "--centre", "XYZ")
    assert result.exit_code == 2 and "unknown centre 'XYZ'" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
