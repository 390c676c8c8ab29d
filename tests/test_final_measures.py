"""The final state's boundary and detection measures, from hand-made per-case rows."""

from __future__ import annotations

import math

import pytest

from pemma_cl.evaluation.final_measures import FINAL_MEASURES, final_measures
from pemma_cl.evaluation.per_case import case_frame


def row(seed: int, state: int, case: str, nsd: float | None, tp: int | None, fp: int, fn: int, fp_ml: float,
        fn_ml: float) -> list:
    """A per-case row of strategy ``s`` on CT+PET input, structure ``GTVn``, at ``state`` (the last is 1)."""
    measures = [nsd, tp, fp, fn, fp_ml, fn_ml] if tp is not None else [None] * 6
    return [seed, "s", state, f"E{state}", 0, "E0", "A", case, "ctpet", "GTVn", 1, 0, 0, 1, 1, 1.0, None, *measures]


def test_measures_are_read_from_the_final_state_aggregated_per_seed_then_averaged() -> None:
    cases = case_frame([
        row(0, 0, "c1", None, None, 0, 0, 0, 0),  # an earlier state: no measure, never read
        row(0, 1, "c1", 0.8, 2, 1, 0, 0.5, 0.0),
        row(0, 1, "c2", None, 0, 0, 0, 0.0, 0.0),  # nothing to find, nothing found: NSD undefined
        row(1, 1, "c1", 0.4, 1, 0, 1, 0.0, 2.0),
        row(1, 1, "c2", 0.6, 0, 1, 0, 1.0, 0.0),
    ])
    measures = final_measures(cases)
    assert list(measures.columns) == ["strategy", "input", "structure", *FINAL_MEASURES, "seeds"]
    only = measures.iloc[0]
    # seed 0: NSD 0.8 (one defined case), F1 2*2/(4+1+0) = 0.8, FP volume (0.5+0)/2, FN 0
    # seed 1: NSD 0.5, F1 2*1/(2+1+1) = 0.5, FP volume 0.5, FN volume 1.0
    assert only["nsd"] == pytest.approx((0.8 + 0.5) / 2) and only["lesion_f1"] == pytest.approx((0.8 + 0.5) / 2)
    assert only["fp_volume_ml"] == pytest.approx(0.375) and only["fn_volume_ml"] == pytest.approx(0.5)
    assert only["seeds"] == 2


def test_a_seed_with_nothing_to_detect_has_no_f1_and_a_run_without_measures_has_no_row() -> None:
    empty = final_measures(case_frame([row(0, 1, "c1", None, 0, 0, 0, 0.0, 0.0)]))
    assert math.isnan(empty.iloc[0]["lesion_f1"]) and empty.iloc[0]["fp_volume_ml"] == 0
    assert final_measures(case_frame([row(0, 1, "c1", None, None, 0, 0, 0, 0)])).empty
