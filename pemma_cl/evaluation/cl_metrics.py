"""Continual-learning metrics over a results matrix ``R``.

Convention: ``R[i, j]`` is the score on the test set of experience ``j`` after training through
experience ``i`` (``R`` is square, ``T x T``). NaN entries (not evaluated / undefined) are skipped
by NaN-aware means; a mean over no finite value is NaN. With a single experience (``T == 1``)
there is nothing to forget or transfer and forgetting, BWT and FWT are 0.0.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "backward_transfer",
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
