"""Plasticity: how well a strategy learns each experience, against a model trained on that experience alone from
the same base (the 2026 "Beyond forgetting" benchmark of continual medical segmentation).

Convention as :mod:`pemma_cl.evaluation.cl_metrics`: ``R[i, j]`` is the score on experience ``j``'s test set after
training through experience ``i``. The plasticity on experience ``j`` is ``R[j, j] - A[j, j]``: the strategy's score
right after training on ``j`` minus that of the model trained on ``j`` alone, ``A`` being the results matrix of
``separate-models`` (one network per experience, each fine-tuned from the CT base on its own experience only) at the
same seed, input setting and structure. Negative: the strategy learns the new experience less well than a model
that has nothing else to keep (it is less plastic); positive: it learns it better (earlier experiences helped). The
reference's own plasticity is 0 by construction. Without a model trained on each experience alone there is no
reference and no plasticity: :func:`plasticity` returns None, never a number standing in for it.
"""

from __future__ import annotations

import numpy as np

from pemma_cl.evaluation.cl_metrics import check_square
from pemma_cl.stats.intervals import finite_mean

__all__ = ["PLASTICITY_REFERENCE", "plasticity", "plasticity_per_experience"]

#: The strategy whose results matrix is the "trained on that experience alone" reference.
PLASTICITY_REFERENCE = "separate-models"


def plasticity_per_experience(R: np.ndarray, alone: np.ndarray) -> np.ndarray:
    """``R[j, j] - alone[j, j]`` for every experience ``j`` (NaN where either is NaN).

    Args:
        R: the strategy's ``T x T`` results matrix.
        alone: the ``T x T`` results matrix of the models trained on each experience alone.

    Raises:
        ValueError: if the matrices are not square or not of the same size.
    """
    R, alone = check_square(R), check_square(alone)
    if R.shape != alone.shape:
        raise ValueError(f"R and the reference must have the same shape, got {R.shape} and {alone.shape}")
    return np.diag(R) - np.diag(alone)


def plasticity(R: np.ndarray, alone: np.ndarray | None) -> float | None:
    """Mean over experiences of :func:`plasticity_per_experience` (NaN entries skipped; NaN if none is finite).

    Args:
        R: the strategy's ``T x T`` results matrix.
        alone: the reference's ``T x T`` results matrix, or None when the run has no model trained on each
            experience alone (no ``separate-models``).

    Returns:
        The plasticity, or None without a reference: plasticity is not defined then.
    """
    if alone is None:
        return None
    return finite_mean(plasticity_per_experience(R, alone))
