"""Prepare one case of a HECKTOR 2022 folder: read, check, crop, write its ``.npz`` atomically.

This runs in ``prepare``'s worker processes, so it imports only numpy, SimpleITK and the light data
modules (a worker starts in well under a second).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from pemma_cl.data.hecktor import layout
from pemma_cl.data.hecktor.checks import BadCase, image_problem, read_image, tumour_outside_box
from pemma_cl.data.hecktor.crop import locate_box, resample_case

REPORT_COLUMNS: tuple[str, ...] = (
    "case", "centre", "status", "reason", "ct_size", "ct_spacing_mm", "pet_size", "pet_spacing_mm",
    "out_size", "out_spacing_mm", "box_origin_mm", "anchor", "tumour_kept",
)
#: Prefix of the temporary files written before they are renamed into place.
TMP_PREFIX = ".tmp-"


def prepare_case(root: Path, cache: Path, case_id: str, size: int) -> dict:
    """Check one case and write ``<cache>/<case>.npz``; returns its report row (status ``ok`` or ``bad``).

    The ``.npz`` holds ``ct`` (HU) and ``pet`` (SUV) as float32, ``label`` as uint8, all ``size``
    cubed and indexed ``[z, y, x]``; ``spacing`` and ``origin`` (mm, x y z) of the box grid; and
    ``report``, the report row as JSON (so a later run can list the case without reading its images).
    """
    try:
        ct, pet, label = (read_image(root, relpath) for relpath in
                          (layout.ct_file(case_id), layout.pet_file(case_id), layout.label_file(case_id)))
        sizes = {"ct_size": _triple(ct.GetSize(), "d"), "ct_spacing_mm": _triple(ct.GetSpacing(), ".3f"),
                 "pet_size": _triple(pet.GetSize(), "d"), "pet_spacing_mm": _triple(pet.GetSpacing(), ".3f")}
        reason = image_problem(root, case_id, ct, pet, label)
        if reason:
            return report_row(case_id, layout.STATUS_BAD, reason, **sizes)
        box = locate_box(ct, pet, size)
        ct_box, pet_box, label_box = resample_case(ct, pet, label, box)
        reason = tumour_outside_box(case_id, label_box)
        if reason:
            return report_row(case_id, layout.STATUS_BAD, reason, **sizes, anchor=box.anchor)
    except BadCase as exc:
        return report_row(case_id, layout.STATUS_BAD, str(exc))
    except RuntimeError as exc:  # SimpleITK reports its failures as RuntimeError
        return report_row(case_id, layout.STATUS_BAD, f"SimpleITK failed: {str(exc).strip().splitlines()[-1]}")
    tumour_mm3 = np.count_nonzero(sitk.GetArrayViewFromImage(label)) * np.prod(label.GetSpacing())
    row = report_row(case_id, layout.STATUS_OK, "", **sizes, out_size=cube_size(size),
                     out_spacing_mm=_triple((box.spacing,) * 3, ".3f"), box_origin_mm=_triple(box.origin, ".2f"),
                     anchor=box.anchor,
                     tumour_kept=round(float(np.count_nonzero(label_box) * box.spacing**3 / tumour_mm3), 3))
    with atomic_path(layout.case_cache_file(cache, case_id)) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, ct=ct_box, pet=pet_box, label=label_box, spacing=np.full(3, box.spacing),
                            origin=np.array(box.origin), report=np.array(json.dumps(row)))
    return row


def init_worker() -> None:
    """Set up a worker process: one SimpleITK thread, Ctrl-C left to the parent, exit when the parent dies.

    The parent, on Ctrl-C, stops handing out cases and lets the cases in flight finish writing. A
    parent killed outright (``kill -9``) cannot stop its workers, which would wait for work forever:
    each watches its parent and exits once it is gone (a temporary file it leaves is removed by the
    next ``prepare``).
    """
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # the processes share the cores, not the threads
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def report_row(case_id: str, status: str, reason: str, **fields: object) -> dict:
    """A row of ``prepare_report.csv``; columns not given are empty."""
    return {**dict.fromkeys(REPORT_COLUMNS, ""), "case": case_id, "centre": layout.centre_of(case_id),
            "status": status, "reason": reason, **fields}


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path`` that replaces ``path`` when the block succeeds, removed otherwise."""
    tmp = path.with_name(f"{TMP_PREFIX}{os.getpid()}-{path.name}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def cube_size(size: int) -> str:
    """How the report writes the size of a ``size``-cubed volume, e.g. ``32x32x32``."""
    return _triple((size,) * 3, "d")


def _triple(values: tuple, spec: str) -> str:
    return "x".join(format(v, spec) for v in values)
