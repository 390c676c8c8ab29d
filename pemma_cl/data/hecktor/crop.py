"""Locate a fixed physical head-and-neck box from CT and PET alone, and resample a case onto it.

The labels are never looked at. The box is a cube of ``BOX_MM`` with axis-aligned sides in patient
coordinates (LPS: +z superior):

* **Top.** The brain is found as the topmost large region of high PET uptake (SUV >= ``BRAIN_SUV``,
  at least ``BRAIN_MIN_ML``); its lower end (the lowest slice whose cross-section is at least a
  quarter of the brain's largest one) lies at about the skull base. The box starts ``ABOVE_BRAIN_MM``
  above it, so the nasopharynx is inside and the neck below fills the rest. Without a brain (PET
  too cold, head outside the scan), the box starts at the top of the body outline.
* **Left-right and front-back.** Centred on the body outline (CT > ``BODY_HU``, largest connected
  region, which leaves out the scanner table) within the box's slab.

Both are found on an isotropic ``SURVEY_MM`` survey grid over the CT. CT, PET (linear interpolation,
after a Gaussian anti-aliasing blur where the box grid is coarser than the image) and label (nearest
neighbour) are then resampled once, straight from their own grids onto the box grid of ``size``
cubed voxels, so all three share one isotropic grid. Outside its field of view, CT reads as air
(-1000 HU), PET and label as 0.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from pemma_cl.data.hecktor.checks import BadCase, physical_box

#: Side of the head-and-neck box (mm): skull base to below the larynx and the lowest neck nodes.
BOX_MM = 240.0
#: How far the box reaches above the lower end of the brain (mm).
ABOVE_BRAIN_MM = 40.0
#: Spacing of the survey grid on which the box is located (mm).
SURVEY_MM = 4.0
#: CT threshold of the body outline (HU).
BODY_HU = -500.0
#: Least cross-section (mm^2) of a slice counted as body when no brain is found.
MIN_BODY_AREA_MM2 = 2000.0
#: PET threshold (SUV) and least volume (ml) of the brain's uptake.
BRAIN_SUV = 3.0
BRAIN_MIN_ML = 100.0
AIR_HU = -1000.0


@dataclass(frozen=True)
class Box:
    """An axis-aligned cube in physical space.

    Attributes:
        origin: centre of its first voxel (mm, x y z) at the output size.
        spacing: voxel side at the output size (mm).
        size: voxels per side.
        anchor: what placed its top: ``brain`` or ``body``.
    """

    origin: tuple[float, float, float]
    spacing: float
    size: int
    anchor: str

    def grid(self) -> sitk.Image:
        """An empty image with the box's geometry (identity direction)."""
        image = sitk.Image([self.size] * 3, sitk.sitkUInt8)
        image.SetOrigin(self.origin)
        image.SetSpacing([self.spacing] * 3)
        return image


def locate_box(ct: sitk.Image, pet: sitk.Image, size: int) -> Box:
    """The head-and-neck box of a case, from its CT body outline and PET brain uptake.

    Raises:
        BadCase: If the CT shows no body.
    """
    survey = _survey_grid(ct)
    body = _largest_region(_resampled_array(ct, survey, AIR_HU) > BODY_HU)
    body_slices = np.flatnonzero(body.sum(axis=(1, 2)) * SURVEY_MM**2 >= MIN_BODY_AREA_MM2)
    if body_slices.size == 0:
        raise BadCase(f"no body in the CT (no region above {BODY_HU:g} HU of at least {MIN_BODY_AREA_MM2:g} mm^2)")
    z = survey.GetOrigin()[2] + SURVEY_MM * np.arange(body.shape[0])
    brain_bottom = _brain_bottom(_resampled_array(pet, survey, 0.0))
    if brain_bottom is None:
        top, anchor = z[body_slices.max()] + SURVEY_MM / 2, "body"
    else:
        top, anchor = z[brain_bottom] + ABOVE_BRAIN_MM, "brain"
    slab = body[(z <= top) & (z >= top - BOX_MM)]
    if not slab.any():
        raise BadCase("no body in the CT inside the head-and-neck box")
    _, ys, xs = np.nonzero(slab)
    centre_x = survey.GetOrigin()[0] + xs.mean() * SURVEY_MM
    centre_y = survey.GetOrigin()[1] + ys.mean() * SURVEY_MM
    spacing = BOX_MM / size
    half = (BOX_MM - spacing) / 2
    origin = (centre_x - half, centre_y - half, top - BOX_MM + spacing / 2)
    return Box(origin=origin, spacing=spacing, size=size, anchor=anchor)


