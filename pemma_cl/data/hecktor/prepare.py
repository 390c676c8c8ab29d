"""``pemma-bench prepare``: check every case of a HECKTOR 2022 folder and write the preprocessed cache.

For each case with its three files, a worker process reads CT, PET and label with SimpleITK, runs the
image checks (:mod:`pemma_cl.data.hecktor.checks`), locates the head-and-neck box from CT and PET
(:mod:`pemma_cl.data.hecktor.crop`) and writes ``<cache>/<case>.npz`` (CT in HU, PET in SUV, label,
all ``size`` cubed on one isotropic grid; intensities are normalised later, by
:mod:`pemma_cl.data.dataset`). Every file is written under a temporary name and renamed when complete,
so a case is in the cache exactly when its ``.npz`` exists: an interrupted run loses only the cases in
flight, and the next run skips the cases already there. ``prepare_report.csv`` lists every case with
its centre, sizes, spacings, status (``ok``, ``cached``, ``bad``) and the reason it is bad.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.data.hecktor import layout
from pemma_cl.data.hecktor.checks import missing_files, not_hecktor_centre, refusal
from pemma_cl.data.hecktor.load import read_tables
from pemma_cl.data.hecktor.prepare_case import (
    REPORT_COLUMNS,
    TMP_PREFIX,
    atomic_path,
    cube_size,
    prepare_case,
    report_row,
)
from pemma_cl.data.workers import prepare_in_processes


@dataclass(frozen=True)
class PrepareSummary:
    """What one ``prepare`` call did.

    Attributes:
        report: path of ``prepare_report.csv``.
        prepared: cases processed now (written or found bad).
        cached: cases already in the cache.
        bad: ``{case: reason}`` of the bad cases.
        seconds: wall time spent on the processed cases.
        workers: worker processes used.
    """

    report: Path
    prepared: int
    cached: int
    bad: dict[str, str]
    seconds: float
    workers: int

    @property
    def cases_per_second(self) -> float:
        """Throughput on the processed cases."""
        return self.prepared / self.seconds if self.seconds > 0 else 0.0


def prepare_folder(root: Path, cache: Path | None, size: int, on_bad_case: str, workers: int) -> PrepareSummary:
    """Check and preprocess every case of a HECKTOR folder into ``cache``.

    Args:
        root: the official training folder.
        cache: cache folder; ``None`` means ``<root>/.pemma_cache/size<size>``.
        size: voxels per side of the prepared volumes (the preset's crop size).
        on_bad_case: ``refuse``: raise after the report is written, listing every bad case; ``skip``:
            leave bad cases out (they stay in the report with their reasons).
        workers: worker processes.

    Raises:
        UserError: On a malformed folder or table, or (``refuse``) when some case is bad.
    """
    problem = layout.layout_problem(root)
    if problem:
        raise UserError(problem)
    tables = read_tables(root)
    cache = layout.default_cache(root, size) if cache is None else cache
    cache.mkdir(parents=True, exist_ok=True)
    for leftover in cache.glob(f"{TMP_PREFIX}*"):  # from a run that was killed while writing
        leftover.unlink(missing_ok=True)
    rows: dict[str, dict] = {}
    todo = []
    for case_id in layout.find_case_ids(root, tables.ids):
        path = layout.case_cache_file(cache, case_id)
        reason = missing_files(root, case_id)
        if reason:
            rows[case_id] = report_row(case_id, layout.STATUS_BAD, reason)
        elif (row := _cached_row(path, size)) is not None:
            rows[case_id] = row
        else:
            todo.append(case_id)
    workers = max(1, min(workers, len(todo)))
    started = time.perf_counter()
    rows.update(prepare_in_processes(prepare_case, {case_id: (root, cache, case_id, size) for case_id in todo},
                                     workers))
    seconds = time.perf_counter() - started
    for case_id, row in rows.items():
        reason = row["reason"] or not_hecktor_centre(case_id) or tables.problem(case_id)
        if reason:
            row.update(status=layout.STATUS_BAD, reason=reason)
    report = cache / layout.REPORT_CSV
    with atomic_path(report) as tmp:
        pd.DataFrame([rows[c] for c in sorted(rows)], columns=list(REPORT_COLUMNS)).to_csv(tmp, index=False)
    bad = {case_id: row["reason"] for case_id, row in rows.items() if row["status"] == layout.STATUS_BAD}
    if bad and on_bad_case != "skip":
        raise refusal(bad, len(rows))
    cached = sum(row["status"] == layout.STATUS_CACHED for row in rows.values())
    return PrepareSummary(report, len(todo), cached, bad, seconds, workers)


def _cached_row(path: Path, size: int) -> dict | None:
    """The report row stored with a cached case, its status set to ``cached``; ``None`` if not cached.

    A cache file that cannot be read (damaged after it was written) or holds another size counts as
    not cached: it is redone.
    """
    try:
        with np.load(path) as npz:
            row = json.loads(str(npz["report"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if row.get("out_size") != cube_size(size):
        return None
    return {**row, "status": layout.STATUS_CACHED}
