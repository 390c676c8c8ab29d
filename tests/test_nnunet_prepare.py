"""``pemma-bench prepare --data nnunet:DIR`` and loading the prepared cache: voxels, test part, resume, resampling,
label sets, and every bad input (one line, exit 2, nothing half-written)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import invoke_cli
from nnunet_factory import SPACING, case_arrays, rows, write_dataset, write_image

from pemma_cl.core.errors import UserError
from pemma_cl.data.nnunet.layout import NnunetSettings
from pemma_cl.data.nnunet.load import load_nnunet
from pemma_cl.data.nnunet.prepare import prepare_dataset

#: Three centres, two tracers, survival and clinical columns; two cases in imagesTs/labelsTs.
TABLE = rows({"north": 4, "south": 4, "east": 3}, tracer=["FDG", "PSMA"], age=[55, 61.5, ""],
             time_days=[100, 250, 400], event=[1, 0])
TEST_IDS = ("east_002", "south_003")
CACHE = Path(".pemma_cache/spacing2x2x2")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The dataset, unprepared. Read-only: tests that change it work on a copy."""
    return write_dataset(tmp_path_factory.mktemp("nnunet") / "Dataset001_Toy", TABLE, test=TEST_IDS)


@pytest.fixture(scope="module")
def prepared(dataset: Path, tmp_path_factory) -> Path:
    """A copy of ``dataset`` prepared by the CLI at its own (median) spacing. Read-only."""
    folder = tmp_path_factory.mktemp("prepared") / dataset.name
    shutil.copytree(dataset, folder)
    result = invoke_cli("prepare", "--data", f"nnunet:{folder}", "--workers", 1)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("prepared 11 cases in ")
    assert " cases/min) on 1 worker process(es)\n" in result.stdout
    return folder


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def read_report(cache: Path) -> pd.DataFrame:
    return pd.read_csv(cache / "prepare_report.csv", dtype=str, keep_default_na=False).set_index("case")


def test_prepare_caches_every_case_voxel_for_voxel_with_a_report(prepared: Path) -> None:
    cache = prepared / CACHE
    ids = sorted(str(row["case_id"]) for row in TABLE)
    assert sorted(p.name for p in cache.iterdir() if not p.name.startswith(".")) == sorted(
        [f"{i}.npz" for i in ids] + ["prepare_report.csv"])
    report = read_report(cache)
    assert list(report.index) == ids and set(report["status"]) == {"ok"}
    assert report.loc[list(TEST_IDS), "part"].tolist() == ["test", "test"]
    assert set(report["size"]) == set(report["out_size"]) == {"8x10x12"} and set(report["resampled"]) == {"no"}
    for index, row in enumerate(TABLE):  # the spacing is already the target: the voxels are the files' own
        with np.load(cache / f"{row['case_id']}.npz") as npz:
            for name, expected in zip(("ct", "pet", "label"), case_arrays(index)):
                assert npz[name].dtype == expected.dtype and np.array_equal(npz[name], expected)
            assert npz["spacing"].tolist() == list(SPACING)


def test_load_gives_training_cases_test_cases_and_the_description(prepared: Path) -> None:
    data = load_nnunet(prepared, "refuse", NnunetSettings(survival=("time_days", "event"), clinical=("age",)))
    assert [c.case_id for c in data.test] == list(TEST_IDS)
    assert [c.case_id for c in data.cases] == sorted(set(str(r["case_id"]) for r in TABLE) - set(TEST_IDS))
    assert data.description.name == "Dataset001_Toy" and data.description.structures == {1: "lesion"}
    assert data.description.groups == ("centre", "tracer") and data.skipped == {}
    assert data.key.startswith(f"nnunet-v1:{prepared.resolve()}:spacing2x2x2:11cases:")
    first = data.cases[0]  # east_000: row 8 of the table
    assert (first.case_id, first.centre, first.groups) == ("east_000", "east", {"tracer": "FDG"})
    assert (first.rfs_days, first.relapse, first.clinical) == (400.0, 1, {"age": None})
    assert first.spacing == SPACING and first.ct.shape == (8, 10, 12) and first.label.dtype == np.uint8
    assert load_nnunet(prepared, "refuse").cases[0].rfs_days is None  # survival only when declared


