"""Plasticity on hand-made results matrices, and in the summary of a hand-made metric table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pemma_cl.evaluation.plasticity import PLASTICITY_REFERENCE, plasticity, plasticity_per_experience
from pemma_cl.report.summary import METRIC_COLUMNS, PLASTICITY, summarize

# R[i][j]: Dice on experience j after training through experience i.
STRATEGY = np.array([[0.6, 0.1], [0.5, 0.7]])
ALONE = np.array([[0.8, 0.2], [0.3, 0.6]])  # each experience's model trained on it alone


def test_plasticity_by_hand() -> None:
    assert plasticity_per_experience(STRATEGY, ALONE) == pytest.approx([0.6 - 0.8, 0.7 - 0.6])
    assert plasticity(STRATEGY, ALONE) == pytest.approx(-0.05)  # mean(-0.2, 0.1)
    assert plasticity(ALONE, ALONE) == 0.0  # the reference against itself


def test_plasticity_skips_an_experience_without_a_score() -> None:
    unscored = STRATEGY.copy()
    unscored[1, 1] = math.nan
    assert plasticity(unscored, ALONE) == pytest.approx(-0.2)
    assert math.isnan(plasticity(np.full((2, 2), math.nan), ALONE))


def test_no_model_trained_alone_means_no_plasticity() -> None:
    assert plasticity(STRATEGY, None) is None


def test_matrices_of_different_streams_are_refused() -> None:
    with pytest.raises(ValueError, match="same shape"):
        plasticity(STRATEGY, np.zeros((3, 3)))


def _rows(strategy: str, R: np.ndarray) -> list[dict]:
    return [{"seed": 0, "strategy": strategy, "trained_through": i, "trained_through_name": f"e{i}",
             "eval_experience": j, "eval_experience_name": f"e{j}", "centre": f"c{j}", "input": inp,
             "structure": "aggregated", "dice": R[i, j], "dice_case_mean": R[i, j], "hd95": 1.0, "n_cases": 4}
            for inp in ("ct", "ctpet") for i in range(2) for j in range(2)]


def test_summary_reports_plasticity_only_against_separate_models() -> None:
    table = pd.DataFrame(_rows("o-lora", STRATEGY) + _rows(PLASTICITY_REFERENCE, ALONE), columns=METRIC_COLUMNS)
    summary = summarize(table, {}, {"o-lora": "task-agnostic", PLASTICITY_REFERENCE: "task-aware (task label given)"})
    assert summary["o-lora"]["inputs"]["ctpet"][PLASTICITY] == pytest.approx(-0.05)
    assert summary["o-lora"]["inputs"]["ct"][PLASTICITY] == pytest.approx(-0.05)
    assert summary[PLASTICITY_REFERENCE]["inputs"]["ctpet"][PLASTICITY] is None  # 0 by construction: not a result
    assert summary["o-lora"]["inputs"]["ctpet"]["bwt"] == pytest.approx(0.5 - 0.6)  # the other metrics as before
    alone = summarize(table[table["strategy"] == "o-lora"], {})
    assert PLASTICITY not in alone["o-lora"]["inputs"]["ctpet"]  # no reference in the run: no plasticity at all
