"""Summary numbers, renderings and plots from a tiny hand-made metric table (2 strategies, 2 experiences)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from pemma_cl.errors import UserError
from pemma_cl.plots import plot_forgetting, plot_r_matrices
from pemma_cl.summary import METRIC_COLUMNS, r_matrix, render_console_table, render_markdown, summarize

NAMES = {-1: "init", 0: "CHUM", 1: "CHUP"}
BASELINE = [0.1, 0.2]
# Aggregated Dice R[trained_through][eval_experience] per (strategy, input).
MATRICES = {
    ("naive", "ct"): [[0.6, 0.2], [0.3, 0.7]],
    ("naive", "pet"): [[0.7, 0.3], [0.4, 0.8]],
    ("naive", "ctpet"): [[0.8, 0.4], [0.5, 0.9]],
    ("replay", "ct"): [[0.5, 0.2], [0.45, 0.6]],
    ("replay", "pet"): [[0.6, 0.3], [0.55, 0.7]],
    ("replay", "ctpet"): [[0.7, 0.3], [0.65, 0.75]],
}
EVALUATION = {"naive": "task-aware (task label given)", "replay": "task-agnostic"}
COSTS = {
    "naive": {"trainable_params": 1000, "total_params": 1000, "trainable_pct": 100.0, "trainable_pct_stored": 50.0,
              "train_seconds": 120.4},
    "replay": {"trainable_params": 1000, "total_params": 1000, "trainable_pct": 100.0, "bytes_per_task": 2048},
}


def _row(strategy: str, inp: str, trained: int, experience: int, structure: str, dice: float) -> dict:
    return {
        "strategy": strategy,
        "trained_through": trained,
        "trained_through_name": NAMES[trained],
        "eval_experience": experience,
        "eval_experience_name": NAMES[experience],
        "centre": NAMES[experience],
        "input": inp,
        "structure": structure,
        "dice": dice,
        "dice_case_mean": dice - 0.05,
        "n_cases": 5,
    }


@pytest.fixture
def metrics() -> pd.DataFrame:
    rows = []
    for (strategy, inp), R in MATRICES.items():
        for j in range(2):
            rows.append(_row(strategy, inp, -1, j, "aggregated", BASELINE[j]))
            for i in range(2):
                rows.append(_row(strategy, inp, i, j, "aggregated", R[i][j]))
                rows.append(_row(strategy, inp, i, j, "GTVp", 0.0))  # must be ignored
    df = pd.DataFrame(rows)
    assert tuple(df.columns) == METRIC_COLUMNS
    return df


def test_r_matrix(metrics: pd.DataFrame) -> None:
    R, baseline = r_matrix(metrics, "naive", "ctpet")
    np.testing.assert_allclose(R, MATRICES[("naive", "ctpet")])
    np.testing.assert_allclose(baseline, BASELINE)
    R, _ = r_matrix(metrics, "naive", "ctpet", structure="GTVp")
    np.testing.assert_allclose(R, np.zeros((2, 2)))
    _, baseline = r_matrix(metrics[metrics["trained_through"] >= 0], "naive", "ct")
    assert baseline is None


def test_r_matrix_rejects_bad_tables(metrics: pd.DataFrame) -> None:
    with pytest.raises(UserError, match="no metric rows"):
        r_matrix(metrics, "ewc", "ct")
    with pytest.raises(UserError, match="several rows"):
        r_matrix(pd.concat([metrics, metrics.iloc[:1]]), "naive", "ct")
    with pytest.raises(UserError, match="lacks column"):
        r_matrix(metrics.drop(columns="dice"), "naive", "ct")


def test_summarize_exact_numbers(metrics: pd.DataFrame) -> None:
    summary = summarize(metrics, COSTS, EVALUATION)
    assert {name: entry["evaluation"] for name, entry in summary.items()} == EVALUATION
    assert list(summary) == ["naive", "replay"]
    naive, replay = summary["naive"], summary["replay"]
    assert list(naive["inputs"]) == ["ct", "pet", "ctpet"]
    # naive ctpet: final mean(0.5, 0.9); forgetting 0.8 - 0.5; BWT 0.5 - 0.8; FWT 0.4 - 0.2
    assert naive["inputs"]["ctpet"] == pytest.approx({"final_dice": 0.7, "forgetting": 0.3, "bwt": -0.3, "fwt_own_start": 0.2})
    assert naive["inputs"]["ct"] == pytest.approx({"final_dice": 0.5, "forgetting": 0.3, "bwt": -0.3, "fwt_own_start": 0.0})
    assert replay["inputs"]["ctpet"] == pytest.approx(
        {"final_dice": 0.7, "forgetting": 0.05, "bwt": -0.05, "fwt_own_start": 0.1}
    )
    assert replay["inputs"]["pet"]["final_dice"] == pytest.approx(0.625)
    assert naive["costs"] == COSTS["naive"] and replay["costs"] == COSTS["replay"]
    no_baseline = summarize(metrics[metrics["trained_through"] >= 0], {})
    assert no_baseline["naive"]["inputs"]["ctpet"]["fwt_own_start"] is None
    assert no_baseline["naive"]["costs"] == {} and no_baseline["naive"]["evaluation"] is None


def test_render_markdown_and_console(metrics: pd.DataFrame) -> None:
    summary = summarize(metrics, COSTS, EVALUATION)
    text = render_markdown(summary)
    assert ("| naive | task-aware (task label given) | 0.500 | 0.600 | 0.700 | 0.300 | 0.300 | 0.300 | -0.300 "
            "| 100.00 | 50.00 | 120 |") in text
    assert "| replay | task-agnostic | 0.525 | 0.625 | 0.700 | 0.050 | 0.050 | 0.050 | -0.050 | 100.00 | – | – |" in text
    assert "max-based (Chaudhry" in text and "GEM" in text and "FWT (vs own start)" in text
    table = render_console_table(summary)
    assert table.row_count == 2
    console = Console(record=True, width=250)
    console.print(table)
    shown = console.export_text()
    assert "replay" in shown and "task-agnostic" in shown and "task-aware" in shown


def test_plots_write_pngs(metrics: pd.DataFrame, tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n"
    fig = plot_forgetting(metrics, tmp_path / "forgetting.png")
    assert (tmp_path / "forgetting.png").read_bytes()[:8] == png
    assert len(fig.axes) == 3
    assert [ax.get_title() for ax in fig.axes] == ["CT", "PET", "CT+PET"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["init", "CHUM", "CHUP"]
    fig = plot_r_matrices(metrics, tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == png
    assert len(fig.axes) == 2 * 3 + 1  # heatmaps plus the colour bar
