"""Summary numbers of one seed from a tiny hand-made metric table (2 strategies, 2 experiences)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.report.summary import METRIC_COLUMNS, r_matrix, summarize

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
        "seed": 0,
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
        "hd95": 10 * (1 - dice),  # lower is better
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
    R, _ = r_matrix(metrics, "naive", "ctpet", value="hd95")
    np.testing.assert_allclose(R, 10 * (1 - np.array(MATRICES[("naive", "ctpet")])))
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
    # final HD95: mean over the last row of 10 * (1 - R): 10 * (1 - 0.7)
    assert naive["inputs"]["ctpet"] == pytest.approx({"final_dice": 0.7, "forgetting": 0.3, "bwt": -0.3,
                                                      "fwt_own_start": 0.2, "final_hd95": 3.0})
    assert naive["inputs"]["ct"] == pytest.approx({"final_dice": 0.5, "forgetting": 0.3, "bwt": -0.3,
                                                   "fwt_own_start": 0.0, "final_hd95": 5.0})
    assert replay["inputs"]["ctpet"] == pytest.approx(
        {"final_dice": 0.7, "forgetting": 0.05, "bwt": -0.05, "fwt_own_start": 0.1, "final_hd95": 3.0}
    )
    assert replay["inputs"]["pet"]["final_dice"] == pytest.approx(0.625)
    assert naive["costs"] == COSTS["naive"] and replay["costs"] == COSTS["replay"]
    no_baseline = summarize(metrics[metrics["trained_through"] >= 0], {})
    assert no_baseline["naive"]["inputs"]["ctpet"]["fwt_own_start"] is None
    assert no_baseline["naive"]["costs"] == {} and no_baseline["naive"]["evaluation"] is None
