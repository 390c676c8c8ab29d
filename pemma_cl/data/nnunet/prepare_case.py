"""Prepare one case of an nnU-Net dataset: read, check, resample, write its ``.npz`` atomically.

This runs in ``prepare``'s worker processes, so it imports only numpy, SimpleITK and the light data modules.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pemma_cl.core.files import write_atomically
from pemma_cl.data.hecktor.checks import BadCase, non_finite, read_image
from pemma_cl.data.nnunet import layout
from pemma_cl.data.nnunet.volumes import grid_difference, resampled, unknown_label_values

REPORT_COLUMNS: tuple[str, ...] = (
    "case", "part", "status", "reason", "size", "spacing_mm", "out_size", "out_spacing_mm", "resampled",
    "foreground_voxels", "target_spacing_mm", "sha256", "source",
)


@dataclass(frozen=True)
class CaseFiles:
    """The files of one case, relative to the dataset folder.

    Attributes:
        case_id: its name.
        part: ``train`` (imagesTr/labelsTr) or ``test`` (imagesTs/labelsTs).
        ct: its CT channel file.
        pet: its PET channel file.
        label: its label file.
    """

    case_id: str
    part: str
    ct: Path
    pet: Path
    label: Path

    @classmethod
    def of(cls, case_id: str, part: str, dataset: layout.DatasetJson) -> CaseFiles:
        """The files ``dataset.json`` names for a case of a part."""
        ending = dataset.file_ending
        return cls(case_id, part, layout.image_file(case_id, dataset.channels["ct"], ending, part),
                   layout.image_file(case_id, dataset.channels["pet"], ending, part),
                   layout.label_file(case_id, ending, part))

    @property
    def all(self) -> tuple[Path, Path, Path]:
        """CT, PET and label."""
        return self.ct, self.pet, self.label

    def missing(self, root: Path) -> str | None:
        """Which of its files are missing, or None."""
        missing = [str(path) for path in self.all if not (root / path).is_file()]
        if not missing:
            return None
        return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing"

    def source(self, root: Path) -> str:
        """A fingerprint of its files (size and modification time of each): a cached case is redone when it
        changes."""
        stats = [(root / path).stat() for path in self.all]
        return ";".join(f"{s.st_size}:{s.st_mtime_ns}" for s in stats)


def prepare_case(root: Path, cache: Path, files: CaseFiles, spacing: tuple[float, float, float],
                 label_values: tuple[int, ...]) -> dict:
    """Check one case and write ``<cache>/<case>.npz``; returns its report row (status ``ok`` or ``bad``).

    The checks: every file a readable 3-D scalar image without NaN or infinite voxels, CT and PET on the label's
    grid, label values among ``label_values``. The ``.npz`` (uncompressed) holds ``ct`` and ``pet`` (float32, as
    stored: HU and SUV), ``label`` (uint8), all indexed ``[z, y, x]`` on a grid of ``spacing`` (resampled only when
    the case's spacing differs from it), ``spacing`` (z y x) and ``report`` (the report row as JSON, with the sha256
    of the three arrays and the source files' fingerprint).
    """
    row = {"case": files.case_id, "part": files.part, "source": files.source(root),
           "target_spacing_mm": ",".join(repr(float(v)) for v in spacing)}
    try:
        label, ct, pet = (read_image(root, path) for path in (files.label, files.ct, files.pet))
        row.update(size=_triple(label.GetSize()[::-1], "d"), spacing_mm=_triple(label.GetSpacing()[::-1], ".4g"))
        reason = _image_problem(root, files, ct, pet, label, label_values)
        if reason:
            return {**row, "status": layout.STATUS_BAD, "reason": reason}
        label = sitk.Cast(label, sitk.sitkUInt8)  # values checked: 0..K, K <= 255
        out_label = resampled(label, spacing, labels=True)
        arrays = {"ct": resampled(sitk.Cast(ct, sitk.sitkFloat32), spacing, labels=False),
                  "pet": resampled(sitk.Cast(pet, sitk.sitkFloat32), spacing, labels=False), "label": out_label}
        arrays = {name: sitk.GetArrayFromImage(image) for name, image in arrays.items()}
    except BadCase as exc:
        return {**row, "status": layout.STATUS_BAD, "reason": str(exc)}
    except RuntimeError as exc:  # SimpleITK reports its failures as RuntimeError
        return {**row, "status": layout.STATUS_BAD,
                "reason": f"SimpleITK failed: {str(exc).strip().splitlines()[-1]}"}
    digest = hashlib.sha256()
    for array in arrays.values():
        digest.update(array.tobytes())
    row.update(status=layout.STATUS_OK, reason="", out_size=_triple(arrays["label"].shape, "d"),
               out_spacing_mm=_triple(spacing, ".4g"),
               resampled="no" if out_label is label else "yes",
               foreground_voxels=int(np.count_nonzero(arrays["label"])), sha256=digest.hexdigest())
    # Not compressed: zlib took about three quarters of a case's time, and every run reads the cache again.
    write_atomically(layout.case_cache_file(cache, files.case_id),
                     lambda handle: np.savez(handle, **arrays, spacing=np.array(spacing),
                                             report=np.array(json.dumps(row))))
    return row


def _image_problem(root: Path, files: CaseFiles, ct: sitk.Image, pet: sitk.Image, label: sitk.Image,
                   label_values: tuple[int, ...]) -> str | None:
    """The first problem of a case's images: a channel off the label's grid, non-finite voxels, unknown labels."""
    for path, image in ((files.ct, ct), (files.pet, pet)):
        difference = grid_difference(image, label)
        if difference:
            return f"{path}: not on the grid of {files.label}: {difference}"
    for path in files.all:
        reason = non_finite(root, path)
        if reason:
            return reason
    unknown = unknown_label_values(sitk.GetArrayViewFromImage(label), label_values)
    if unknown.size:
        shown = ", ".join(f"{v:g}" for v in unknown[:5]) + (", ..." if unknown.size > 5 else "")
        return (f"{files.label}: label values {shown} are not in dataset.json's labels "
                f"{{{', '.join(map(str, label_values))}}}")
    return None


def _triple(values, spec: str) -> str:
    return "x".join(format(v, spec) for v in values)
