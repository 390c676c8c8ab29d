"""Bad input in a HECKTOR 2022 folder: refused with one line per bad case, or skipped and recorded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import SimpleITK as sitk
from conftest import BAD_CASES, HECKTOR_STREAM, invoke_cli

from pemma_cl.core.errors import UserError
from pemma_cl.data.hecktor.checks import no_overlap
from pemma_cl.data.hecktor.load import load_hecktor
from pemma_cl.run.config import RunConfig
from pemma_cl.streams.spec import load_stream

N_CASES = 16  # the 15 synthetic cases plus XYZ-001
FIRST_LINE = (f"error: {len(BAD_CASES)} of {N_CASES} cases are bad; fix them, or pass --on-bad-case skip to "
              "skip them (they are then recorded with their reasons)")


def error_lines(stderr: str) -> list[str]:
    """The lines of stderr from the ``error:`` line on (the progress bar comes before it)."""
    lines = stderr.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith("error: ")):]


@pytest.mark.parametrize("case_id", sorted(BAD_CASES))
def test_prepare_refuses_and_names_each_bad_case(bad_hecktor, case_id: str) -> None:
    result = bad_hecktor.refused
    assert result.exit_code == 2 and "Traceback" not in result.output
    first, *details = error_lines(result.stderr)
    assert first == FIRST_LINE and len(details) == len(BAD_CASES)
    [line] = [line for line in details if line.startswith(f"  {case_id}: ")]
    assert BAD_CASES[case_id] in line


@pytest.mark.parametrize("case_id", sorted(BAD_CASES))
def test_prepare_skip_records_each_bad_case_in_the_report(bad_hecktor, case_id: str) -> None:
    assert bad_hecktor.skipped.exit_code == 0, bad_hecktor.skipped.output
    report = pd.read_csv(bad_hecktor.folder / ".pemma_cache/size32/prepare_report.csv", dtype=str,
                         keep_default_na=False).set_index("case")
    assert report.loc[case_id, "status"] == "bad"
    assert BAD_CASES[case_id] in report.loc[case_id, "reason"]


def test_refusal_keeps_only_complete_cases_in_the_cache(bad_hecktor) -> None:
    cache = bad_hecktor.folder / ".pemma_cache/size32"
    assert sorted(p.name for p in cache.iterdir()) == [
        "CHUV-004.npz", "CHUV-005.npz", "HGJ-004.npz", "HGJ-005.npz",  # complete cases, kept for the next run
        "HMR-003.npz", "HMR-004.npz", "HMR-005.npz", "XYZ-001.npz",  # images fine; their tables are checked at use
        "prepare_report.csv",
    ]
    # The second, skipping, run re-checked the five cases whose images are bad (they may have been fixed).
    assert bad_hecktor.skipped.stdout.startswith("prepared 5 cases in ")
    assert "\n4 cases were already cached; 12 bad cases skipped (reasons in the report)\n" in bad_hecktor.skipped.stdout


def test_load_refuses_or_skips_with_the_same_reasons(bad_hecktor) -> None:
    with pytest.raises(UserError) as info:
        load_hecktor(bad_hecktor.folder, 32, "refuse")
    assert f"error: {info.value}" == FIRST_LINE
    assert len(info.value.details) == len(BAD_CASES)
    data = load_hecktor(bad_hecktor.folder, 32, "skip")
    assert sorted(c.case_id for c in data.cases) == ["CHUV-004", "CHUV-005", "HGJ-004", "HGJ-005"]
    assert sorted(data.skipped) == sorted(BAD_CASES)
    for case_id, fragment in BAD_CASES.items():
        assert fragment in data.skipped[case_id]


def test_run_refuses_a_bad_folder_before_creating_a_run_folder(bad_hecktor, tmp_path: Path) -> None:
    stream = tmp_path / "two.yaml"
    stream.write_text(HECKTOR_STREAM.format(name="two"))
    results = tmp_path / "results"
    result = invoke_cli("run", "--stream", stream, "--data", f"hecktor:{bad_hecktor.folder}", "--preset", "micro",
                        "--epochs", 1, "--strategy", "pemma-lora", "--results-dir", results, "--device", "cpu")
    assert result.exit_code == 2 and error_lines(result.stderr)[0] == FIRST_LINE
    # no run folder, partial or published: at most the (empty) folder of the run's lock, docs/guide/shared-results.md
    assert not results.exists() or [p.name for p in results.iterdir()] in ([], [".locks"])


@pytest.mark.parametrize(
    ("csv_name", "column"),
    [("hecktor2022_clinical_info_training.csv", "HPV status (0=-, 1=+)"), ("hecktor2022_endpoint_training.csv", "RFS")],
)
def test_a_table_without_a_column_is_refused_as_a_whole(
    hecktor_dir: Path, tmp_path: Path, csv_name: str, column: str
) -> None:
    folder = tmp_path / "HECKTOR2022"
    shutil.copytree(hecktor_dir, folder)
    table = pd.read_csv(folder / csv_name, dtype=str, keep_default_na=False)
    table.drop(columns=[column]).to_csv(folder / csv_name, index=False)
    for args in (("prepare", "--hecktor", folder), ("prepare", "--hecktor", folder, "--on-bad-case", "skip")):
        result = invoke_cli(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: {folder / csv_name}: missing column(s) {column!r}; expected PatientID")
        assert len(result.stderr.splitlines()) == 1
    assert not (folder / ".pemma_cache").exists() or not any((folder / ".pemma_cache").rglob("*.npz"))


def test_a_folder_without_the_layout_is_refused(tmp_path: Path) -> None:
    result = invoke_cli("prepare", "--hecktor", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == (f"error: '{tmp_path}' is not a HECKTOR 2022 training folder: imagesTr, labelsTr, "
                             "hecktor2022_clinical_info_training.csv, hecktor2022_endpoint_training.csv missing "
                             "(run 'pemma-bench synth --out DIR' to see the expected layout)\n")
    with pytest.raises(UserError, match="is not a HECKTOR 2022 training folder"):
        RunConfig(stream=load_stream("paper"), strategies=("a",), data=f"hecktor:{tmp_path}")


def test_a_stream_centre_without_cases_is_a_user_error(prepared_hecktor: Path) -> None:
    from pemma_cl.data.splits import split_cases
    from pemma_cl.streams.build import build_stream

    data = load_hecktor(prepared_hecktor, 32, "refuse")
    with pytest.raises(UserError, match=r"paper.yaml: pretrain.centres: 'CHUS' is not a value of column 'centre' in "
                                        r"the data; its values are \[CHUV, HGJ, HMR\]$"):
        build_stream(load_stream("paper"), *split_cases(data.cases, 0).for_evaluation_on("test"))


def test_overlap_needs_half_of_the_smaller_image() -> None:
    ct = sitk.Image([10, 10, 10], sitk.sitkInt16)
    pet = sitk.Image([5, 5, 5], sitk.sitkFloat32)
    pet.SetSpacing([2.0, 2.0, 2.0])
    pet.SetOrigin([0.5, 0.5, 0.5])  # both cover [-0.5, 9.5] mm on every axis
    assert no_overlap("CHUM-001", ct, pet) is None
    pet.SetOrigin([0.5, 0.5, 6.5])  # now 4 of the 10 mm along z are shared: 40%
    assert no_overlap("CHUM-001", ct, pet) == (
        "imagesTr/CHUM-001__CT.nii.gz and imagesTr/CHUM-001__PT.nii.gz do not overlap in physical space "
        "(they share 40% of the smaller image)")
