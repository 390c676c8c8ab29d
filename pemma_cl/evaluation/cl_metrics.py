"""Continual-learning metrics over a results matrix ``R``.

Convention: ``R[i, j]`` is the score on the test set of experience ``j`` after training through
experience ``i`` (``R`` is square, ``T x T``). NaN entries (not evaluated / undefined) are skipped
by NaN-aware means; a mean over no finite value is NaN. With a single experience (``T == 1``)
there is nothing to forget or transfer and forgetting, BWT and FWT are 0.0.

:func:`crossfit_forgetting` works on per-case rows instead of ``R`` (see its docstring): max-based forgetting
reads a maximum over noisy scores, so it is above the true forgetting even when nothing is forgotten; the
cross-fitted form chooses the peak on one half of the cases and scores it on the other.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pemma_cl.evaluation.per_case import aggregated_dice, scored_at_every_state

__all__ = [
    "backward_transfer",
    "crossfit_forgetting",
    "crossfit_forgetting_mean",
    "final_average",
    "forgetting",
    "forgetting_per_experience",
    "forward_transfer",
]


def _check_square(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty square T x T matrix, got shape {R.shape}")
    return R


def _nanmean(values: np.ndarray) -> float:
    """Mean over the finite entries of ``values``; NaN (without a warning) if there are none."""
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def final_average(R: np.ndarray) -> float:
    """Average score over all experiences after training on the whole stream: mean of ``R[T-1, :]``."""
    R = _check_square(R)
    return _nanmean(R[-1])


def forgetting_per_experience(R: np.ndarray) -> np.ndarray:
    """Max-based forgetting of each earlier experience (Chaudhry et al., 2018, "Riemannian Walk").

    ``f_j = max_{j <= l < T-1} R[l, j] - R[T-1, j]`` for ``j < T-1``: the drop from the best score
    experience ``j`` had once it was trained on to its final score. Rows before ``j`` was trained
    (``l < j``, zero-shot scores) are left out: what a model never learned it cannot forget.

    Returns:
        Vector of length ``T - 1`` (empty when ``T == 1``); NaN where column ``j`` has no finite
        value before the last row or its final score is NaN.
    """
    R = _check_square(R)
    T = R.shape[0]
    out = np.full(T - 1, math.nan)
    for j in range(T - 1):
        earlier = R[j : T - 1, j]
        earlier = earlier[~np.isnan(earlier)]
        if earlier.size:
            out[j] = earlier.max() - R[T - 1, j]
    return out


def forgetting(R: np.ndarray) -> float:
    """Average max-based forgetting over experiences ``0 .. T-2`` (see :func:`forgetting_per_experience`).

    Returns 0.0 when ``T == 1``.
    """
    per_experience = forgetting_per_experience(R)
    return _nanmean(per_experience) if per_experience.size else 0.0


def backward_transfer(R: np.ndarray) -> float:
    """Backward transfer (GEM, Lopez-Paz & Ranzato, 2017): ``mean_{j < T-1} R[T-1, j] - R[j, j]``.

    Negative values mean forgetting. Returns 0.0 when ``T == 1``.
    """
    R = _check_square(R)
    T = R.shape[0]
    if T == 1:
        return 0.0
    j = np.arange(T - 1)
    return _nanmean(R[T - 1, j] - R[j, j])


def forward_transfer(R: np.ndarray, baseline: np.ndarray) -> float:
    """Forward transfer, GEM's formula (Lopez-Paz & Ranzato, 2017): ``mean_{j >= 1} R[j-1, j] - baseline[j]``.

    GEM's ``baseline`` is a randomly initialised model; the suite passes each strategy's own model before
    the stream (its pre-trained base), so the value says how much the stream so far helped on an experience
    beyond where that strategy started, and is not comparable across strategies with different starts.

    Args:
        R: the ``T x T`` results matrix.
        baseline: length-``T`` reference scores (the suite: the strategy's own scores before any training).

    Returns:
        How much training on earlier experiences helps on experience ``j`` before it is seen;
        0.0 when ``T == 1``.
    """
    R = _check_square(R)
    T = R.shape[0]
    baseline = np.asarray(baseline, dtype=float)
    if baseline.shape != (T,):
        raise ValueError(f"baseline must have shape ({T},) to match R, got {baseline.shape}")
    if T == 1:
        return 0.0
    j = np.arange(1, T)
    return _nanmean(R[j - 1, j] - baseline[j])


def crossfit_forgetting(cases: pd.DataFrame, seed: int = 0) -> dict[int, float]:
    """Cross-fitted max-based forgetting of each test experience, free of the max's selection bias.

    For test experience ``j`` (every one scored before the last step ``L``, the highest ``trained_through``), its
    cases scored at every step ``j .. L`` (the tracked cases, when the intermediate steps score a subset) are split
    in two halves by a generator seeded with ``[seed, j]``, stratified by centre (each centre's
    cases shuffled, then dealt alternately over all centres). On half A the step ``l*`` in ``j .. L-1`` where
    ``j`` scored best is chosen; on half B the forgetting ``D_B(l*) - D_B(L)`` is read (``D`` the aggregated Dice
    of :func:`~pemma_cl.evaluation.per_case.aggregated_dice`); then the halves swap roles and the two readings are
    averaged. The noise of the half that scores is independent of the choice, so a model whose true scores do not
    change reads about 0 (max-based forgetting reads the expected maximum of the noise instead).

    Args:
        cases: per-case rows (:data:`~pemma_cl.evaluation.per_case.CASE_COLUMNS`) of one strategy, seed and input
            setting; rows with ``trained_through == -1`` (the base) are not used.
        seed: seeds the halves.

    Returns:
        ``{j: forgetting}`` for every experience ``j < L`` with rows; NaN where a half has no case or no Dice.
    """
    cases = cases[cases["trained_through"] >= 0]
    if cases.empty:
        return {}
    last = int(cases["trained_through"].max())
    out: dict[int, float] = {}
    for j in sorted(int(e) for e in cases["eval_experience"].unique() if e < last):
        rows = scored_at_every_state(cases[(cases["eval_experience"] == j) & (cases["trained_through"] >= j)])
        halves = _halves(rows[["case_id", "centre"]].drop_duplicates(), np.random.default_rng([seed, j]))
        scores = [_dice_by_step(rows[rows["case_id"].isin(half)]) for half in halves]
        out[j] = _nanmean(np.array([_held_out_drop(scores[a], scores[1 - a], last) for a in (0, 1)]))
    return out


def crossfit_forgetting_mean(cases: pd.DataFrame, seed: int = 0) -> float:
    """Mean of :func:`crossfit_forgetting` over the experiences (NaN-aware); 0.0 with a single step, like
    :func:`forgetting`."""
    per_experience = crossfit_forgetting(cases, seed)
    return _nanmean(np.array(list(per_experience.values()))) if per_experience else 0.0


def _halves(members: pd.DataFrame, rng: np.random.Generator) -> tuple[set[str], set[str]]:
    """Two halves of the case ids in ``members`` (columns ``case_id``, ``centre``), stratified by centre."""
    dealt: list[str] = []
    for _, group in members.sort_values("case_id").groupby("centre", sort=True):
        dealt += list(rng.permutation(group["case_id"].to_numpy()))
    return set(dealt[0::2]), set(dealt[1::2])


def _dice_by_step(rows: pd.DataFrame) -> pd.Series:
    """Aggregated Dice of ``rows`` at each ``trained_through`` step (index)."""
    return rows.groupby("trained_through").apply(aggregated_dice, include_groups=False)


def _held_out_drop(choose: pd.Series, score: pd.Series, last: int) -> float:
    """``score[l*] - score[last]`` with ``l*`` the step before ``last`` where ``choose`` peaks; NaN if undefined."""
    earlier = choose[choose.index < last].dropna()
    if earlier.empty or last not in score.index:
        return math.nan
    return float(score.get(earlier.idxmax(), math.nan) - score[last])
