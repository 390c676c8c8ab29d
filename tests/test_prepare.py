"""``pemma-bench prepare`` and ``--data hecktor:DIR``: cache, round trip, resume, and a run end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import BAD_CASES, HECKTOR_STREAM, TEST_CENTRES, TEST_SEED, invoke_cli

from pemma_cl.core.errors import UserError
from pemma_cl.data.hecktor import layout
from pemma_cl.data.hecktor.load import load_hecktor
from pemma_cl.data.hecktor.prepare import prepare_folder
from pemma_cl.data.synthetic.cohort import generate_cohort
from pemma_cl.data.synthetic.export import EXPORT_FOV_MM


def cache_of(folder: Path) -> Path:
    return folder / ".pemma_cache" / "size32"


def read_report(folder: Path) -> pd.DataFrame:
    return pd.read_csv(cache_of(folder) / "prepare_report.csv", dtype=str, keep_default_na=False)


def test_prepare_writes_one_npz_per_case_and_a_report(prepared_hecktor: Path) -> None:
    cache = cache_of(prepared_hecktor)
    ids = layout.find_case_ids(prepared_hecktor)
    assert sorted(p.name for p in cache.iterdir()) == sorted([f"{i}.npz" for i in ids] + ["prepare_report.csv"])
    report = read_report(prepared_hecktor)
    assert list(report["case"]) == ids
    assert set(report["status"]) == {"ok"} and set(report["reason"]) == {""}
    assert list(report["centre"]) == [i.split("-")[0] for i in ids]
    assert set(report["ct_size"]) == {"32x32x32"} and set(report["pet_size"]) == {"17x17x17"}
    assert set(report["ct_spacing_mm"]) == {"7.500x7.500x7.500"} and set(report["pet_spacing_mm"]) == {
        "15.000x15.000x15.000"}
    assert set(report["out_size"]) == {"32x32x32"} and set(report["out_spacing_mm"]) == {"7.500x7.500x7.500"}
    assert set(report["anchor"]) == {"brain"}  # the box hangs from the PET brain uptake, not the labels
    assert (report["tumour_kept"].astype(float) > 0.95).all()


def test_load_round_trips_labels_and_tables(prepared_hecktor: Path) -> None:
    data = load_hecktor(prepared_hecktor, 32, "refuse")
    original = {c.case_id: c for c in generate_cohort(seed=TEST_SEED, shape=(32,) * 3, spacing_mm=EXPORT_FOV_MM / 32,
                                                       case_scale=0.05, centres=TEST_CENTRES)}
    assert [c.case_id for c in data.cases] == sorted(original) and data.skipped == {}
    assert data.key.startswith(f"hecktor-v1:{prepared_hecktor.resolve()}:size32:15cases:")
    dice = []
    for case in data.cases:
        source = original[case.case_id]
        assert case.centre == source.centre
        assert case.clinical == source.clinical
        assert (case.rfs_days, case.relapse) == (source.rfs_days, source.relapse)
        assert case.ct.shape == case.pet.shape == case.label.shape == (32, 32, 32)
        assert case.ct.dtype == case.pet.dtype == np.float32 and case.spacing == (7.5, 7.5, 7.5)
        assert case.ct.min() >= -1100 and case.pet.min() >= 0  # HU and SUV, not normalised
        # The prepared label, put back on the label's own grid, matches the synthetic label.
        with np.load(layout.case_cache_file(cache_of(prepared_hecktor), case.case_id)) as npz:
            origin = npz["origin"].tolist()
        prepared = sitk.GetImageFromArray(case.label)
        prepared.SetOrigin(origin)
        prepared.SetSpacing(case.spacing)
        grid = sitk.ReadImage(str(prepared_hecktor / layout.label_file(case.case_id)))
        back = sitk.GetArrayFromImage(sitk.Resample(prepared, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0))
        truth, got = source.label == 1, back == 1
        dice.append(2 * np.count_nonzero(truth & got) / (np.count_nonzero(truth) + np.count_nonzero(got)))
    assert min(dice) > 0.7


def test_resume_redoes_only_missing_cases_and_ignores_leftover_temporary_files(
    prepared_hecktor: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "HECKTOR2022"
    shutil.copytree(prepared_hecktor, folder)
    cache = cache_of(folder)
    redo = ["CHUV-002", "HMR-004"]
    for case_id in redo:
        layout.case_cache_file(cache, case_id).unlink()
    before = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz")}
    leftover = cache / ".tmp-99999-HMR-001.npz"  # what a killed worker would leave
    leftover.write_bytes(b"half a case")
    summary = prepare_folder(folder, None, 32, "refuse", workers=2)
    assert summary.prepared == 2 and summary.cached == 13 and summary.bad == {}
    report = read_report(folder)
    assert sorted(report.loc[report["status"] == "ok", "case"]) == redo
    assert (report.loc[~report["case"].isin(redo), "status"] == "cached").all()
    assert not leftover.exists()
    assert {p.name: p.stat().st_mtime_ns for p in cache.glob("*.npz") if p.name in before} == before
    assert load_hecktor(folder, 32, "refuse").key != load_hecktor(prepared_hecktor, 32, "refuse").key


def test_run_needs_a_complete_cache_and_names_the_command(prepared_hecktor: Path, tmp_path: Path) -> None:
    command = f"pemma-bench prepare --hecktor {prepared_hecktor} --size 48"
    with pytest.raises(UserError, match=f"run '{command}' first"):
        load_hecktor(prepared_hecktor, 48, "refuse")
    folder = tmp_path / "HECKTOR2022"
    shutil.copytree(prepared_hecktor, folder)
    layout.case_cache_file(cache_of(folder), "HGJ-003").unlink()  # e.g. prepare was interrupted
    with pytest.raises(UserError) as info:
        load_hecktor(folder, 32, "skip")
    assert str(info.value).startswith(f"1 of 15 cases of '{folder}' are not in the prepared cache")
    assert f"run 'pemma-bench prepare --hecktor {folder} --size 32' first" in str(info.value)
    assert info.value.details == ("HGJ-003",)


def test_run_reads_a_cache_prepared_elsewhere(prepared_hecktor: Path, tmp_path: Path) -> None:
    """``prepare --cache DIR`` (e.g. a read-only data folder) pairs with ``load_hecktor(..., cache=DIR)``."""
    folder, elsewhere = tmp_path / "HECKTOR2022", tmp_path / "my_cache"
    shutil.copytree(prepared_hecktor, folder, ignore=shutil.ignore_patterns(".pemma_cache"))
    shutil.copytree(cache_of(prepared_hecktor), elsewhere)
    data = load_hecktor(folder, 32, "refuse", cache=elsewhere)
    default = load_hecktor(prepared_hecktor, 32, "refuse")
    assert [c.case_id for c in data.cases] == [c.case_id for c in default.cases]
    assert all(np.array_equal(a.pet, b.pet) for a, b in zip(data.cases, default.cases))
    with pytest.raises(UserError, match=f"run 'pemma-bench prepare --hecktor {folder} --size 32' first"):
        load_hecktor(folder, 32, "refuse")
    missing = tmp_path / "nowhere"
    with pytest.raises(UserError, match=f"no prepared cache '{missing}'; run 'pemma-bench prepare --hecktor {folder} "
                                        f"--size 32 --cache {missing}' first"):
        load_hecktor(folder, 32, "refuse", cache=missing)


def test_cli_runs_a_micro_stream_on_a_prepared_folder_skipping_its_bad_cases(bad_hecktor, tmp_path: Path) -> None:
    """``synth`` -> ``prepare`` -> ``run --data hecktor:DIR`` (the fixtures ran the first two through the CLI).

    One training run keeps the suite fast: on the bad folder with ``--on-bad-case skip``, which trains on the
    good cases exactly as on a clean folder and also records the skipped cases in the manifest. The cache is
    moved out of the folder, so the run only finds it through ``--cache``.
    """
    folder, cache = tmp_path / "HECKTOR2022", tmp_path / "cache"
    shutil.copytree(bad_hecktor.folder, folder, ignore=shutil.ignore_patterns(".pemma_cache"))
    shutil.copytree(cache_of(bad_hecktor.folder), cache)
    stream = tmp_path / "two.yaml"
    stream.write_text(HECKTOR_STREAM.format(name="two"))
    result = invoke_cli("run", "--stream", stream, "--data", f"hecktor:{folder}", "--cache", cache, "--preset", "micro",
                        "--epochs", 1, "--strategy", "pemma-lora", "--results-dir", tmp_path / "results",
                        "--device", "cpu", "--on-bad-case", "skip")
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.splitlines()[-1])
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert set(metrics["strategy"]) == {"pemma-lora"} and set(metrics["trained_through"]) == {-1, 0, 1}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    facts = manifest["extra"]["seeds"]["0"]
    assert facts["data"].startswith("hecktor-v1:")
    assert (facts["n_train_cases"], facts["n_test_cases"]) == (2, 2)
    skipped = facts["skipped_cases"]
    assert sorted(skipped) == sorted(BAD_CASES) and all(BAD_CASES[c] in skipped[c] for c in BAD_CASES)
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["on_bad_case"], config["cache"]) == ("skip", str(cache))
