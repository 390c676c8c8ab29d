"""One seed's case-level interval of a forgetting contrast: only the tracked cases are redrawn, the cross-fitting
halves stay disjoint in every resample, and there are at least 1000 resamples."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from pemma_cl.stats.case_bootstrap import (
    N_RESAMPLES,
    case_units,
    resample_cases,
    resample_halves,
    stratified_weights,
)
from pemma_cl.evaluation.cl_metrics import held_out_drop
from pemma_cl.evaluation.per_case import CASE_COLUMNS, aggregated_dice
from pemma_cl.report.contrasts import (
    PrimaryContrast,
    case_value,
    contrast_bootstrap,
    contrast_rows,
    weighted_contrast_forgetting,
)

DROP = PrimaryContrast("forget", "Earlier centres still served from CT alone", "centers", "pemma-lora-shared", None,
                       "forgetting_drop", "ct", "aggregated", 0.03, "below")
CROSSFIT = replace(DROP, metric="forgetting")


def seed_rows(rng: np.random.Generator, untracked: int = 2) -> pd.DataFrame:
    """Three experiences (steps 0..2) of two strategies: experience 0 has 6 tracked cases in two centres, experience 1
    has 4 in one; each also has ``untracked`` cases scored after the last step only (their counts from another
    generator); experience 2 (the last) has 3. GTVp and GTVn, random counts; a zero-shot score and the base's, which
    no forgetting estimator reads."""
    plan = {0: {"CHUM": 3, "CHUP": 3}, 1: {"MDA": 4}, 2: {"HGJ": 3}}
    others = np.random.default_rng(99)
    out = []
    for strategy in ("pemma-lora-shared", "early-fusion"):
        for experience, centres in plan.items():
            for centre, count in centres.items():
                cases = [(f"{centre}-{k}", range(-1, 3), rng) for k in range(count)]
                cases += [(f"{centre}-x{k}", [2], others) for k in range(untracked)]
                for case, steps, draw in cases:
                    for step in steps:
                        for structure in ("GTVp", "GTVn"):
                            tp, fp, fn = (int(v) for v in draw.integers(0, 30, 3))
                            out.append([0, strategy, step, f"s{step}", experience, f"e{experience}", centre, case, "ct",
                                        structure, tp, fp, fn, tp + fn, tp + fp, 2 * tp / max(2 * tp + fp + fn, 1),
                                        math.nan] + [math.nan] * (len(CASE_COLUMNS) - 17))
    return pd.DataFrame(out, columns=list(CASE_COLUMNS))


@pytest.mark.parametrize("contrast", [DROP, CROSSFIT], ids=["drop", "cross-fitted"])
def test_only_the_tracked_cases_of_the_earlier_experiences_are_resampled(contrast: PrimaryContrast) -> None:
    cases = seed_rows(np.random.default_rng(0))
    read = contrast_rows(cases, contrast)
    assert set(read["case_id"]) == {*(f"CHUM-{k}" for k in range(3)), *(f"CHUP-{k}" for k in range(3)),
                                    *(f"MDA-{k}" for k in range(4))}
    assert read["trained_through"].min() >= 0 and (read["trained_through"] >= read["eval_experience"]).all()
    found = contrast_bootstrap(cases, contrast, seed=4)
    assert found.n_resamples == N_RESAMPLES >= 1000
    # Untracked cases (more of them, other scores) change neither the value nor a single resample.
    other = seed_rows(np.random.default_rng(0), untracked=5)
    assert contrast_bootstrap(other, contrast, seed=4) == found


def test_every_resample_keeps_the_copies_of_a_case_in_one_half() -> None:
    units = pd.DataFrame({"centre": ["CHUM"] * 5 + ["MDA"] * 4, "case_id": [f"c{k}" for k in range(9)]})
    weights = stratified_weights(units, 1000, np.random.default_rng(1))
    halves = resample_halves(units["centre"].to_numpy(), weights, np.random.default_rng(2))
    assert (halves == -1).any() and (weights > 1).any()  # cases left out, cases drawn twice
    for row, half in zip(weights, halves):
        ids = [np.repeat(units["case_id"].to_numpy(), row * (half == h)) for h in (0, 1)]  # the resample's draws
        assert not set(ids[0]) & set(ids[1])
        assert set(ids[0]) | set(ids[1]) == set(units["case_id"][row > 0])
        assert abs(len(set(ids[0])) - len(set(ids[1]))) <= 1  # the distinct drawn cases dealt alternately
    assert ((halves == -1) == (weights == 0)).all()


def test_the_fast_drop_bootstrap_equals_recomputing_on_the_drawn_rows() -> None:
    cases = seed_rows(np.random.default_rng(2))
    rows = contrast_rows(cases, replace(DROP, reference="early-fusion"))
    units = case_units(rows)
    weights = stratified_weights(units, 25, np.random.default_rng(0))
    for contrast in (DROP, replace(DROP, reference="early-fusion")):
        slow = [case_value(resample_cases(rows, units, row), contrast) for row in weights]
        assert weighted_contrast_forgetting(rows, contrast, units, weights) == pytest.approx(slow)


def test_the_fast_cross_fitted_bootstrap_reads_each_half_of_the_drawn_rows() -> None:
    # Recomputed on the drawn rows: each half's aggregated Dice per step (a case drawn twice counted twice, in the half
    # of its case), the peak chosen on one half and read on the other, both ways, over the earlier experiences.
    cases = seed_rows(np.random.default_rng(3))
    rows = contrast_rows(cases, CROSSFIT)
    units = case_units(rows)
    weights = stratified_weights(units, 15, np.random.default_rng(0))
    fast = weighted_contrast_forgetting(rows, CROSSFIT, units, weights, seed=9)
    halves = {}
    for j in (0, 1):
        members = np.flatnonzero(units["case_id"].isin(rows.loc[rows["eval_experience"] == j, "case_id"]))
        halves[j] = resample_halves(units["centre"].to_numpy()[members], weights[:, members],
                                    np.random.default_rng([9, j, 1]))
        halves[j] = dict(zip(units["case_id"].to_numpy()[members], halves[j].T))
    for r, row in enumerate(weights):
        drawn = resample_cases(rows, units, row)
        drawn["original"] = drawn["case_id"].str.split("#").str[0]
        per_experience = []
        for j in (0, 1):
            mine = drawn[drawn["eval_experience"] == j]
            half = mine["original"].map(lambda case: halves[j][case][r])
            dice = [mine[half == h].groupby("trained_through").apply(aggregated_dice, include_groups=False)
                    .reindex(range(j, 3)).to_numpy()[None, :] for h in (0, 1)]
            per_experience.append((held_out_drop(dice[0], dice[1]) + held_out_drop(dice[1], dice[0]))[0] / 2)
        assert fast[r] == pytest.approx(np.mean(per_experience))
