"""Summary numbers of one seed from a tiny hand-made metric table (2 strategies, 2 experiences)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.evaluation.per_case import CASE_COLUMNS
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
    assert naive["inputs"]["ctpet"] == pytest.approx({"final_dice": 0.7, "forgetting": 0.3, "forgetting_max": 0.3,
                                                      "bwt": -0.3, "fwt_own_start": 0.2, "final_hd95": 3.0})
    assert naive["inputs"]["ct"] == pytest.approx({"final_dice": 0.5, "forgetting": 0.3, "forgetting_max": 0.3,
                                                   "bwt": -0.3, "fwt_own_start": 0.0, "final_hd95": 5.0})
    assert replay["inputs"]["ctpet"] == pytest.approx(
        {"final_dice": 0.7, "forgetting": 0.05, "forgetting_max": 0.05, "bwt": -0.05, "fwt_own_start": 0.1,
         "final_hd95": 3.0}
    )
    assert replay["inputs"]["pet"]["final_dice"] == pytest.approx(0.625)
    assert naive["costs"] == COSTS["naive"] and replay["costs"] == COSTS["replay"]
    no_baseline = summarize(metrics[metrics["trained_through"] >= 0], {})
    assert no_baseline["naive"]["inputs"]["ctpet"]["fwt_own_start"] is None
    assert no_baseline["naive"]["costs"] == {} and no_baseline["naive"]["evaluation"] is None


def _case_rows(counts: dict[tuple[int, str], tuple[int, int]]) -> pd.DataFrame:
    """GTVp rows of experience 0 for every strategy and input, from ``{(step, case_id): (tp, fn)}``."""
    return pd.DataFrame([
        {**dict.fromkeys(CASE_COLUMNS), "seed": 0, "strategy": strategy, "trained_through": step, "eval_experience": 0,
         "centre": "CHUM", "case_id": case, "input": inp, "structure": "GTVp", "tp": tp, "fp": 0, "fn": fn}
        for strategy, inp in MATRICES for (step, case), (tp, fn) in counts.items()])


def test_summarize_reads_forgetting_bwt_from_the_per_case_rows_when_given(metrics: pd.DataFrame) -> None:
    # Experience 0's two cases: a falls from Dice 1 to 2/3, b stays at 16/18. With one step before the last, each
    # half's peak is step 0: the halves read 1/3 and 0, so cross-fitted forgetting is 1/6 for every strategy and
    # input. The max-based form and BWT read the pooled cases: 36/38 at step 0, 26/33 at step 1. Final Dice keeps
    # reading the metric table (0.5 for naive CT: the mean of its last row).
    cases = _case_rows({(0, "a"): (10, 0), (1, "a"): (5, 5), (0, "b"): (8, 2), (1, "b"): (8, 2)})
    summary = summarize(metrics, COSTS, EVALUATION, cases)
    assert summary["naive"]["inputs"]["ctpet"]["forgetting"] == pytest.approx(1 / 6)
    assert summary["naive"]["inputs"]["ctpet"]["forgetting_max"] == pytest.approx(36 / 38 - 26 / 33)
    assert summary["replay"]["inputs"]["pet"]["bwt"] == pytest.approx(26 / 33 - 36 / 38)
    assert summary["naive"]["inputs"]["ct"]["final_dice"] == pytest.approx(0.5)
    with pytest.raises(UserError, match="per-case rows lack strategy='replay'"):
        summarize(metrics, COSTS, EVALUATION, cases[cases["strategy"] == "naive"])


def test_forgetting_and_bwt_leave_out_cases_not_scored_at_every_state(metrics: pd.DataFrame) -> None:
    # Case c is scored only at the final state (it is not tracked): the continual metrics read a and b alone.
    tracked = {(0, "a"): (10, 0), (1, "a"): (5, 5), (0, "b"): (8, 2), (1, "b"): (8, 2)}
    with_untracked = _case_rows({**tracked, (1, "c"): (0, 10)})
    summary = summarize(metrics, COSTS, EVALUATION, with_untracked)
    assert summary == summarize(metrics, COSTS, EVALUATION, _case_rows(tracked))
    # Without per-case rows, states scored on different numbers of cases cannot be compared.
    uneven = metrics.assign(n_cases=metrics["trained_through"].map({-1: 2, 0: 2, 1: 3}))
    with pytest.raises(UserError, match="the states were scored on different cases"):
        summarize(uneven, COSTS, EVALUATION)
