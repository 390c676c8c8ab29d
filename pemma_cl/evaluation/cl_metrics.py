"""Continual-learning metrics over a results matrix ``R``.

Convention: ``R[i, j]`` is the score on the test set of experience ``j`` after training through
experience ``i`` (``R`` is square, ``T x T``). NaN entries (not evaluated / undefined) are skipped
by NaN-aware means; a mean over no finite value is NaN. With a single experience (``T == 1``)
there is nothing to forget or transfer and forgetting, BWT and FWT are 0.0.

:func:`crossfit_forgetting` works on per-case rows instead of ``R`` (see its docstring): max-based forgetting
reads a maximum over noisy scores, so it is above the true forgetting even when nothing is forgotten; the
cross-fitted form chooses the peak on one half of the cases and scores it on the other. It is unbiased at zero but reads
low when a drop is not a single fall at the end (the peak chosen on one half is then often not the other half's), so
a decision that forgetting is below a margin uses :func:`drop_forgetting`: the drop from the just-trained state, with
no maximum and no split (``docs/statistics.md``). :func:`weighted_forgetting` gives either of them in every case
resample at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pandas as pd

from pemma_cl.evaluation.per_case import aggregated_dice, scored_at_every_state
from pemma_cl.stats.intervals import finite_mean

__all__ = [
    "backward_transfer",
    "crossfit_forgetting",
    "crossfit_forgetting_mean",
    "drop_forgetting",
    "final_average",
    "forgetting",
    "forgetting_per_experience",
    "forward_transfer",
    "held_out_drop",
    "weighted_forgetting",
]


def check_square(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty square T x T matrix, got shape {R.shape}")
    return R



def final_average(R: np.ndarray) -> float:
    """Average score over all experiences after training on the whole stream: mean of ``R[T-1, :]``."""
    R = check_square(R)
    return finite_mean(R[-1])


def forgetting_per_experience(R: np.ndarray) -> np.ndarray:
    """Max-based forgetting of each earlier experience (Chaudhry et al., 2018, "Riemannian Walk").

    ``f_j = max_{j <= l < T-1} R[l, j] - R[T-1, j]`` for ``j < T-1``: the drop from the best score
    experience ``j`` had once it was trained on to its final score. Rows before ``j`` was trained
    (``l < j``, zero-shot scores) are left out: what a model never learned it cannot forget.

    Returns:
        Vector of length ``T - 1`` (empty when ``T == 1``); NaN where column ``j`` has no finite
        value before the last row or its final score is NaN.
    """
    R = check_square(R)
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
    return finite_mean(per_experience) if per_experience.size else 0.0


def backward_transfer(R: np.ndarray) -> float:
    """Backward transfer (GEM, Lopez-Paz & Ranzato, 2017): ``mean_{j < T-1} R[T-1, j] - R[j, j]``.

    Negative values mean forgetting. Returns 0.0 when ``T == 1``.
    """
    R = check_square(R)
    T = R.shape[0]
    if T == 1:
        return 0.0
    j = np.arange(T - 1)
    return finite_mean(R[T - 1, j] - R[j, j])


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
    R = check_square(R)
    T = R.shape[0]
    baseline = np.asarray(baseline, dtype=float)
    if baseline.shape != (T,):
        raise ValueError(f"baseline must have shape ({T},) to match R, got {baseline.shape}")
    if T == 1:
        return 0.0
    j = np.arange(1, T)
    return finite_mean(R[j - 1, j] - baseline[j])


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
    out: dict[int, float] = {}
    for j, rows, _ in _earlier_experiences(cases):
        halves = _halves(rows[["case_id", "centre"]].drop_duplicates(), np.random.default_rng([seed, j]))
        steps = np.sort(rows["trained_through"].unique())
        scores = [_dice_by_step(rows[rows["case_id"].isin(half)]).reindex(steps).to_numpy(dtype=float)[None, :]
                  for half in halves]
        out[j] = finite_mean(np.concatenate([held_out_drop(scores[a], scores[1 - a]) for a in (0, 1)]))
    return out


def _earlier_experiences(cases: pd.DataFrame) -> Iterator[tuple[int, pd.DataFrame, int]]:
    """Each test experience ``j`` scored before the last step ``L``, in order, with its tracked cases' rows from step
    ``j`` on (those scored at every step ``j .. L``), and ``L``; nothing for rows of the base alone."""
    cases = cases[cases["trained_through"] >= 0]
    if cases.empty:
        return
    last = int(cases["trained_through"].max())
    for j in sorted(int(e) for e in cases["eval_experience"].unique() if e < last):
        yield j, scored_at_every_state(cases[(cases["eval_experience"] == j) & (cases["trained_through"] >= j)]), last


def crossfit_forgetting_mean(cases: pd.DataFrame, seed: int = 0) -> float:
    """Mean of :func:`crossfit_forgetting` over the experiences (NaN-aware); 0.0 with a single step, like
    :func:`forgetting`."""
    per_experience = crossfit_forgetting(cases, seed)
    return finite_mean(np.array(list(per_experience.values()))) if per_experience else 0.0


def drop_forgetting(cases: pd.DataFrame) -> dict[int, float]:
    """Forgetting as the drop from the just-trained state, ``D(j, j) - D(L, j)``, of each earlier test experience.

    For test experience ``j`` (every one scored before the last step ``L``), ``D(j, j)`` is the aggregated Dice of its
    tracked cases (those scored at every step ``j .. L``, as :func:`crossfit_forgetting` reads) right after training
    on ``j``, ``D(L, j)`` theirs after the last step. Its mean over the experiences is GEM's BWT negated
    (``-backward_transfer(R)`` on the tracked cases' results matrix): no maximum over the steps, so no selection, and
    an unbiased estimate of the true drop of the aggregated Dice whatever shape the scores take in between.

    Args:
        cases: per-case rows of one strategy, seed and input setting; rows with ``trained_through < j`` (the base,
            zero-shot scores) are not used.

    Returns:
        ``{j: drop}`` for every experience ``j < L`` with rows; NaN where ``j`` has no score at step ``j``.
    """
    out: dict[int, float] = {}
    for j, rows, last in _earlier_experiences(cases):
        trained, final = (rows[rows["trained_through"] == step] for step in (j, last))
        out[j] = math.nan if trained.empty or final.empty else aggregated_dice(trained) - aggregated_dice(final)
    return out


def weighted_forgetting(counts: np.ndarray, weights: np.ndarray, halves: np.ndarray | None = None) -> np.ndarray:
    """One test experience's forgetting in every case resample at once, from its tracked cases' voxel counts.

    ``halves`` None: :func:`drop_forgetting` (first step minus last); else :func:`crossfit_forgetting` with the given
    halves (the peak step chosen on one half among all but the last, the drop read on the other, both ways,
    averaged). A resample's Dice of a step is the aggregated Dice of the weighted sums of its counts, what the rows
    of the drawn cases (a case drawn k times counted k times) would give.

    Args:
        counts: ``cases x steps x structures x 3`` (TP, FP, FN) at the steps from the one the experience was trained
            at (first) to the last (last).
        weights: ``resamples x cases``: how often each case is drawn.
        halves: ``resamples x cases``: each case's half (0 or 1) in each resample; a case has one half, so its copies
            never fall in both.

    Returns:
        One value per resample (NaN where undefined).
    """
    if halves is None:
        dice = _weighted_dice(counts, weights)
        return dice[:, 0] - dice[:, -1]
    first, second = (_weighted_dice(counts, weights * (halves == h)) for h in (0, 1))
    both = np.stack([held_out_drop(first, second), held_out_drop(second, first)], axis=1)
    finite = ~np.isnan(both)
    return np.where(finite.any(axis=1), np.where(finite, both, 0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1),
                    np.nan)


def _weighted_dice(counts: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``resamples x steps`` aggregated Dice (mean over the structures with a reference voxel) of weighted counts."""
    sums = np.einsum("rn,nsgk->rsgk", weights.astype(float), counts.astype(float))
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        dice = np.where(tp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)
        scored = ~np.isnan(dice)
        return np.where(scored.any(axis=2), np.where(scored, dice, 0).sum(axis=2) / np.maximum(scored.sum(axis=2), 1),
                        np.nan)


def held_out_drop(choose: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Cross-fitting's reading, row by row: ``score[l*] - score[last]`` with ``l*`` the first step before the last
    where ``choose`` peaks (NaN entries skipped; NaN where ``choose`` has no finite step before the last).

    Args:
        choose: ``rows x steps`` Dice of the half that chooses, steps in order, the last step last.
        score: ``rows x steps`` Dice of the half that is read, the same steps.
    """
    earlier = choose[:, :-1]
    defined = ~np.isnan(earlier).all(axis=1)
    peak = np.argmax(np.where(np.isnan(earlier), -np.inf, earlier), axis=1)
    return np.where(defined, score[np.arange(len(score)), peak] - score[:, -1], np.nan)


def _halves(members: pd.DataFrame, rng: np.random.Generator) -> tuple[set[str], set[str]]:
    """Two halves of the case ids in ``members`` (columns ``case_id``, ``centre``), stratified by centre."""
    dealt: list[str] = []
    for _, group in members.sort_values("case_id").groupby("centre", sort=True):
        dealt += list(rng.permutation(group["case_id"].to_numpy()))
    return set(dealt[0::2]), set(dealt[1::2])


def _dice_by_step(rows: pd.DataFrame) -> pd.Series:
    """Aggregated Dice of ``rows`` at each ``trained_through`` step (index)."""
    return rows.groupby("trained_through").apply(aggregated_dice, include_groups=False)
