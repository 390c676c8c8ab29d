"""Input checks of a HECKTOR 2022 folder.

Each check returns ``None`` when the input is fine, else a one-line reason naming the file (or table
and PatientID) and the problem; :func:`read_image` raises :class:`BadCase` with such a reason instead,
because a file that cannot be read leaves nothing to check. A case with a reason is a *bad case*:
refused by default, skipped and recorded with ``--on-bad-case skip``. Problems of a whole table (a
missing column) are not a case's fault and raise :class:`~pemma_cl.core.errors.UserError` at once.
"""

from __future__ import annotations

import gzip
import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from pemma_cl.core.errors import UserError
from pemma_cl.data.hecktor import layout

if TYPE_CHECKING:  # pandas stays out of prepare's worker processes, which start faster without it
    import pandas as pd

#: Least share of the smaller image's physical box that CT and PET must have in common.
MIN_OVERLAP = 0.5
#: Label values of the challenge: background plus the structures.
LABEL_VALUES: tuple[int, ...] = (0, *layout.HEAD_AND_NECK_STRUCTURES)
_NIFTI1_HEADER_BYTES = 348
#: NIfTI datatype codes of float voxels -> numpy type (without byte order).
_NIFTI_FLOATS: dict[int, str] = {16: "f4", 64: "f8"}


class BadCase(Exception):
    """A case that cannot be used; the message is the one-line reason."""


def missing_files(root: Path, case_id: str) -> str | None:
    """The case's CT, PET or label file is missing."""
    files = (layout.ct_file(case_id), layout.pet_file(case_id), layout.label_file(case_id))
    missing = [str(path) for path in files if not (root / path).is_file()]
    if not missing:
        return None
    return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"


def not_hecktor_centre(case_id: str) -> str | None:
    """The PatientID does not start with a HECKTOR 2022 centre."""
    centre = layout.centre_of(case_id)
    if layout.is_hecktor_centre(centre):
        return None
    return f"PatientID {case_id}: centre '{centre}' is not a HECKTOR 2022 centre ({', '.join(layout.CENTRES)})"


def read_image(root: Path, relpath: Path) -> sitk.Image:
    """Read a 3-D scalar NIfTI image.

    Raises:
        BadCase: If the file is not a readable NIfTI file or not a 3-D scalar image.
    """
    try:
        image = sitk.ReadImage(str(root / relpath))
    except RuntimeError:
        raise BadCase(f"{relpath}: cannot be read as NIfTI (corrupt or not a NIfTI file)") from None
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise BadCase(f"{relpath}: expected a 3-D scalar image, got {image.GetDimension()}-D with "
                      f"{image.GetNumberOfComponentsPerPixel()} component(s) per voxel")
    return image


def non_finite(root: Path, relpath: Path) -> str | None:
    """The NIfTI file stores NaN or infinite voxels."""
    values = _nifti1_float_voxels(root / relpath)
    bad = 0 if values is None else int(np.count_nonzero(~np.isfinite(values)))
    return f"{relpath}: {bad} voxel(s) are NaN or infinite" if bad else None


def _nifti1_float_voxels(path: Path) -> np.ndarray | None:
    """The voxels of a NIfTI-1 file with float data, as stored; ``None`` for other data or formats.

    Read by hand because SimpleITK cannot show NaN or infinite voxels: its NIfTI reader (nifti_clib)
    silently replaces them with 0. Only float data can hold them; other versions are left to SimpleITK.
    """
    with (gzip.open if path.name.endswith(".gz") else open)(path, "rb") as handle:
        header = handle.read(_NIFTI1_HEADER_BYTES)
        # sizeof_hdr (int32 at byte 0) is 348 in the file's byte order.
        order = next((o for o in "<>" if np.frombuffer(header, f"{o}i4", 1)[0] == _NIFTI1_HEADER_BYTES), None)
        if order is None:
            return None

        def field(kind: str, count: int, offset: int) -> np.ndarray:
            return np.frombuffer(header, f"{order}{kind}", count, offset)

        dtype = _NIFTI_FLOATS.get(int(field("i2", 1, 70)[0]))  # datatype
        if dtype is None:
            return None
        dims = field("i2", 8, 40)  # dim[0] is the number of dimensions
        handle.read(int(field("f4", 1, 108)[0]) - _NIFTI1_HEADER_BYTES)  # skip to vox_offset
        return np.frombuffer(handle.read(), f"{order}{dtype}", int(np.prod(dims[1:dims[0] + 1])))


