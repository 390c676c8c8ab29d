"""How the exports of the built-in cohort write: a new folder, whole or not at all, and images on a given grid."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pemma_cl.core.errors import UserError


def refuse_files(out: Path) -> None:
    """Refuse an output folder that exists and holds files (before any case is generated).

    Raises:
        UserError: If ``out`` exists and is not an empty folder.
    """
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out: '{out}' already exists and is not an empty folder")


@contextmanager
def new_folder(out: Path) -> Iterator[Path]:
    """A hidden partial folder beside ``out`` to write into; renamed to ``out`` when the block ends, removed if it
    raises, so an interrupted export leaves nothing behind."""
    refuse_files(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield partial
        if out.exists():
            out.rmdir()
        os.rename(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def on_grid(array: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A ``[z, y, x]`` array as an image with ``reference``'s geometry (spacing, origin, direction)."""
    image = sitk.GetImageFromArray(array)
    image.CopyInformation(reference)
    return image
