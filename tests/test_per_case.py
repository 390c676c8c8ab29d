"""Per-case rows (``cases.csv.gz``): aggregated Dice from counts, reading a run's file, the challengeR export."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import pandas as pd
import pytest
from conftest import invoke_cli

from pemma_cl.core.errors import UserError
from pemma_cl.evaluation.per_case import (
    CASE_COLUMNS,
    aggregated_dice,
    case_frame,
    challenger_table,
    read_cases,
    structure_dice,
    structures_of,
)
from pemma_cl.run.folders import FolderWriter


def row(case_id: str, structure: str, tp: int, fp: int, fn: int, *, seed: int = 0, strategy: str = "a",
        trained: int = 1, setting: str = "ctpet", hd95: float | None = None) -> list:
    """One per-case row; its Dice is the case's (None when the reference is empty)."""
    dice = 2 * tp / (2 * tp + fp + fn) if tp + fn else None
    return [seed, strategy, trained, "B" if trained == 1 else "A", 0, "A", case_id.split("-")[0], case_id, setting,
            structure, tp, fp, fn, tp + fn, tp + fp, dice, hd95]


def test_aggregated_dice_pools_counts_per_structure_then_averages_the_structures_with_a_reference() -> None:
    cases = case_frame([row("CHUM-001", "GTVp", 8, 2, 0), row("CHUM-001", "GTVn", 0, 3, 0),
                        row("CHUM-002", "GTVp", 2, 0, 6), row("CHUM-002", "GTVn", 1, 1, 1)])
    # GTVp: 2*10 / (20 + 2 + 6) = 20/28; GTVn: 2*1 / (2 + 4 + 1) = 2/7; mean of the two
    assert aggregated_dice(cases) == pytest.approx((20 / 28 + 2 / 7) / 2)
    no_gtvn = cases[(cases["structure"] == "GTVp") | (cases["case_id"] == "CHUM-001")]  # GTVn: false positives only
    assert aggregated_dice(no_gtvn) == pytest.approx(20 / 28)
    assert math.isnan(aggregated_dice(case_frame([row("CHUM-001", "GTVp", 0, 4, 0)])))
    with pytest.raises(ValueError, match="aggregated"):
        aggregated_dice(cases.assign(structure="aggregated"))


def test_the_rows_of_a_one_structure_data_set_summarise_to_that_structure_and_aggregated() -> None:
    cases = case_frame([row("S-001", "lesion", 3, 1, 1), row("S-002", "lesion", 0, 2, 0),
                        row("S-003", "lesion", 1, 0, 3)])
    # lesion: 2*4 / (8 + 3 + 4) = 8/15; aggregated is the one structure's Dice
    assert structures_of(cases) == ["lesion"]
    assert structure_dice(cases) == pytest.approx({"lesion": 8 / 15, "aggregated": 8 / 15})
    assert aggregated_dice(cases) == pytest.approx(8 / 15)
    assert math.isnan(aggregated_dice(cases[cases["case_id"] == "S-002"]))  # false positives only


def test_the_rows_of_three_structures_keep_their_label_order_and_average_the_ones_with_a_reference() -> None:
    cases = case_frame([row("S-001", "liver", 4, 0, 1), row("S-001", "tumour", 2, 1, 0), row("S-001", "node", 0, 2, 0),
                        row("S-002", "liver", 5, 1, 0), row("S-002", "tumour", 0, 0, 3), row("S-002", "node", 0, 1, 0)])
    # liver 2*9 / (18 + 1 + 1) = 9/10; tumour 2*2 / (4 + 1 + 3) = 1/2; node: no reference voxel, left out
    summary = structure_dice(cases)
    assert list(summary) == ["liver", "tumour", "node", "aggregated"]
    assert summary["liver"] == pytest.approx(9 / 10) and summary["tumour"] == pytest.approx(1 / 2)
    assert math.isnan(summary["node"]) and summary["aggregated"] == pytest.approx((9 / 10 + 1 / 2) / 2)


def write_run(folder: Path, rows: list[list]) -> Path:
    FolderWriter(folder).write_csv("cases.csv.gz", case_frame(rows))
    return folder


