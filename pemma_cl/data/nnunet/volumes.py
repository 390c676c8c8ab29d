"""The images of an nnU-Net dataset with SimpleITK: header spacings, the grid check, label values, resampling.

Spacings here are in mm in array order ``(z, y, x)``, as :class:`~pemma_cl.data.records.CaseRecord` holds them
(SimpleITK's own order is ``(x, y, z)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import SimpleITK as sitk

#: How far a channel's spacing and origin (mm) and direction cosines may lie from the label's and still be on its
#: grid (headers written by different tools round differently).
GRID_TOLERANCE = 1e-3
#: A spacing within this of the target (mm, every axis) is the target: the volume is kept voxel for voxel.
SAME_SPACING = 1e-6


def header_spacing(path: Path) -> tuple[float, float, float] | None:
    """The voxel spacing ``(z, y, x)`` an image file's header gives (its voxels are not read); None if unreadable."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    spacing = reader.GetSpacing()
    return None if len(spacing) != 3 else tuple(float(s) for s in reversed(spacing))  # type: ignore[return-value]


def median_spacing(paths: Iterable[Path]) -> tuple[float, float, float] | None:
    """The median voxel spacing per axis ``(z, y, x)`` of the readable files (nnU-Net's default target spacing);
    None when none is readable."""
    spacings = [s for s in map(header_spacing, paths) if s is not None]
    return tuple(float(v) for v in np.median(spacings, axis=0)) if spacings else None  # type: ignore[return-value]


def grid_difference(image: sitk.Image, label: sitk.Image) -> str | None:
    """How ``image``'s grid differs from ``label``'s (size, spacing, origin or direction), or None if it is the same
    within :data:`GRID_TOLERANCE`."""
    if image.GetSize() != label.GetSize():
        return (f"size {_shown(image.GetSize()[::-1])} differs from the label's {_shown(label.GetSize()[::-1])} "
                "(z, y, x)")
    for what, get in (("spacing", sitk.Image.GetSpacing), ("origin", sitk.Image.GetOrigin),
                      ("direction", sitk.Image.GetDirection)):
        if not np.allclose(get(image), get(label), rtol=0.0, atol=GRID_TOLERANCE):
            order = "" if what == "direction" else " mm (x, y, z)"
            return f"{what} {_shown(get(image))} differs from the label's {_shown(get(label))}{order}"
    return None


def unknown_label_values(label: np.ndarray, allowed: Sequence[int]) -> np.ndarray:
    """The values in ``label`` that are not among ``allowed``, sorted."""
    values = np.unique(label)
    return values[~np.isin(values, np.asarray(allowed))]


def resampled(image: sitk.Image, spacing: tuple[float, float, float], labels: bool) -> sitk.Image:
    """``image`` on a grid of ``spacing`` (mm, z y x) covering the same box, or ``image`` itself when its spacing is
    already ``spacing`` within :data:`SAME_SPACING`.

    The new grid keeps the direction and the first voxel's outer corner; it has ``round(size * old / new)`` voxels
    per axis (nnU-Net's rule). Images are interpolated linearly, labels by nearest neighbour; points past the last
    voxel centre take the nearest voxel's value (no padding value enters).

    Args:
        image: a 3-D image.
        spacing: the target spacing, z y x.
        labels: nearest-neighbour interpolation (a label map) instead of linear.
    """
    old = np.array(image.GetSpacing())
    new = np.array(spacing[::-1], dtype=float)
    if np.allclose(old, new, rtol=0.0, atol=SAME_SPACING):
        return image
    size = np.maximum(1, np.round(np.array(image.GetSize()) * old / new)).astype(int)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(image.GetOrigin()) + direction @ ((new - old) / 2)  # voxel centres move, the corner stays
    interpolator = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    return sitk.Resample(image, [int(s) for s in size], sitk.Transform(), interpolator, origin.tolist(), new.tolist(),
                         image.GetDirection(), 0.0, image.GetPixelID(), True)


def _shown(values: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"
