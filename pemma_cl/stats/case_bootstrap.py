"""Case-level bootstrap of a value computed from one seed's per-case rows: how much the test cases alone move it.

The test cases of each centre are drawn again with replacement (stratified by centre, each centre keeping its
number of cases), and the value is recomputed on the drawn rows; a case drawn twice counts twice. Every strategy's
rows of a drawn case come along with it, so a difference between two strategies is bootstrapped paired. The cases
resampled are those that enter the value (a forgetting contrast: the tracked cases of the earlier experiences, not
the ones only the final state scores). A cross-fitted value splits each resample's *distinct* drawn cases in two
halves (:func:`resample_halves`), so the copies of a case always fall in the same half. The spread covers case
sampling only: not the seed's other draws (cohort, split, initialisation, data order), which only several seeds
show. The interval is the normal one from the bootstrap standard error (``value ± z · SE``). Every draw comes from a
seeded generator.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from pemma_cl.stats.intervals import CONFIDENCE

#: Resamples per bootstrap (every contrast's are drawn at once, from case weights).
N_RESAMPLES = 1000
#: How a case-level interval is labelled wherever it is shown.
CASE_INTERVAL_NOTE = (f"{CONFIDENCE:.0%} case-level bootstrap interval (test cases redrawn within each centre, "
                      "paired): covers case sampling only, not seed-to-seed variation")


@dataclass(frozen=True)
class CaseBootstrap:
    """A value, its bootstrap standard error over cases and the resamples it rests on."""

    value: float
    se: float
    n_resamples: int

    @property
    def interval(self) -> tuple[float, float]:
        """The normal interval ``value ± z · se``."""
        half = float(stats.norm.ppf(0.5 + CONFIDENCE / 2)) * self.se
        return self.value - half, self.value + half


def stratified_weights(units: pd.DataFrame, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each case is drawn in each resample (``n_resamples x len(units)``): the cases of each centre
    (``units``: one row per ``centre``, ``case_id``) drawn with replacement, as many as the centre has."""
    weights = np.zeros((n_resamples, len(units)), dtype=np.int64)
    for _, members in units.groupby("centre", sort=True).indices.items():
        weights[:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), n_resamples)
    return weights


def resample_halves(centres: np.ndarray, weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cross-fitting halves of every resample's distinct drawn cases, as
    :func:`~pemma_cl.evaluation.cl_metrics.crossfit_forgetting` splits a seed's cases: the drawn cases of each centre
    (centres in sorted order) shuffled, then dealt alternately over all centres.

    Args:
        centres: each case's centre (``len(units)``).
        weights: ``resamples x cases`` draw counts (:func:`stratified_weights`).
        rng: the generator of the shuffles.

    Returns:
        ``resamples x cases``: 0 or 1, a drawn case's half (all its copies in it); -1 for a case not drawn.
    """
    drawn = weights > 0
    _, centre_rank = np.unique(np.asarray(centres), return_inverse=True)
    # Sort key: centre, then a random order within it; undrawn cases last (they are not dealt).
    key = np.where(drawn, centre_rank[None, :] + rng.random(weights.shape), np.inf)
    order = np.argsort(key, axis=1, kind="stable")
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(weights.shape[1])[None, :], axis=1)
    return np.where(drawn, position % 2, -1)


def resample_cases(cases: pd.DataFrame, units: pd.DataFrame, weights: np.ndarray) -> pd.DataFrame:
    """The rows of each case repeated as often as ``weights`` (one resample) says, the k-th copy's id suffixed
    ``#k``."""
    picks = units.iloc[np.repeat(np.arange(len(units)), weights)].reset_index(drop=True)
    picks["copy"] = picks.groupby(["centre", "case_id"]).cumcount()
    out = cases.merge(picks, on=["centre", "case_id"])
    out["case_id"] = out["case_id"].astype(str) + "#" + out.pop("copy").astype(str)
    return out


def case_units(cases: pd.DataFrame) -> pd.DataFrame:
    """The cases of ``cases`` (columns ``centre``, ``case_id``), sorted: the resampling units."""
    return cases[["centre", "case_id"]].drop_duplicates().sort_values(["centre", "case_id"]).reset_index(drop=True)


def case_bootstrap(cases: pd.DataFrame, value: Callable[[pd.DataFrame], float], seed: int = 0,
                   n_resamples: int = N_RESAMPLES,
                   weighted: Callable[[pd.DataFrame, np.ndarray], np.ndarray] | None = None) -> CaseBootstrap | None:
    """``value(cases)`` and its standard error over ``n_resamples`` case resamples (generator seeded with ``seed``).

    Args:
        cases: per-case rows (at least ``centre`` and ``case_id``).
        value: the value of a set of rows.
        seed: seeds the draws.
        n_resamples: how many resamples.
        weighted: optional fast form of ``value``: ``weighted(units, weights)`` gives the value of every resample at
            once from the case weights of :func:`stratified_weights` (``units`` from :func:`case_units`).

    Returns:
        None where the value is undefined (NaN) or fewer than two resamples give a finite value.
    """
    point = value(cases)
    if math.isnan(point):
        return None
    units = case_units(cases)
    weights = stratified_weights(units, n_resamples, np.random.default_rng(seed))
    if weighted is not None:
        draws = weighted(units, weights)
    else:
        draws = np.array([value(resample_cases(cases, units, row)) for row in weights])
    draws = draws[~np.isnan(draws)]
    if draws.size < 2:
        return None
    return CaseBootstrap(point, float(draws.std(ddof=1)), int(draws.size))