def test_read_cases_round_trips_types_and_missing_values(tmp_path: Path) -> None:
    rows = [row("NA-001", "GTVp", 3, 1, 0, hd95=4.5), row("NA-001", "GTVn", 0, 0, 0)]
    cases = read_cases(write_run(tmp_path, rows))
    assert tuple(cases.columns) == CASE_COLUMNS and cases["case_id"].tolist() == ["NA-001", "NA-001"]
    assert cases["centre"].tolist() == ["NA", "NA"]  # a centre or case named NA stays a string
    assert cases["tp"].dtype == "int64" and cases["dice"].tolist()[0] == pytest.approx(6 / 7)
    assert math.isnan(cases["dice"][1]) and cases["hd95"][0] == 4.5 and math.isnan(cases["hd95"][1])
    assert gzip.decompress((tmp_path / "cases.csv.gz").read_bytes()).decode().startswith(",".join(CASE_COLUMNS))


def test_read_cases_names_the_file_when_it_is_missing_or_not_per_case_rows(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cases.csv.gz: not found"):
        read_cases(tmp_path)
    FolderWriter(tmp_path).write_csv("cases.csv.gz", pd.DataFrame({"seed": [0]}))
    with pytest.raises(UserError, match="columns are seed; expected seed, strategy"):
        read_cases(tmp_path)
    (tmp_path / "cases.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(UserError, match="cannot read it as gzipped CSV"):
        read_cases(tmp_path)


def two_strategies(seeds: tuple[int, ...] = (0,)) -> list[list]:
    """Strategies a and b, each evaluated before (trained_through 0) and after (1) the last experience."""
    rows = []
    for seed in seeds:
        for strategy, found in (("a", 5), ("b", 2)):
            for trained in (0, 1):
                rows += [row("HGJ-001", "GTVp", found, 0, 5 - found, seed=seed, strategy=strategy, trained=trained),
                         row("HGJ-001", "GTVn", 0, 1, 0, seed=seed, strategy=strategy, trained=trained),
                         row("HGJ-001", "GTVp", found, 0, 5 - found, seed=seed, strategy=strategy, trained=trained,
                             setting="ct")]
    return rows


def test_challenger_table_holds_the_final_states_per_case_dice_one_task_per_input_and_structure() -> None:
    table = challenger_table(case_frame(two_strategies()))
    assert tuple(table.columns) == ("task", "case", "algorithm", "value")
    assert table[["task", "case", "algorithm"]].values.tolist() == [
        ["ct/GTVp", "HGJ-001", "a"], ["ct/GTVp", "HGJ-001", "b"],
        ["ctpet/GTVn", "HGJ-001", "a"], ["ctpet/GTVn", "HGJ-001", "b"],
        ["ctpet/GTVp", "HGJ-001", "a"], ["ctpet/GTVp", "HGJ-001", "b"]]
    values = dict(zip(zip(table["task"], table["algorithm"]), table["value"]))
    assert values[("ctpet/GTVp", "a")] == 1.0 and values[("ctpet/GTVp", "b")] == pytest.approx(4 / 7)
    assert math.isnan(values[("ctpet/GTVn", "a")])
    several = challenger_table(case_frame(two_strategies(seeds=(0, 1))))
    assert len(several) == 2 * len(table) and set(several["case"]) == {"seed0/HGJ-001", "seed1/HGJ-001"}


def test_export_challenger_writes_the_table_with_na_for_missing_values(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", two_strategies())
    printed = invoke_cli("export-challenger", run)
    assert printed.exit_code == 0, printed.output
    lines = printed.stdout.splitlines()
    assert lines[0] == "task,case,algorithm,value" and len(lines) == 7
    assert "ctpet/GTVn,HGJ-001,a,NA" in lines and "ctpet/GTVp,HGJ-001,a,1.0" in lines
    out = tmp_path / "challenger.csv"
    written = invoke_cli("export-challenger", run, "-o", out)
    assert written.exit_code == 0 and written.stdout.strip() == str(out)
    assert out.read_text().splitlines() == lines


@pytest.mark.parametrize("args, message", [
    (("missing",), "run folder '{tmp}/missing' does not exist"),
    (("run",), "{tmp}/run/cases.csv.gz: not found"),
    (("run", "-o", "nowhere/x.csv"), "--output '{tmp}/nowhere/x.csv': folder '{tmp}/nowhere' does not exist"),
    (("run", "-o", "."), "--output '{tmp}': is a folder, expected a file"),
])
def test_export_challenger_refuses_bad_input_in_one_line(tmp_path: Path, args: tuple, message: str) -> None:
    (tmp_path / "run").mkdir()
    result = invoke_cli("export-challenger", *(str(tmp_path / a) if i != 1 else a for i, a in enumerate(args)))
    assert result.exit_code == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message.format(tmp=tmp_path)}")