def test_prepare_resumes_and_redoes_only_changed_cases(prepared: Path, tmp_path: Path) -> None:
    folder = copy_of(prepared, tmp_path)
    cache = folder / CACHE
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")}
    leftover = cache / ".north_001.npz.host-1-abcd.partial"  # what a killed writer leaves
    leftover.write_bytes(b"half a case")
    ct, pet, label = case_arrays(0)
    write_image(folder / "imagesTr/north_000_0001.nii.gz", pet * 2)
    key = load_nnunet(prepared, "refuse").key
    with pytest.raises(UserError, match=r"^1 of 11 cases of .* are not in the prepared cache .* for spacing 2x2x2 mm "
                                        r"\(new or changed cases"):
        load_nnunet(folder, "refuse")  # a changed file is never read from a stale cache
    summary = prepare_dataset(folder, None, None, None, "refuse", workers=1)
    assert (summary.prepared, summary.cached, summary.bad) == (1, 10, {})
    assert not leftover.exists()
    after = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")}
    assert [name for name in before if after[name] != before[name]] == ["north_000.npz"]
    with np.load(cache / "north_000.npz") as npz:
        assert np.array_equal(npz["pet"], pet * 2)
    assert load_nnunet(folder, "refuse").key != key


def test_spacing_resamples_into_a_cache_of_its_own_keyed_apart(prepared: Path, tmp_path: Path) -> None:
    folder = copy_of(prepared, tmp_path)
    result = invoke_cli("prepare", "--data", f"nnunet:{folder}", "--spacing", "4,4,4", "--workers", 1)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == str(folder / ".pemma_cache/spacing4x4x4/prepare_report.csv")
    data = load_nnunet(folder, "refuse", NnunetSettings(spacing=(4.0, 4.0, 4.0)))
    case = next(c for c in data.cases if c.case_id == "north_000")
    ct, _, label = case_arrays(0)
    assert case.spacing == (4.0, 4.0, 4.0) and case.ct.shape == case.label.shape == (4, 5, 6)
    np.testing.assert_allclose(case.ct, ct.reshape(4, 2, 5, 2, 6, 2).mean(axis=(1, 3, 5)), rtol=1e-5)
    assert set(np.unique(case.label)) == {0, 1} and np.count_nonzero(case.label) == np.count_nonzero(label) // 8
    assert data.key != load_nnunet(folder, "refuse").key  # the 2 mm cache is still there, keyed apart
    assert read_report(folder / ".pemma_cache/spacing4x4x4").loc["north_000", "resampled"] == "yes"


