"""Dice scores per structure, accumulated over cases the way HECKTOR 2022 ranks them.

Two numbers are kept for each structure ``k`` of the data (its label values and names,
:attr:`pemma_cl.data.description.DatasetDescription.structures`; GTVp = 1 and GTVn = 2 in the built-in cohort):

* **Aggregated Dice** (the HECKTOR 2022 ranking metric)::

      DSC_agg(k) = 2 * sum_i |P_i(k) & G_i(k)| / sum_i (|P_i(k)| + |G_i(k)|)

  where the sums run over all cases ``i``, ``P_i(k)`` is the predicted and ``G_i(k)`` the
  reference mask of structure ``k``. Large and small tumours are weighted by their volume, and a
  case without the structure still counts through its false positives. It is NaN (undefined) when
  no reference mask of the set contains ``k``: with nothing to find, a single false-positive voxel
  would otherwise flip it between NaN and 0 (HECKTOR's test set always holds both structures, so
  its rule never meets this case; small per-centre test sets here do).
* **Per-case Dice**: the usual Dice of each case, computed by :func:`monai.metrics.compute_dice`
  with ``ignore_empty=True``, so a case whose reference has no voxel of ``k`` gets NaN for ``k``
  and is left out of the per-case mean.

``aggregated`` in :meth:`DiceAccumulator.result` is the mean of the structures' aggregated Dice
over the structures some reference mask contains (a structure absent from the whole set is left
out of the mean, false positives and all); NaN only if no reference mask contains any structure.
With one structure it is that structure's aggregated Dice.

Both are kept per case as well: :meth:`DiceAccumulator.per_case_counts` holds each case's TP, FP and FN voxel
counts per structure, from which :func:`dice_scores` gives the aggregated Dice of any set of cases (the per-case
rows of a run, :mod:`pemma_cl.evaluation.per_case`, use it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from monai.metrics import compute_dice

from pemma_cl.stats.intervals import finite_mean

__all__ = ["COUNTS", "DiceAccumulator", "PerCaseScores", "dice_scores", "paired_label_maps"]

#: The voxel counts kept per case and structure, in the order of the last axis of
#: :meth:`DiceAccumulator.per_case_counts`.
COUNTS: tuple[str, ...] = ("tp", "fp", "fn")


def _as_label_map(labels: torch.Tensor, name: str) -> torch.Tensor:
    """Returns ``labels`` as ``[B, 1, D, H, W]``, accepting ``[B, D, H, W]`` or ``[B, 1, D, H, W]``."""
    if labels.ndim == 4:
        return labels.unsqueeze(1)
    if labels.ndim == 5 and labels.shape[1] == 1:
        return labels
    raise ValueError(f"{name} must be a label map of shape [B, D, H, W] or [B, 1, D, H, W], got {tuple(labels.shape)}")


def paired_label_maps(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pred`` and ``target`` as int64 ``[B, 1, D, H, W]`` label maps of the same shape (else ValueError)."""
    pred = _as_label_map(pred, "pred")
    target = _as_label_map(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
    return pred.long(), target.long()



def dice_scores(totals: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """HECKTOR's aggregated Dice from voxel counts summed over a set of cases.

    Args:
        totals: ``[n_structures, 3]`` integer sums of (TP, FP, FN) per structure, in the order of ``names``.
        names: the structures' names (e.g. ``("GTVp", "GTVn")``).

    Returns:
        ``{name: float, ..., "aggregated": float}``: ``2 TP / (2 TP + FP + FN)`` per structure, NaN for a structure
        without a reference voxel (``TP + FN == 0``); ``aggregated`` their NaN-aware mean.
    """
    if len(names) != len(totals):
        raise ValueError(f"{len(totals)} rows of counts for {len(names)} structures {list(names)}")
    out = {}
    for name, (tp, fp, fn) in zip(names, totals):
        out[name] = float(2 * tp / (2 * tp + fp + fn)) if tp + fn > 0 else math.nan
    out["aggregated"] = finite_mean(np.array(list(out.values())))
    return out


class PerCaseScores:
    """Per-case scores of each structure, kept across batches.

    Args:
        structures: ``{label value: name}`` of the structures scored (the data's
            :attr:`~pemma_cl.data.description.DatasetDescription.structures`); any other value is background.
    """

    def __init__(self, structures: Mapping[int, str]) -> None:
        if not structures or any(value <= 0 for value in structures):
            raise ValueError(f"structures must map positive label values to names, got {dict(structures)}")
        self._labels = tuple(sorted(structures))
        self._names = tuple(structures[k] for k in self._labels)
        self.reset()

    @property
    def names(self) -> tuple[str, ...]:
        """The structures' names, in label order (the columns of :meth:`per_case`)."""
        return self._names

    def reset(self) -> None:
        """Forgets all cases seen so far."""
        self._per_case: list[np.ndarray] = []

    def per_case(self) -> np.ndarray:
        """Per-case scores, shape ``[n_cases, n_structures]`` (columns :attr:`names`); NaN where a case has none."""
        if not self._per_case:
            return np.empty((0, len(self._labels)))
        return np.stack(self._per_case)


class DiceAccumulator(PerCaseScores):
    """Accumulates per-structure Dice over batches of integer label maps.

    Example::

        acc = DiceAccumulator({1: "GTVp", 2: "GTVn"})
        for batch in loader:
            acc.update(model_labels, batch["label"])
        scores = acc.result()  # {"GTVp": ..., "GTVn": ..., "aggregated": ..., ...}

    Args:
        structures: ``{label value: name}`` of the structures scored; any other value is background.
    """

    def __init__(self, structures: Mapping[int, str]) -> None:
        super().__init__(structures)
        self._num_classes = max(self._labels) + 1

    def reset(self) -> None:
        """Forgets all cases seen so far."""
        super().reset()
        self._counts: list[np.ndarray] = []

    def per_case_counts(self) -> np.ndarray:
        """Voxel counts of each case, int64 ``[n_cases, n_structures, 3]``: (TP, FP, FN) of each structure."""
        if not self._counts:
            return np.empty((0, len(self._labels), len(COUNTS)), dtype=np.int64)
        return np.stack(self._counts)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Adds a batch of cases.

        Args:
            pred: predicted integer labels, shape ``[B, D, H, W]`` or ``[B, 1, D, H, W]``.
            target: reference integer labels, same shape as ``pred``.
        """
        pred, target = paired_label_maps(pred, target)
        batch = pred.shape[0]
        flat_pred, flat_target = pred.reshape(batch, -1), target.reshape(batch, -1)
        counts = torch.empty(batch, len(self._labels), len(COUNTS), dtype=torch.int64)
        for i, label in enumerate(self._labels):
            p, g = flat_pred == label, flat_target == label
            tp = (p & g).sum(dim=1)
            counts[:, i] = torch.stack([tp, p.sum(dim=1) - tp, g.sum(dim=1) - tp], dim=1).cpu()
        self._counts.extend(counts.numpy())
        dice = compute_dice(
            pred, target, include_background=True, ignore_empty=True, num_classes=self._num_classes
        )  # [B, num_classes], channel c = label c
        self._per_case.extend(dice[:, list(self._labels)].double().cpu().numpy())

    def result(self) -> dict[str, float | int]:
        """Scores over all cases seen since the last :meth:`reset`.

        Returns:
            ``{<structure>: float, ..., "aggregated": float, "<structure>_case": float, ..., "n_cases": int}``:
            ``<structure>`` is the aggregated Dice of each structure (``GTVp``, ``GTVn``...), ``aggregated`` their
            NaN-aware mean, ``<structure>_case`` the mean per-case Dice over cases whose reference contains the
            structure. Missing values are NaN.
        """
        per_case = self.per_case()
        out: dict[str, float | int] = dict(dice_scores(self.per_case_counts().sum(axis=0), self._names))
        for i, name in enumerate(self._names):
            out[f"{name}_case"] = finite_mean(per_case[:, i])
        out["n_cases"] = per_case.shape[0]
        return out
