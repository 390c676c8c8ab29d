"""Continual-learning metrics on hand-made results matrices (R[i, j]: after training i, tested on j)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pemma_cl.evaluation.cl_metrics import (
    backward_transfer,
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
