"""``pemma-bench synth --format nnunet``: the built-in cohort in nnU-Net's raw layout with a case table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import invoke_cli

from pemma_cl.data.sources import load_cases
from pemma_cl.data.synthetic.cohort import generate_cohort, generate_test_cohort

CLINICAL = ["age", "gender", "weight", "tobacco", "alcohol", "performance_status", "hpv_status", "surgery",
            "chemotherapy"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """HMR and CHUV with both tracers at 16^3 (5 + 5 training and 2 + 2 test cases a centre), written by the CLI."""
    out = tmp_path_factory.mktemp("nnunet") / "Dataset001_Synthetic"
    result = invoke_cli("synth", "--format", "nnunet", "--out", out, "--size", 16, "--case-scale", 0.01,
                        "--test-cases-per-centre", 2, "--centre", "HMR", "--centre", "CHUV", "--tracer", "PSMA",
                        "--tracer", "FDG", "--seed", 3)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"wrote 20 training and 8 test cases to {out} (nnU-Net raw layout with cases.csv)\n"
    return out


@pytest.fixture(scope="module")
def cases() -> dict:
    """The cases the export was written from, by part."""
    kwargs = {"seed": 3, "shape": (16,) * 3, "centres": ["HMR", "CHUV"], "tracers": ["FDG", "PSMA"]}
    return {"Tr": generate_cohort(case_scale=0.01, **kwargs), "Ts": generate_test_cohort(per_centre=2, **kwargs)}


def test_folder_has_nnunets_files(exported: Path, cases: dict) -> None:
    assert sorted(p.name for p in exported.iterdir()) == [
        "cases.csv", "dataset.json", "imagesTr", "imagesTs", "labelsTr", "labelsTs"]
    for part, members in cases.items():
        ids = sorted(c.case_id for c in members)
        assert sorted(p.name for p in (exported / f"images{part}").iterdir()) == sorted(
            f"{i}_{channel}.nii.gz" for i in ids for channel in ("0000", "0001"))
        assert sorted(p.name for p in (exported / f"labels{part}").iterdir()) == [f"{i}.nii.gz" for i in ids]
    assert "HMR-P001" in {c.case_id for c in cases["Tr"]} and "CHUV-PT002" in {c.case_id for c in cases["Ts"]}
    assert not [p for p in exported.parent.iterdir() if ".partial-" in p.name]


def test_dataset_json(exported: Path) -> None:
    dataset = json.loads((exported / "dataset.json").read_text())
    assert {key: dataset[key] for key in ("channel_names", "labels", "numTraining", "file_ending")} == {
        "channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "GTVp": 1, "GTVn": 2},
        "numTraining": 20, "file_ending": ".nii.gz"}
    assert dataset["name"] == "pemma-synthetic" and "cases.csv" in dataset["description"]


def test_case_table_has_groups_clinical_data_and_survival(exported: Path, cases: dict) -> None:
    table = pd.read_csv(exported / "cases.csv", dtype=str, keep_default_na=False)
    assert list(table.columns) == ["case_id", "centre", "tracer", *CLINICAL, "rfs_days", "relapse"]
    every = cases["Tr"] + cases["Ts"]
    assert list(table["case_id"]) == [c.case_id for c in every]
    rows = table.set_index("case_id")
    for case in every:
        row = rows.loc[case.case_id]
        assert (row["centre"], row["tracer"]) == (case.centre, case.group("tracer"))
        assert (float(row["rfs_days"]), int(row["relapse"])) == (case.rfs_days, case.relapse)
        # Integer codes as integers, missing values as empty cells.
        assert [row[k] for k in CLINICAL] == ["" if case.clinical[k] is None else str(case.clinical[k])
                                              for k in CLINICAL]
    assert (rows[CLINICAL] == "").any().any()


def test_images_read_back_as_the_generators_arrays(exported: Path, cases: dict) -> None:
    for part, members in cases.items():
        for case in members[::3]:
            ct, pet = (sitk.ReadImage(str(exported / f"images{part}" / f"{case.case_id}_{c}.nii.gz"))
                       for c in ("0000", "0001"))
            label = sitk.ReadImage(str(exported / f"labels{part}" / f"{case.case_id}.nii.gz"))
            assert (ct.GetPixelID(), pet.GetPixelID(), label.GetPixelID()) == (
                sitk.sitkFloat32, sitk.sitkFloat32, sitk.sitkUInt8)
            for image, array in ((ct, case.ct), (pet, case.pet), (label, case.label)):
                assert np.array_equal(sitk.GetArrayFromImage(image), array)  # voxel for voxel, [z, y, x]
                assert image.GetSpacing() == (4.0, 4.0, 4.0)
                assert image.GetOrigin() == (-30.0, -30.0, -30.0)  # centred: -(16 - 1) / 2 * 4 mm
                assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def test_defaults_write_the_cases_of_the_built_in_run(tmp_path: Path) -> None:
    out = tmp_path / "hmr"
    result = invoke_cli("synth", "--format", "nnunet", "--out", out, "--size", 8, "--centre", "HMR")
    assert result.exit_code == 0, result.output
    data = load_cases("synthetic", 8, seed=0)  # the built-in run's scale and test cases at an 8^3 preset
    for part, members in (("Tr", data.cases), ("Ts", data.test)):
        hmr = [c for c in members if c.centre == "HMR"]
        assert sorted(p.name for p in (out / f"labels{part}").iterdir()) == sorted(
            f"{c.case_id}.nii.gz" for c in hmr)
        image = sitk.ReadImage(str(out / f"images{part}" / f"{hmr[-1].case_id}_0001.nii.gz"))
        assert np.array_equal(sitk.GetArrayFromImage(image), hmr[-1].pet)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--centre", "XYZ"], "unknown centre 'XYZ'; valid centres: CHUM, CHUP, CHUS, CHUV, MDA, HGJ, HMR"),
    (["--tracer", "F18"], "--tracer: unknown tracer 'F18'; valid tracers: FDG, PSMA"),
    (["--format", "nifti"], "--format: expected one of [hecktor, nnunet], got 'nifti'"),
    (["--size", "4"], "--size: expected an integer >= 8, got 4"),
    (["--test-cases-per-centre", "0"], "--test-cases-per-centre: expected a positive integer, got 0"),
    (["--format", "hecktor", "--tracer", "PSMA"],
     "--tracer: a HECKTOR folder holds FDG cases only; write PSMA with --format nnunet"),
    (["--format", "hecktor", "--test-cases-per-centre", "3"],
     "--test-cases-per-centre: only with --format nnunet (a HECKTOR training folder has no test cases)"),
])
def test_bad_options_are_one_line_and_leave_nothing(tmp_path: Path, arguments: list[str], message: str) -> None:
    args = arguments if "--format" in arguments else ["--format", "nnunet", *arguments]
    result = invoke_cli("synth", "--out", tmp_path / "new", *args)
    assert (result.exit_code, result.stderr) == (2, f"error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_with_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "dataset.json").write_text("{}")
    result = invoke_cli("synth", "--format", "nnunet", "--out", tmp_path / "taken", "--centre", "HMR")
    assert (result.exit_code, result.stderr) == (
        2, f"error: --out: '{tmp_path / 'taken'}' already exists and is not an empty folder\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["dataset.json"]
