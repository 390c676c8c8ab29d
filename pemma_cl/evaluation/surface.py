"""Normalised surface distance (NSD, "surface Dice") of one case and structure, at a tolerance in mm.

NSD is the fraction of the two boundaries, the prediction's and the reference's, that lies within ``tolerance`` mm
of the other boundary (Nikolov et al. 2021; the boundary metric Metrics Reloaded pairs with Dice). It is computed
by :func:`monai.metrics.compute_surface_dice`, nothing here reimplements it, with:

* ``use_subvoxels=False`` (MONAI's default): a boundary is the set of its edge voxels (the mask less its erosion),
  each weighing one, as HD95 (:mod:`pemma_cl.evaluation.hd95`) measures the same edge voxels; the subvoxel surface
  elements of DeepMind's ``surface-distance`` weigh them by area instead. A distance counts when ``<= tolerance``.
* Euclidean distances in mm from the voxel ``spacing`` (``[z, y, x]``, the order of the arrays), axis by axis.

**Empty masks** (MONAI's own convention, which Metrics Reloaded lists as the usual one):

* reference and prediction both empty -> **NaN**: no boundary to score; there was nothing to find and nothing was
  found, neither good nor bad, and the case is left out of any mean (as HD95 leaves it out). Setting it to 1
  would reward every structure-free case with a perfect score and lift a mean by how many such cases a centre has.
* exactly one empty (a missed or a hallucinated structure) -> **0**: none of the existing boundary is near the
  absent one. Both cases are decided here, so MONAI never meets an empty mask (and never warns).

**Higher is better**, in ``[0, 1]``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_surface_dice

__all__ = ["NSD_TOLERANCE_MM", "surface_dice"]

#: The tolerance of the per-case rows' ``nsd``, in mm. Metrics Reloaded asks for the tolerance to come from the
#: inter-rater variability of the structure; no head-and-neck challenge fixes one for GTVs (HECKTOR ranks on Dice,
#: HD95 and detection), and GTV delineations differ between experts by several mm. With boundaries made of edge
#: voxels, a tolerance below the voxel side counts only coinciding voxels, so 4 mm is one voxel of the built-in
#: cohort (4 mm) and accepts a one-voxel boundary shift on every grid of the suite (HECKTOR crops: 240 mm / size,
#: 2.5 mm at 96 voxels).
NSD_TOLERANCE_MM = 4.0


def surface_dice(pred: np.ndarray, reference: np.ndarray, spacing: Sequence[float], tolerance_mm: float) -> float:
    """NSD of one structure of one case (see the module docstring for the conventions).

    Args:
        pred: predicted mask, bool ``[z, y, x]``.
        reference: reference mask, bool, same shape.
        spacing: voxel spacing in mm, ``[z, y, x]``.
        tolerance_mm: largest boundary distance counted as agreement, in mm (finite, ``>= 0``).

    Returns:
        NSD in ``[0, 1]``; NaN if both masks are empty, 0 if exactly one is.

    Raises:
        ValueError: If the shapes differ, the masks are not 3-D, or spacing or tolerance are not valid.
    """
    pred, reference = np.asarray(pred, dtype=bool), np.asarray(reference, dtype=bool)
    if pred.shape != reference.shape or pred.ndim != 3:
        raise ValueError(f"pred and reference must be 3-D masks of one shape, got {pred.shape} and {reference.shape}")
    spacing = [float(s) for s in spacing]
    if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
        raise ValueError(f"spacing must be three positive numbers [z, y, x], got {spacing}")
    if not (math.isfinite(tolerance_mm) and tolerance_mm >= 0):
        raise ValueError(f"tolerance_mm must be a finite number >= 0, got {tolerance_mm}")
    has_pred, has_reference = bool(pred.any()), bool(reference.any())
    if not (has_pred and has_reference):
        return math.nan if not (has_pred or has_reference) else 0.0
    # One-hot [1, 2, z, y, x]: channel 0 background (left out), 1 the structure.
    y_pred = torch.from_numpy(np.stack([~pred, pred])[None]).float()
    y = torch.from_numpy(np.stack([~reference, reference])[None]).float()
    with warnings.catch_warnings():
        # MONAI 1.6 calls its own get_mask_edges with a deprecated argument; not ours to act on.
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
        nsd = compute_surface_dice(y_pred, y, class_thresholds=[float(tolerance_mm)], include_background=False,
                                   distance_metric="euclidean", spacing=spacing, use_subvoxels=False)
    return float(nsd[0, 0])