def resample_case(
    ct: sitk.Image, pet: sitk.Image, label: sitk.Image, box: Box
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT (HU, float32), PET (SUV, float32) and label (uint8) on the box grid, indexed ``[z, y, x]``."""
    grid = box.grid()
    ct_out = _resample(_anti_aliased(_near_box(ct, box), box.spacing), grid, sitk.sitkLinear, AIR_HU, sitk.sitkFloat32)
    pet_out = _resample(_anti_aliased(_near_box(pet, box), box.spacing), grid, sitk.sitkLinear, 0.0, sitk.sitkFloat32)
    label_out = _resample(label, grid, sitk.sitkNearestNeighbor, 0.0, sitk.sitkUInt8)
    return ct_out, pet_out, label_out


def _near_box(image: sitk.Image, box: Box) -> sitk.Image:
    """The part of ``image`` within two box voxels of the box (all of it if the box is outside).

    Blurring only this part gives the same box values (the blur reaches 1.5 box voxels) for a
    fraction of the work on scans far larger than the head and neck (e.g. whole-body CT).
    """
    margin = 2 * box.spacing
    lo = np.array(box.origin) - box.spacing / 2 - margin
    hi = lo + box.size * box.spacing + 2 * margin
    corners = [image.TransformPhysicalPointToContinuousIndex(corner) for corner in itertools.product(*zip(lo, hi))]
    size = np.array(image.GetSize())
    first = np.clip(np.floor(np.min(corners, axis=0)).astype(int), 0, size)
    last = np.clip(np.ceil(np.max(corners, axis=0)).astype(int) + 1, 0, size)
    if np.any(last - first < 4):  # (almost) outside: resampling gives the default values anyway
        return image
    return image[first[0]:last[0], first[1]:last[1], first[2]:last[2]]


def _survey_grid(ct: sitk.Image) -> sitk.Image:
    lo, hi = physical_box(ct)
    size = [max(1, int(np.ceil(extent / SURVEY_MM))) for extent in hi - lo]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing([SURVEY_MM] * 3)
    grid.SetOrigin(list(lo + SURVEY_MM / 2))
    return grid


def _resampled_array(image: sitk.Image, grid: sitk.Image, default: float) -> np.ndarray:
    return _resample(image, grid, sitk.sitkLinear, default, sitk.sitkFloat32)


def _resample(image: sitk.Image, grid: sitk.Image, interpolator: int, default: float, pixel: int) -> np.ndarray:
    out = sitk.Resample(image, grid, sitk.Transform(), interpolator, default, pixel)
    return sitk.GetArrayFromImage(out)


def _anti_aliased(image: sitk.Image, spacing: float) -> sitk.Image:
    """Blur ``image`` before sampling it every ``spacing`` mm where its voxels are finer than that.

    The Gaussian's standard deviation is half the step from the image's spacing to ``spacing``
    along each axis (as scikit-image's resize does); axes that are not coarsened are left alone.
    Recursive (IIR) filtering keeps the cost independent of the blur's width.
    """
    blurred = image
    for axis, step in enumerate(image.GetSpacing()):
        if spacing > step:
            blurred = sitk.RecursiveGaussian(sitk.Cast(blurred, sitk.sitkFloat32), (spacing - step) / 2.0, False,
                                             sitk.RecursiveGaussianImageFilter.ZeroOrder, axis)
    return blurred


def _regions(mask: np.ndarray, min_voxels: int = 0) -> np.ndarray:
    """26-connected regions of a boolean mask with at least ``min_voxels``, labelled 1, 2, ... by decreasing size."""
    regions = sitk.ConnectedComponent(sitk.GetImageFromArray(mask.astype(np.uint8)), True)
    return sitk.GetArrayFromImage(sitk.RelabelComponent(regions, min_voxels))


def _largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest region of a boolean mask (empty if the mask is)."""
    return _regions(mask) == 1


def _brain_bottom(pet: np.ndarray) -> int | None:
    """Survey slice index of the lower end of the brain's uptake, or ``None`` when there is no brain."""
    regions = _regions(pet >= BRAIN_SUV, int(np.ceil(BRAIN_MIN_ML * 1000.0 / SURVEY_MM**3)))
    if not regions.any():
        return None
    tops = [np.flatnonzero((regions == label).any(axis=(1, 2))).max() for label in range(1, regions.max() + 1)]
    area = (regions == 1 + int(np.argmax(tops))).sum(axis=(1, 2))  # the topmost region is the brain
    return int(np.flatnonzero(area >= area.max() / 4).min())
