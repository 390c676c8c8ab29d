"""Lesion-wise measures of one case and structure: detection counts (HECKTOR 2025) and false-positive and
false-negative volumes (autoPET).

**Lesions** are the connected components of a mask, found by :func:`scipy.ndimage.label` with **26-connectivity**
(voxels sharing a face, an edge or a corner belong to one lesion). autoPET's evaluation script labels with cc3d at
18-connectivity; the two differ only for lesions that touch by a corner alone.

**Detection** (:func:`detection_counts`). A reference lesion ``G`` and a predicted lesion ``P`` can match when
``IoU(G, P) = |G & P| / |G | P| > 0.3`` (HECKTOR 2025's lymph-node detection). Matching is one to one: at IoU 0.3
one predicted lesion can exceed the threshold with two reference lesions (one that merges two nodes), so the pairs
are chosen by :func:`scipy.optimize.linear_sum_assignment`, maximising the summed IoU over the pairs above the
threshold. Matched reference lesions are true positives, unmatched reference lesions false negatives, unmatched
predicted lesions false positives. Counts add over cases, so the aggregated F1 of a set of cases is
:func:`detection_f1` of the summed counts, ``2 TP / (2 TP + FP + FN)``; it is NaN when the set has no reference and
no predicted lesion (nothing to detect, nothing claimed). An empty reference gives ``TP = FN = 0`` and one FP per
predicted lesion; an empty prediction one FN per reference lesion; both empty ``0, 0, 0``.

**Volumes** (:func:`unmatched_volumes`), as autoPET defines them: the false-positive volume is that of the
predicted lesions that share no voxel with the reference mask, the false-negative volume that of the reference
lesions that share no voxel with the prediction; in mL (``prod(spacing) / 1000`` per voxel). No IoU threshold here:
a lesion touched by one voxel counts as found. Both are 0 when there is nothing of the kind (an empty reference
gives FN volume 0 and the whole prediction as FP volume; an empty prediction the reverse), so every case has a
value and they add over cases. **Lower is better.**

:class:`LesionMeasures` keeps, per case and structure, these and the NSD (:mod:`pemma_cl.evaluation.surface`, at
:data:`~pemma_cl.evaluation.surface.NSD_TOLERANCE_MM`): the trailing columns :data:`MEASURES` of the per-case rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from pemma_cl.evaluation.dice import paired_label_maps
from pemma_cl.evaluation.surface import NSD_TOLERANCE_MM, surface_dice

__all__ = ["IOU_THRESHOLD", "MEASURES", "DetectionCounts", "LesionMeasures", "detection_counts", "detection_f1",
           "lesions", "unmatched_volumes"]

#: A reference and a predicted lesion can match above this IoU (HECKTOR 2025).
IOU_THRESHOLD = 0.3
#: The measures :class:`LesionMeasures` keeps per case and structure, in order (the per-case rows' last columns).
MEASURES: tuple[str, ...] = ("nsd", "lesion_tp", "lesion_fp", "lesion_fn", "fp_volume_ml", "fn_volume_ml")
_FULL_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)  # 26-connectivity in 3-D


class DetectionCounts(NamedTuple):
    """Lesion counts of one case (or, summed, of a set of cases)."""

    tp: int
    fp: int
    fn: int


def _masks(pred: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pred`` and ``reference`` as bool 3-D arrays of one shape (else ValueError)."""
    pred, reference = np.asarray(pred, dtype=bool), np.asarray(reference, dtype=bool)
    if pred.shape != reference.shape or pred.ndim != 3:
        raise ValueError(f"pred and reference must be 3-D masks of one shape, got {pred.shape} and {reference.shape}")
    return pred, reference