def test_run_without_a_prepared_cache_names_the_prepare_command(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        load_nnunet(dataset, "refuse")
    assert str(info.value) == (f"data: no prepared cache '{dataset / CACHE}'; run 'pemma-bench prepare --data "
                               f"nnunet:{dataset}' first")
    table = tmp_path / "my.csv"
    shutil.copy(dataset / "cases.csv", table)
    with pytest.raises(UserError, match=f"run 'pemma-bench prepare --data nnunet:{dataset} --case-table {table} "
                                        f"--spacing 3,2,2' first"):
        load_nnunet(dataset, "refuse", NnunetSettings(case_table=table, spacing=(3.0, 2.0, 2.0)))


@pytest.mark.parametrize("labels", [
    {"background": 0, "lesion": 1},
    {"background": 0, "GTVp": 1, "GTVn": 2},
    {"background": 0, "liver": 1, "tumour": 2, "node": 3},
])
def test_label_sets_of_one_two_and_three_structures_reach_the_description(tmp_path: Path, labels: dict) -> None:
    folder = write_dataset(tmp_path / "ds", rows({"a": 2, "b": 2}), labels=labels)
    prepare_dataset(folder, None, None, None, "refuse", workers=1)
    data = load_nnunet(folder, "refuse")
    names = [name for name in labels if name != "background"]
    assert data.description.structure_names == tuple(names) and data.description.num_classes == len(labels)
    assert set(np.unique(np.concatenate([c.label.ravel() for c in data.cases]))) == set(range(len(labels)))
    assert data.test is None  # no imagesTs: the run splits the training cases


# --- bad input ---------------------------------------------------------------------------------------------------

#: The bad cases of ``bad_dataset``: case -> a fragment of its one-line reason.
BAD_CASES = {
    "north_000": "imagesTr/north_000_0001.nii.gz is missing",
    "north_001": "imagesTr/north_001_0001.nii.gz: not on the grid of labelsTr/north_001.nii.gz: origin (-11, -4, -7) "
                 "differs from the label's (-11, -9, -7) mm (x, y, z)",
    "north_002": "imagesTr/north_002_0000.nii.gz: not on the grid of labelsTr/north_002.nii.gz: size (8, 10, 13) "
                 "differs from the label's (8, 10, 12) (z, y, x)",
    "south_000": "labelsTr/south_000.nii.gz: label values 3 are not in dataset.json's labels {0, 1}",
    "south_001": "imagesTr/south_001_0001.nii.gz: 2 voxel(s) are NaN or infinite",
    "extra_000": "cases.csv: no row for case_id extra_000",
    "ghost_000": "cases.csv: case_id ghost_000 has no image or label file in the dataset",
}


def break_cases(folder: Path) -> None:
    """Make each case of ``BAD_CASES`` bad in its own way."""
    images = folder / "imagesTr"
    (images / "north_000_0001.nii.gz").unlink()
    ct, pet, label = case_arrays(1)
    write_image(images / "north_001_0001.nii.gz", pet, origin=(-11.0, -4.0, -7.0))
    write_image(images / "north_002_0000.nii.gz", np.zeros((8, 10, 13), np.float32))
    ct, pet, label = case_arrays(4)
    write_image(folder / "labelsTr/south_000.nii.gz", np.where(label == 1, np.uint8(3), label))
    ct, pet, label = case_arrays(5)
    pet.flat[:2] = (np.nan, np.inf)
    write_image(images / "south_001_0001.nii.gz", pet)
    for name in ("imagesTr/{}_0000.nii.gz", "imagesTr/{}_0001.nii.gz", "labelsTr/{}.nii.gz"):
        shutil.copy(folder / name.format("north_003"), folder / name.format("extra_000"))
    dataset = json.loads((folder / "dataset.json").read_text())
    (folder / "dataset.json").write_text(json.dumps({**dataset, "numTraining": dataset["numTraining"] + 1}))
    with (folder / "cases.csv").open("a") as table:
        table.write("ghost_000,north,FDG,,,\n")


@pytest.fixture(scope="module")
def bad_dataset(dataset: Path, tmp_path_factory):
    """A copy of ``dataset`` with ``BAD_CASES``, prepared twice by the CLI: refusing, then skipping."""
    from types import SimpleNamespace

    folder = tmp_path_factory.mktemp("bad") / dataset.name
    shutil.copytree(dataset, folder)
    break_cases(folder)
    refused = invoke_cli("prepare", "--data", f"nnunet:{folder}", "--workers", 1)
    skipped = invoke_cli("prepare", "--data", f"nnunet:{folder}", "--workers", 1, "--on-bad-case", "skip")
    return SimpleNamespace(folder=folder, refused=refused, skipped=skipped)


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr from the ``error:`` line on (the progress bar comes before it)."""
    lines = stderr.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("error: ")):]


def test_prepare_refuses_bad_cases_one_line_each_keeping_only_whole_files(bad_dataset) -> None:
    result = bad_dataset.refused
    assert result.exit_code == 2 and "Traceback" not in result.output
    first, *details = error_lines(result.stderr)
    assert first == ("error: 7 of 13 cases are bad; fix them, or pass --on-bad-case skip to skip them (they are then "
                     "recorded with their reasons)")
    assert len(details) == len(BAD_CASES)
    for case_id, reason in BAD_CASES.items():
        [line] = [line for line in details if line.startswith(f"  {case_id}: ")]
        assert reason in line, line
    cache = bad_dataset.folder / CACHE
    assert not list(cache.glob(".*.partial")) and "north_000.npz" not in {p.name for p in cache.iterdir()}


def test_skip_leaves_bad_cases_out_and_records_them(bad_dataset) -> None:
    assert bad_dataset.skipped.exit_code == 0, bad_dataset.skipped.output
    assert "7 bad cases skipped (reasons in the report)" in bad_dataset.skipped.stdout
    report = read_report(bad_dataset.folder / CACHE)
    for case_id, reason in BAD_CASES.items():
        assert report.loc[case_id, "status"] == "bad" and reason in report.loc[case_id, "reason"]
    with pytest.raises(UserError, match="^7 of 13 cases are bad"):
        load_nnunet(bad_dataset.folder, "refuse")
    data = load_nnunet(bad_dataset.folder, "skip")
    assert sorted(data.skipped) == sorted(BAD_CASES)
    assert all(reason in data.skipped[case_id] for case_id, reason in BAD_CASES.items())
    assert not {c.case_id for c in data.cases + data.test} & set(BAD_CASES)
    assert len(data.cases) + len(data.test) == 6


def drop_file(name: str):
    return lambda folder: (folder / name).unlink()


def rewrite(name: str, text: str):
    return lambda folder: (folder / name).write_text(text)


def edit_json(**changes):
    def edit(folder: Path) -> None:
        raw = json.loads((folder / "dataset.json").read_text())
        (folder / "dataset.json").write_text(json.dumps({**raw, **changes}))
    return edit


def edit_table(change):
    def edit(folder: Path) -> None:
        table = pd.read_csv(folder / "cases.csv", dtype=str, keep_default_na=False)
        change(table).to_csv(folder / "cases.csv", index=False)
    return edit


@pytest.mark.parametrize(("damage", "message"), [
    (drop_file("dataset.json"), "dataset.json: not found; expected nnU-Net's dataset.json with the keys "
                                "[channel_names, labels, file_ending]"),
    (rewrite("dataset.json", "{'channel_names': 1}"), "dataset.json: not valid JSON: Expecting property name "
                                                      "enclosed in double quotes (line 1, column 2)"),
    (edit_json(channel_names={"0": "CT", "1": "MR"}), "dataset.json: channel_names: no PET (named 'PET' or 'PT') "
                                                       "channel; the channels are [0: CT, 1: MR]"),
    (edit_json(labels={"background": 0, "lesion": [1]}), "labels: 'lesion' is a region"),
    (edit_json(numTraining=12), "dataset.json: numTraining: 12, but imagesTr/ and labelsTr/ hold 9 cases"),
    (drop_file("cases.csv"), "cases.csv: case table not found"),
    (edit_table(lambda t: t.drop(columns="case_id")), "cases.csv: no column 'case_id'"),
    (edit_table(lambda t: pd.concat([t, t.iloc[[3]]])), "cases.csv: case_id 'north_003' has 2 rows; expected one "
                                                         "row per case"),
    (lambda folder: shutil.rmtree(folder / "labelsTr"), "is not a dataset in nnU-Net's raw layout: labelsTr missing"),
])
def test_a_bad_dataset_is_refused_in_one_line_before_anything_is_written(dataset: Path, tmp_path: Path, damage,
                                                                          message: str) -> None:
    folder = copy_of(dataset, tmp_path)
    damage(folder)
    result = invoke_cli("prepare", "--data", f"nnunet:{folder}", "--workers", 1)
    assert result.exit_code == 2 and "Traceback" not in result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line, line
    assert not (folder / ".pemma_cache").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--data", "nnunet:/does/not/exist"], "error: --data: folder '/does/not/exist' does not exist"),
    (["--data", "csv:x"], "error: --data: expected 'hecktor:DIR' or 'nnunet:DIR', got 'csv:x'"),
    ([], "error: prepare: give the data once: --data nnunet:DIR, --data hecktor:DIR or --hecktor DIR"),
    (["--data", "nnunet:.", "--size", "48"], "error: --size: only for a HECKTOR folder; an nnU-Net dataset keeps "
                                             "whole volumes (give --spacing)"),
    (["--hecktor", ".", "--spacing", "2,2,2"], "error: --spacing: only for an nnU-Net dataset (--data nnunet:DIR)"),
    (["--data", "nnunet:.", "--spacing", "2,2"], "error: --spacing: expected three positive numbers Z,Y,X in mm"),
])
def test_prepare_options_are_checked(args: list[str], message: str) -> None:
    result = invoke_cli("prepare", *args)
    assert result.exit_code == 2 and result.stderr.startswith(message), result.output
    assert len(result.stderr.splitlines()) == 1
