"""The run summary over seeds: t-intervals, paired differences against the reference, and their tables."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from pemma_cl.stats.intervals import t_interval
from pemma_cl.report.seeds import aggregate, render_console_table, render_markdown

#: Student t quantile t(0.975, 2), from tables.
T_975_2 = 4.302653


def _summary(dice: dict[str, float], seconds: float) -> dict:
    """One seed's summarize() output: final CT+PET Dice per strategy; every other metric 0."""
    return {name: {"evaluation": "task-agnostic",
                   "inputs": {"ctpet": {"final_dice": value, "forgetting": 0.0, "bwt": 0.0, "fwt_own_start": None,
                                        "final_hd95": math.nan}},
                   "costs": {"trainable_params": 100, "trainable_pct": 10.0, "train_seconds": seconds, "note": "x"}}
            for name, value in dice.items()}


#: Strategy A beats the reference by 0.10, 0.12, 0.08 while both move a lot from seed to seed.
PER_SEED = {0: _summary({"A": 0.50, "early-fusion": 0.40}, 10.0),
            1: _summary({"A": 0.72, "early-fusion": 0.60}, 20.0),
            2: _summary({"A": 0.38, "early-fusion": 0.30}, 30.0)}


def test_t_interval_by_hand() -> None:
    estimate = t_interval([0.5, 0.6, 0.7, None, math.nan])
    half = T_975_2 * 0.1 / math.sqrt(3)  # sample sd of 0.5, 0.6, 0.7 is 0.1
    assert (estimate.mean, estimate.n) == (pytest.approx(0.6), 3)
    assert (estimate.low, estimate.high) == (pytest.approx(0.6 - half, abs=1e-6), pytest.approx(0.6 + half, abs=1e-6))
    assert estimate.excludes(0.0) and not estimate.excludes(0.6)
    assert t_interval([0.4]).as_dict() == {"mean": 0.4, "low": None, "high": None, "n": 1}
    assert t_interval([None]).mean is None and not t_interval([0.4]).excludes(0.0)


def test_aggregate_means_intervals_and_paired_differences() -> None:
    summary = aggregate(PER_SEED, "early-fusion")
    assert summary["seeds"] == [0, 1, 2] and summary["reference"] == "early-fusion"
    a = summary["strategies"]["A"]
    assert a["inputs"]["ctpet"]["final_dice"]["mean"] == pytest.approx(0.5333333)
    assert a["inputs"]["ctpet"]["fwt_own_start"] == {"mean": None, "low": None, "high": None, "n": 0}
    assert a["costs"] == {"trainable_params": 100, "trainable_pct": 10.0, "train_seconds": 20.0, "note": "x"}
    paired = summary["paired"]["A"]["ctpet"]["final_dice"]
    half = T_975_2 * 0.02 / math.sqrt(3)
    assert paired["mean"] == pytest.approx(0.10) and paired["n"] == 3
    assert paired["low"] == pytest.approx(0.10 - half, abs=1e-6) and paired["high"] == pytest.approx(0.10 + half, abs=1e-6)
    unpaired = a["inputs"]["ctpet"]["final_dice"]
    assert paired["high"] - paired["low"] < (unpaired["high"] - unpaired["low"]) / 5  # pairing removes shared noise
    assert "early-fusion" not in summary["paired"]
    assert aggregate(PER_SEED, None)["paired"] == {}


def test_render_reads_which_differences_the_seeds_separate() -> None:
    text = render_markdown([("run", aggregate(PER_SEED, "early-fusion"))])
    assert "**Mean over seeds 0, 1, 2; ± half-width of the 95% interval**" in text
    assert "| A | task-agnostic | – | – | 0.533 ± " in text
    assert f"| A | – | – | +0.100 ± {T_975_2 * 0.02 / math.sqrt(3):.3f} * |" in text
    assert "Student-t" in text and "Forgetting is cross-fitted" in text and "max-based form (Chaudhry" in text
    one_seed = render_markdown([("run", aggregate({0: PER_SEED[0]}, "early-fusion"))])
    assert "**Seed 0**" in one_seed and "±" not in one_seed
    assert "| A | – | – | +0.100 | +0.000 |" in one_seed  # a paired difference without an interval, and no star


