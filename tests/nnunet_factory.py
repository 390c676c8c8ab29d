"""Tiny PET/CT datasets in nnU-Net's raw layout, written with SimpleITK, for the tests of ``--data nnunet:DIR``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

#: Volume shape (z, y, x) and spacing (mm, z y x) of the test cases: 8 x 10 x 12 voxels of 2 mm.
SHAPE = (8, 10, 12)
SPACING = (2.0, 2.0, 2.0)
ORIGIN = (-11.0, -9.0, -7.0)  # x y z, as SimpleITK writes it


def write_image(path: Path, array: np.ndarray, spacing: Sequence[float] = SPACING,
                origin: Sequence[float] = ORIGIN) -> None:
    """Write ``array`` ([z, y, x]) as an image of ``spacing`` (mm, z y x) and ``origin`` (mm, x y z)."""
    image = sitk.GetImageFromArray(array)
    image.SetSpacing([float(s) for s in reversed(spacing)])
    image.SetOrigin([float(o) for o in origin])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True)


def case_arrays(index: int, structures: int = 1, shape: tuple[int, int, int] = SHAPE
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT (HU, float32), PET (SUV, float32) and label (uint8) of test case ``index``: each structure k a 2-voxel
    slab of value k, hot in PET."""
    rng = np.random.default_rng(index)
    ct = rng.normal(40.0, 20.0, shape).astype(np.float32)
    pet = rng.gamma(2.0, 0.5, shape).astype(np.float32)
    label = np.zeros(shape, np.uint8)
    for k in range(1, structures + 1):
        z = 2 * (k - 1) % (shape[0] - 1)
        label[z:z + 2, 2:6, 2 + k:8 + k] = k
    pet[label > 0] += 8.0
    return ct, pet, label


def write_dataset(root: Path, table: Sequence[Mapping[str, object]], labels: Mapping[str, object] | None = None,
                  channel_names: Mapping[str, str] | None = None, test: Sequence[str] = (),
                  shape: tuple[int, int, int] = SHAPE, spacing: Sequence[float] = SPACING) -> Path:
    """Write a dataset: every row of ``table`` (``case_id`` and its other columns) as a case, ``cases.csv``, and
    ``dataset.json``; the cases named in ``test`` go to imagesTs/labelsTs. Channel 0 is CT, 1 PET unless
    ``channel_names`` says otherwise (a channel named neither gets CT's voxels)."""
    labels = dict(labels or {"background": 0, "lesion": 1})
    channel_names = dict(channel_names or {"0": "CT", "1": "PET"})
    structures = len(labels) - 1
    for index, row in enumerate(table):
        case_id = str(row["case_id"])
        images, labels_dir = ("imagesTs", "labelsTs") if case_id in test else ("imagesTr", "labelsTr")
        ct, pet, label = case_arrays(index, structures, shape)
        for channel, name in channel_names.items():
            array = pet if name.upper() in ("PET", "PT") else ct
            write_image(root / images / f"{case_id}_{int(channel):04d}.nii.gz", array, spacing)
        write_image(root / labels_dir / f"{case_id}.nii.gz", label, spacing)
    pd.DataFrame(list(table)).to_csv(root / "cases.csv", index=False)
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": channel_names, "labels": labels, "file_ending": ".nii.gz",
        "numTraining": sum(str(row["case_id"]) not in test for row in table)}))
    return root


def rows(centres: Mapping[str, int], **columns: Sequence[object]) -> list[dict[str, object]]:
    """Case table rows: ``{centre: n}`` cases named ``<centre>_<k>``; each extra column cycles through its values."""
    table = [{"case_id": f"{centre}_{k:03d}", "centre": centre} for centre, n in centres.items() for k in range(n)]
    for index, row in enumerate(table):
        row.update({column: values[index % len(values)] for column, values in columns.items()})
    return table
