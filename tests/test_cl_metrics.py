"""Continual-learning metrics on hand-made results matrices (R[i, j]: after training i, tested on j)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pemma_cl.benchmarks.forgetting_calibration import calibrate
from pemma_cl.evaluation.cl_metrics import (
    backward_transfer,
    crossfit_forgetting,
    crossfit_forgetting_mean,
    final_average,
    forgetting,
    forgetting_per_experience,
    forward_transfer,
)

# Experience 0 peaks at 0.9 after training on 1, then ends at 0.6; experience 1 ends at 0.5.
R = np.array(
    [
        [0.8, 0.3, 0.2],
        [0.9, 0.7, 0.4],
        [0.6, 0.5, 0.9],
    ]
)
BASELINE = np.array([0.1, 0.2, 0.1])


def test_final_average() -> None:
    assert final_average(R) == pytest.approx((0.6 + 0.5 + 0.9) / 3)


def test_max_based_forgetting_differs_from_minus_bwt() -> None:
    # f_0 = max(0.8, 0.9) - 0.6 = 0.3; f_1 = max(0.3, 0.7) - 0.5 = 0.2
    assert forgetting_per_experience(R) == pytest.approx([0.3, 0.2])
    assert forgetting(R) == pytest.approx(0.25)
    # BWT = mean(0.6 - 0.8, 0.5 - 0.7) = -0.2, so -BWT = 0.2 != 0.25
    assert backward_transfer(R) == pytest.approx(-0.2)


def test_forward_transfer() -> None:
    # mean(R[0, 1] - b[1], R[1, 2] - b[2]) = mean(0.3 - 0.2, 0.4 - 0.1) = 0.2
    assert forward_transfer(R, BASELINE) == pytest.approx(0.2)


def test_single_experience_is_zero() -> None:
    R1 = np.array([[0.7]])
    assert final_average(R1) == pytest.approx(0.7)
    assert forgetting_per_experience(R1).shape == (0,)
    assert forgetting(R1) == 0.0
    assert backward_transfer(R1) == 0.0
    assert forward_transfer(R1, np.array([0.1])) == 0.0


def test_nan_entries_are_skipped() -> None:
    Rn = R.copy()
    Rn[1, 0] = math.nan  # f_0 = 0.8 - 0.6 = 0.2
    Rn[2, 1] = math.nan  # f_1 and BWT term of experience 1 undefined
    assert forgetting_per_experience(Rn)[0] == pytest.approx(0.2)
    assert math.isnan(forgetting_per_experience(Rn)[1])
    assert forgetting(Rn) == pytest.approx(0.2)
    assert backward_transfer(Rn) == pytest.approx(0.6 - 0.8)
    assert final_average(Rn) == pytest.approx((0.6 + 0.9) / 2)
    assert math.isnan(final_average(np.full((2, 2), math.nan)))


def test_shape_checks() -> None:
    with pytest.raises(ValueError, match="square"):
        final_average(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="baseline"):
        forward_transfer(R, np.zeros(2))


def test_zero_shot_scores_before_training_are_not_forgetting() -> None:
    # Experience 1 scored 0.9 zero-shot (row 0) but only 0.5 once trained (row 1) and keeps 0.5:
    # nothing learned was lost, so f_1 = max(R[1, 1]) - R[2, 1] = 0.0, not 0.9 - 0.5.
    Rz = np.array([[0.7, 0.9, 0.1], [0.7, 0.5, 0.2], [0.6, 0.5, 0.8]])
    assert forgetting_per_experience(Rz) == pytest.approx([0.1, 0.0])


def _case_rows(table: dict[tuple[int, str], tuple[int, int]], experience: int = 0,
               centres: dict[str, str] | None = None) -> pd.DataFrame:
    """Per-case GTVp rows of one experience from ``{(step, case_id): (tp, fn)}`` (no false positive)."""
    return pd.DataFrame([
        {"trained_through": step, "eval_experience": experience, "centre": (centres or {}).get(case, "CHUM"),
         "case_id": case, "structure": "GTVp", "tp": tp, "fp": 0, "fn": fn}
        for (step, case), (tp, fn) in table.items()])


# Two cases of experience 0 over steps 0..2. Case a peaks at step 1, case b at step 0, both end at Dice 2/3.
TWO_CASES = {(0, "a"): (8, 2), (1, "a"): (10, 0), (2, "a"): (5, 5),
             (0, "b"): (10, 0), (1, "b"): (6, 4), (2, "b"): (5, 5)}


def test_crossfit_forgetting_chooses_on_one_half_and_scores_the_other() -> None:
    # Half {a} peaks at step 1, read on b: 12/16 - 10/15; half {b} peaks at step 0, read on a: 16/18 - 10/15.
    expected = ((12 / 16 - 10 / 15) + (16 / 18 - 10 / 15)) / 2
    assert crossfit_forgetting(_case_rows(TWO_CASES)) == pytest.approx({0: expected})
    # The max-based form on the pooled cases reads more: max(36/38, 32/36) - 20/30.
    pooled = np.array([[36 / 38, np.nan, np.nan], [32 / 36, np.nan, np.nan], [20 / 30, np.nan, np.nan]])
    assert forgetting_per_experience(pooled)[0] == pytest.approx(36 / 38 - 20 / 30)
    assert forgetting_per_experience(pooled)[0] > expected


def test_crossfit_forgetting_mean_over_experiences_leaves_out_the_last_and_the_base() -> None:
    # Experience 1 has only step 1 before the last: chosen whatever the half, 1.0 - 0.5 on each half.
    later = {(1, "c"): (10, 0), (2, "c"): (5, 15), (1, "d"): (10, 0), (2, "d"): (5, 15)}
    base = {(-1, "a"): (10, 0), (-1, "b"): (10, 0)}  # the base's rows: never a candidate peak
    last = {(2, "e"): (10, 0), (2, "f"): (10, 0)}  # the last experience: nothing to forget yet
    rows = pd.concat([_case_rows(TWO_CASES | base), _case_rows(later, 1), _case_rows(last, 2)])
    per_experience = crossfit_forgetting(rows)
    assert sorted(per_experience) == [0, 1]
    assert per_experience[1] == pytest.approx(1.0 - 10 / 25)
    assert crossfit_forgetting_mean(rows) == pytest.approx((per_experience[0] + per_experience[1]) / 2)
    assert crossfit_forgetting_mean(_case_rows(last, 2)) == 0.0  # a single step: nothing to forget


def test_crossfit_halves_are_seeded_and_stratified_by_centre() -> None:
    # Four cases, two per centre; every case peaks at a different step, so the estimate depends on the halves.
    # Stratified halves hold one case of each centre: at most 4 of the 6 pairings ever occur.
    centres = {"a": "CHUM", "b": "CHUM", "c": "MDA", "d": "MDA"}
    table = {(step, case): (10 - abs(step - peak) * 3, abs(step - peak) * 3)
             for case, peak in zip("abcd", (0, 1, 2, 3)) for step in range(5)}
    rows = _case_rows(table, centres=centres)
    assert crossfit_forgetting(rows, seed=3) == crossfit_forgetting(rows, seed=3)
    values = {round(crossfit_forgetting(rows, seed=s)[0], 9) for s in range(40)}
    assert 1 < len(values) <= 2  # {a,c}|{b,d} or {a,d}|{b,c}: the two stratified pairings (each read both ways)


def test_crossfit_forgetting_reads_about_zero_when_nothing_is_forgotten() -> None:
    # Simulated truth (benchmarks/forgetting_calibration.py): recall constant over steps plus case noise.
    nothing = calibrate(reps=30, steps=5, cases=25, centres=1, drop=0.0)
    assert nothing.truth == 0.0
    assert nothing.max_mean > 3 * nothing.max_sd / math.sqrt(30)  # the max of noise: biased upward
    assert abs(nothing.crossfit_mean) < 3 * nothing.crossfit_sd / math.sqrt(30)
    forgotten = calibrate(reps=30, steps=5, cases=25, centres=1, drop=0.1)
    assert abs(forgotten.crossfit_mean - forgotten.truth) < 3 * forgotten.crossfit_sd / math.sqrt(30)