def test_the_legend_names_the_structures_the_run_recorded() -> None:
    lesion = aggregate(PER_SEED, "early-fusion", ("lesion",))
    assert lesion["structures"] == ["lesion"]
    text = render_markdown([("run", lesion)])
    assert "'aggregated' is lesion's Dice (the data's one structure)" in text and "GTV" not in text
    head_and_neck = render_markdown([("run", aggregate(PER_SEED, "early-fusion", ("GTVp", "GTVn")))])
    assert "'aggregated' is the mean over GTVp and GTVn, leaving out" in head_and_neck
    legacy = aggregate(PER_SEED, None)  # a run stored before summaries recorded structures: the head-and-neck cohort's
    assert "structures" not in legacy and "the mean over GTVp and GTVn" in render_markdown([("run", legacy)])
    assert "the mean over the data's structures" in render_markdown([("a", lesion), ("b", legacy)])  # they differ


def test_several_runs_side_by_side() -> None:
    runs = [("run-a", aggregate(PER_SEED, "early-fusion")), ("run-b", aggregate({0: PER_SEED[0]}, None))]
    text = render_markdown(runs)
    assert "| Run | Strategy | Evaluation |" in text
    assert "| run-a | A |" in text and "| run-b | early-fusion |" in text
    tables = render_console_table(runs)
    console = Console(record=True, width=250)
    for table in tables:
        console.print(table)
    shown = console.export_text()
    assert len(tables) == 2 and "run-b" in shown and "agnostic" in shown  # the console's short name


def test_the_console_summary_fits_the_terminal_and_wide_shows_every_column() -> None:
    """The stored three-seed `centers` reference (six strategies, intervals, paired table): at 80 columns its
    console tables are cut into several, none wider and no cell cut short; at 120 the main table is one; `--wide`
    needs more and holds every column of summary.md."""
    import json
    from pathlib import Path

    from rich.console import Console

    from pemma_cl.report.seeds import COST_COLUMNS, MAIN_COLUMNS, render_console_table

    summary = json.loads((Path(__file__).parents[1] / "results/reference/centers/summary.json").read_text())
    narrow = Console(width=80, record=True)
    for table in render_console_table([("centers", summary)], width=80):
        narrow.print(table)
    text = narrow.export_text()
    assert max(map(len, text.splitlines())) <= 80 and "…" not in text
    assert text.count("Strategy") == 3 and text.count("0.632") == 1  # main table in two parts; early fusion's Dice
    console = Console(width=400)
    compact = render_console_table([("centers", summary)], width=120)
    assert len(compact) == 2 and all(console.measure(table).maximum <= 120 for table in compact)
    assert [c.header for c in compact[0].columns][:2] == ["Strategy", "Eval."]
    wide = render_console_table([("centers", summary)], wide=True)
    assert console.measure(wide[0]).maximum > 120
    assert len(wide[0].columns) == 2 + len(MAIN_COLUMNS) + len(COST_COLUMNS)


def test_plasticity_and_the_final_measures_get_their_own_table_only_when_the_run_has_them() -> None:
    per_seed = {seed: _summary({"A": 0.5, "separate-models": 0.6}, 1.0) for seed in (0, 1)}
    for seed, value in ((0, -0.10), (1, -0.06)):
        per_seed[seed]["A"]["inputs"]["ctpet"]["plasticity"] = value
    summary = aggregate(per_seed, None)
    assert summary["strategies"]["A"]["inputs"]["ctpet"]["plasticity"]["mean"] == pytest.approx(-0.08)
    assert "plasticity" not in summary["strategies"]["separate-models"]["inputs"]["ctpet"]
    assert "Plasticity" not in render_markdown([("run", aggregate(PER_SEED, "early-fusion"))])
    summary["final_measures"] = {"A": {"ctpet": {"GTVn": {"nsd": 0.25, "lesion_f1": 0.5, "fp_volume_ml": 1.234,
                                                          "fn_volume_ml": None}}}}
    shown = render_markdown([("run", summary)])
    assert "| Strategy | Plasticity CT+PET | NSD GTVn | Lesion F1 GTVn | FP mL GTVn | FN mL GTVn |" in shown
    assert "| A | -0.080 ± " in shown and "| 0.250 | 0.500 | 1.23 | – |" in shown
    assert "| separate-models | – | – | – | – | – |" in shown
