"""95th-percentile Hausdorff distance (HD95) per structure, accumulated over the cases of one evaluation.

For each case ``i`` and structure ``k`` of the data (its label values and names; GTVp = 1 and GTVn = 2 in the
built-in cohort), HD95 is the symmetric 95th-percentile Hausdorff
distance between the surfaces of the predicted mask ``P_i(k)`` and the reference mask ``G_i(k)``,
computed by :func:`monai.metrics.compute_hausdorff_distance` (``percentile=95``, Euclidean,
undirected: the 95th percentiles of the distances from ``P`` to ``G`` and from ``G`` to ``P``,
the larger of the two). The distance itself is MONAI's; nothing here reimplements it.

**Unit.** Millimetres when a voxel ``spacing`` is given (``[z, y, x]``, the order of the arrays,
as in :class:`pemma_cl.data.records.CaseRecord`), voxels when ``spacing`` is None. The suite's
data are isotropic (synthetic cases at 4 mm, HECKTOR prepared crops at ``BOX / size`` mm), but an
anisotropic spacing is honoured axis by axis. **Lower is better**; 0 means the two surfaces
coincide.

**Empty masks.** HD95 is a distance between two surfaces, so it needs both:

* reference and prediction both empty for ``k`` -> the case has **no HD95** for ``k``: it is left
  out (NaN in :meth:`HausdorffAccumulator.per_case`, not counted in the median). There was nothing
  to find and nothing was found, which is neither a good nor a bad distance.
* exactly one of them empty (a missed structure, or a hallucinated one) -> HD95 is undefined as a
  distance (MONAI would give ``inf`` and warn). It is set to the **length of the volume's
  diagonal** in the same unit, ``sqrt(sum_a (n_a * s_a)^2)`` over the three axes of ``n_a`` voxels
  of spacing ``s_a`` (``s_a = 1`` without spacing): no surface distance measured inside the volume
  can exceed it, so a missed or hallucinated structure gets the worst possible score instead of
  being silently dropped (a common challenge convention).
* both non-empty -> MONAI's HD95. Only these pairs are handed to MONAI, so its empty-mask
  warnings and ``inf``/``nan`` values never occur (and no time is spent on them).

**Aggregation** (:meth:`HausdorffAccumulator.result`): per structure, the **median** over the cases
that have a value (HECKTOR 2021 ranked segmentation on the median HD95, robust to the large
penalty values above); NaN if no case has one. ``aggregated`` is the mean of the structures'
medians over the structures that are defined; NaN if none is (with one structure: that structure's median).

**Cost.** The distances are computed on the CPU (MONAI's exact KD-tree over the edge voxels,
after cropping to the masks' bounding box): tensors on another device are copied to the CPU
first, since without cuCIM MONAI has no GPU path for it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from monai.metrics import compute_hausdorff_distance
from monai.networks.utils import one_hot

from pemma_cl.evaluation.dice import PerCaseScores, paired_label_maps
from pemma_cl.stats.intervals import finite_mean

__all__ = ["HausdorffAccumulator"]

_PERCENTILE = 95.0


def _nanmedian(values: np.ndarray) -> float:
    """Median over the finite entries of ``values``; NaN (without a warning) if there are none."""
    finite = values[~np.isnan(values)]
    return float(np.median(finite)) if finite.size else math.nan



class HausdorffAccumulator(PerCaseScores):
    """Accumulates per-structure HD95 over batches of integer label maps.

    Example::

        acc = HausdorffAccumulator({1: "GTVp", 2: "GTVn"}, spacing=(4.0, 4.0, 4.0))
        for batch in loader:
            acc.update(model_labels, batch["label"])
        scores = acc.result()  # {"GTVp": ..., "GTVn": ..., "aggregated": ..., "n_cases": ...}

    See the module docstring for the unit, the empty-mask rules and the aggregation.

    Args:
        structures: ``{label value: name}`` of the structures scored; any other value is background.
        spacing: voxel spacing in mm, ``[z, y, x]`` (the order of the arrays' spatial axes), used
            for every case; None measures distances in voxels.
    """

    def __init__(self, structures: Mapping[int, str], spacing: Sequence[float] | None) -> None:
        if spacing is not None:
            spacing = tuple(float(s) for s in spacing)
            if len(spacing) != 3 or not all(math.isfinite(s) and s > 0 for s in spacing):
                raise ValueError(f"spacing must be three positive numbers [z, y, x], got {spacing}")
        self.spacing: tuple[float, float, float] | None = spacing  # type: ignore[assignment]
        super().__init__(structures)

    def _diagonal(self, shape: Sequence[int]) -> float:
        """Length of the diagonal of a volume of ``shape`` voxels, in the accumulator's unit."""
        steps = self.spacing if self.spacing is not None else (1.0,) * len(shape)
        return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, steps))))

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Adds a batch of cases.

        Args:
            pred: predicted integer labels, shape ``[B, D, H, W]`` or ``[B, 1, D, H, W]``.
            target: reference integer labels, same shape as ``pred``.
        """
        pred, target = (labels.detach().cpu() for labels in paired_label_maps(pred, target))
        batch = pred.shape[0]
        values = np.full((batch, len(self._labels)), math.nan)
        diagonal = self._diagonal(pred.shape[2:])

        # Masks of the (case, structure) pairs where both are non-empty: only those go to MONAI.
        pred_masks, target_masks, slots = [], [], []
        for j, label in enumerate(self._labels):
            p, g = pred == label, target == label  # [B, 1, D, H, W]
            p_any = p.flatten(1).any(dim=1)
            g_any = g.flatten(1).any(dim=1)
            for b in range(batch):
                if bool(p_any[b]) and bool(g_any[b]):
                    pred_masks.append(p[b])
                    target_masks.append(g[b])
                    slots.append((b, j))
                elif bool(p_any[b]) or bool(g_any[b]):
                    values[b, j] = diagonal  # missed or hallucinated: worst possible distance

        if slots:
            # One-hot [N, 2, D, H, W] (channel 0 background, 1 the structure), one MONAI call.
            y_pred = one_hot(torch.stack(pred_masks).long(), num_classes=2, dim=1)
            y = one_hot(torch.stack(target_masks).long(), num_classes=2, dim=1)
            with warnings.catch_warnings():
                # MONAI 1.6 calls its own get_mask_edges with a deprecated argument; not ours to act on.
                warnings.filterwarnings("ignore", message=".*always_return_as_numpy.*", category=FutureWarning)
                hd = compute_hausdorff_distance(
                    y_pred,
                    y,
                    include_background=False,
                    distance_metric="euclidean",
                    percentile=_PERCENTILE,
                    directed=False,
                    spacing=list(self.spacing) if self.spacing is not None else None,
                )  # [N, 1]
            for (b, j), value in zip(slots, hd[:, 0].double().tolist()):
                values[b, j] = value
        self._per_case.extend(values)

    def result(self) -> dict[str, float | int]:
        """Scores over all cases seen since the last :meth:`reset`.

        Returns:
            ``{<structure>: float, ..., "aggregated": float, "n_cases": int}``: ``<structure>`` is the
            median HD95 of each structure (``GTVp``, ``GTVn``...) over the cases with a value for it,
            ``aggregated`` the mean of the defined medians, ``n_cases`` the number of cases seen
            (with or without values). Undefined values are NaN.
        """
        per_case = self.per_case()
        out: dict[str, float | int] = {}
        for i, name in enumerate(self._names):
            out[name] = _nanmedian(per_case[:, i])
        out["aggregated"] = finite_mean(np.array([out[name] for name in self._names]))
        out["n_cases"] = per_case.shape[0]
        return out