def bad_label_values(relpath: Path, label: np.ndarray) -> str | None:
    """The label holds values other than 0 (background), 1 (GTVp) and 2 (GTVn)."""
    values = np.unique(label)
    extra = values[~np.isin(values, LABEL_VALUES)]
    if extra.size == 0:
        return None
    shown = ", ".join(f"{v:g}" for v in extra[:5]) + (", ..." if extra.size > 5 else "")
    return f"{relpath}: label values {shown} are not in {{0, 1, 2}} (0 background, 1 GTVp, 2 GTVn)"


def no_tumour(relpath: Path, label: np.ndarray) -> str | None:
    """The label has no GTVp and no GTVn voxel."""
    return None if np.any(label > 0) else f"{relpath}: no tumour voxels (every voxel is 0)"


def no_overlap(case_id: str, ct: sitk.Image, pet: sitk.Image) -> str | None:
    """CT and PET share less than ``MIN_OVERLAP`` of the smaller one's physical box."""
    (ct_lo, ct_hi), (pet_lo, pet_hi) = physical_box(ct), physical_box(pet)
    shared = np.prod(np.clip(np.minimum(ct_hi, pet_hi) - np.maximum(ct_lo, pet_lo), 0.0, None))
    smaller = min(np.prod(ct_hi - ct_lo), np.prod(pet_hi - pet_lo))
    if smaller > 0 and shared / smaller >= MIN_OVERLAP:
        return None
    return (f"{layout.ct_file(case_id)} and {layout.pet_file(case_id)} do not overlap in physical space "
            f"(they share {100 * shared / max(smaller, 1e-9):.0f}% of the smaller image)")


def tumour_outside_box(case_id: str, label_in_box: np.ndarray) -> str | None:
    """No tumour voxel falls inside the head-and-neck box (which is placed without the label)."""
    if np.any(label_in_box > 0):
        return None
    return f"{layout.label_file(case_id)}: no tumour voxel lies inside the head-and-neck box (placed from CT and PET)"


def image_problem(root: Path, case_id: str, ct: sitk.Image, pet: sitk.Image, label: sitk.Image) -> str | None:
    """The first problem of a case's images: non-finite voxels, label values, no tumour, no CT/PET overlap."""
    label_path = layout.label_file(case_id)
    for relpath in (layout.ct_file(case_id), layout.pet_file(case_id), label_path):
        reason = non_finite(root, relpath)
        if reason:
            return reason
    values = sitk.GetArrayViewFromImage(label)
    return bad_label_values(label_path, values) or no_tumour(label_path, values) or no_overlap(case_id, ct, pet)


def physical_box(image: sitk.Image) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest physical corner (mm, x y z) of the box the image's voxels cover."""
    size = np.array(image.GetSize())
    corners = [image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner])
               for corner in itertools.product(*((-0.5, n - 0.5) for n in size))]
    return np.min(corners, axis=0), np.max(corners, axis=0)


def missing_columns(table: pd.DataFrame, csv_name: str, expected: tuple[str, ...]) -> str | None:
    """The table lacks some of the official columns (a problem of the whole table)."""
    missing = [column for column in expected if column not in table.columns]
    if not missing:
        return None
    return f"{csv_name}: missing column(s) {', '.join(repr(c) for c in missing)}; expected {', '.join(expected)}"


def duplicate_ids(table: pd.DataFrame, csv_name: str) -> dict[str, str]:
    """PatientIDs that have more than one row, with identical or conflicting values."""
    reasons = {}
    for case_id, rows in table[table[layout.ID_COLUMN].duplicated(keep=False)].groupby(layout.ID_COLUMN):
        kind = "identical" if len(rows.drop_duplicates()) == 1 else "conflicting"
        reasons[str(case_id)] = f"{csv_name}: PatientID {case_id} has {len(rows)} {kind} rows"
    return reasons


def refusal(bad: Mapping[str, str], total: int) -> UserError:
    """The error that refuses a folder with bad cases: a count on the first line, one line per case after it."""
    first = (f"{len(bad)} of {total} cases are bad; fix them, or pass --on-bad-case skip to skip them "
             f"(they are then recorded with their reasons)")
    return UserError(first, details=[f"{case_id}: {reason}" for case_id, reason in sorted(bad.items())])