def lesions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The connected components of a 3-D bool mask at 26-connectivity.

    Returns:
        ``(labels, n)``: an int array of ``mask``'s shape, 0 outside the mask and ``1..n`` on the lesions.
    """
    labels, n = ndimage.label(mask, structure=_FULL_CONNECTIVITY)
    return labels, int(n)


def detection_counts(pred: np.ndarray, reference: np.ndarray,
                     iou_threshold: float = IOU_THRESHOLD) -> DetectionCounts:
    """True-positive, false-positive and false-negative lesions of one case (see the module docstring).

    Args:
        pred: predicted mask, bool ``[z, y, x]``.
        reference: reference mask, bool, same shape.
        iou_threshold: a pair matches only above this IoU.

    Returns:
        The case's :class:`DetectionCounts`.
    """
    pred, reference = _masks(pred, reference)
    ref_labels, n_ref = lesions(reference)
    pred_labels, n_pred = lesions(pred)
    if n_ref == 0 or n_pred == 0:
        return DetectionCounts(0, n_pred, n_ref)
    ref_sizes = np.bincount(ref_labels.ravel(), minlength=n_ref + 1)[1:]
    pred_sizes = np.bincount(pred_labels.ravel(), minlength=n_pred + 1)[1:]
    both = (ref_labels > 0) & (pred_labels > 0)
    pair = (ref_labels[both] - 1) * n_pred + (pred_labels[both] - 1)
    overlap = np.bincount(pair, minlength=n_ref * n_pred).reshape(n_ref, n_pred)
    iou = overlap / (ref_sizes[:, None] + pred_sizes[None, :] - overlap)
    eligible = np.where(iou > iou_threshold, iou, 0.0)
    rows, cols = linear_sum_assignment(eligible, maximize=True)
    tp = int((eligible[rows, cols] > 0).sum())
    return DetectionCounts(tp, n_pred - tp, n_ref - tp)


def detection_f1(counts: Sequence[DetectionCounts]) -> float:
    """Aggregated detection F1 of a set of cases: ``2 TP / (2 TP + FP + FN)`` over their summed counts.

    Returns:
        The F1 in ``[0, 1]``; NaN when the cases hold no reference and no predicted lesion.
    """
    tp, fp, fn = (int(sum(column)) for column in zip(*counts)) if counts else (0, 0, 0)
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else math.nan


def unmatched_volumes(pred: np.ndarray, reference: np.ndarray, spacing: Sequence[float]) -> tuple[float, float]:
    """autoPET's false-positive and false-negative volumes of one case, in mL (see the module docstring).

    Args:
        pred: predicted mask, bool ``[z, y, x]``.
        reference: reference mask, bool, same shape.
        spacing: voxel spacing in mm, ``[z, y, x]``.

    Returns:
        ``(fp_volume_ml, fn_volume_ml)``.
    """
    pred, reference = _masks(pred, reference)
    spacing = [float(s) for s in spacing]
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive numbers [z, y, x], got {spacing}")
    voxel_ml = math.prod(spacing) / 1000.0
    return (_untouched_voxels(pred, reference) * voxel_ml, _untouched_voxels(reference, pred) * voxel_ml)


def _untouched_voxels(mask: np.ndarray, other: np.ndarray) -> int:
    """Voxels of the lesions of ``mask`` that share no voxel with ``other``."""
    labels, n = lesions(mask)
    if n == 0:
        return 0
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[np.unique(labels[other & mask])] = 0  # the lesions that share a voxel with ``other``
    return int(sizes[1:].sum())


class LesionMeasures:
    """Per case and structure: NSD, detection counts and FP/FN volumes (:data:`MEASURES`), over batches of label maps.

    Args:
        structures: ``{label value: name}`` of the structures scored; any other value is background.
        spacing: voxel spacing in mm, ``[z, y, x]``, of every case.
        tolerance_mm: the NSD tolerance.
    """

    def __init__(self, structures: Mapping[int, str], spacing: Sequence[float],
                 tolerance_mm: float = NSD_TOLERANCE_MM) -> None:
        self._labels = tuple(sorted(structures))
        self.spacing = tuple(float(s) for s in spacing)
        self.tolerance_mm = float(tolerance_mm)
        self._measures: list[np.ndarray] = []

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Adds a batch of cases.

        Args:
            pred: predicted integer labels, shape ``[B, D, H, W]`` or ``[B, 1, D, H, W]``.
            target: reference integer labels, same shape as ``pred``.
        """
        pred, target = (labels.detach().cpu().numpy()[:, 0] for labels in paired_label_maps(pred, target))
        for case_pred, case_target in zip(pred, target):
            rows = []
            for label in self._labels:
                p, g = case_pred == label, case_target == label
                rows.append([surface_dice(p, g, self.spacing, self.tolerance_mm), *detection_counts(p, g),
                             *unmatched_volumes(p, g, self.spacing)])
            self._measures.append(np.array(rows, dtype=float))

    def per_case(self) -> np.ndarray:
        """The measures of each case, ``[n_cases, n_structures, len(MEASURES)]`` (structures in label order)."""
        if not self._measures:
            return np.empty((0, len(self._labels), len(MEASURES)))
        return np.stack(self._measures)
