"""``pemma-bench prepare --data nnunet:DIR``: check every case of an nnU-Net dataset and write its prepared cache.

Each case (imagesTr/labelsTr, and imagesTs/labelsTs when both exist) is read, checked and resampled to one target
spacing by a worker process (:mod:`pemma_cl.data.nnunet.prepare_case`) and written as ``<cache>/<case>.npz``, the
whole volume (no cropping). The target spacing is the dataset's median spacing per axis unless given; the default
cache is ``DIR/.pemma_cache/spacing<Z>x<Y>x<X>``. Every file is written under a temporary name and renamed when
complete, and the cache is locked while it is prepared, so an interrupted run loses only the cases in flight and the
next run redoes only the cases that are missing or whose files changed. ``prepare_report.csv`` lists every case with
its part, sizes, spacings, status (``ok``, ``cached``, ``bad``) and the reason it is bad; the case table is checked
too (a case without a row, a row without images).
"""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.core.files import write_atomically
from pemma_cl.core.locks import held
from pemma_cl.data.hecktor.checks import refusal
from pemma_cl.data.hecktor.prepare import PrepareSummary
from pemma_cl.data.nnunet import layout
from pemma_cl.data.nnunet.prepare_case import REPORT_COLUMNS, CaseFiles, prepare_case
from pemma_cl.data.nnunet.table import CaseTable, read_case_table
from pemma_cl.data.nnunet.volumes import median_spacing
from pemma_cl.data.workers import prepare_in_processes

LOCK_NAME = ".prepare.lock"


def dataset_cases(root: Path, dataset: layout.DatasetJson) -> dict[str, CaseFiles]:
    """Every case of the dataset's parts, by id (test cases only when imagesTs/ and labelsTs/ both exist).

    Raises:
        UserError: If ``numTraining`` differs from the training cases found, or a case is in both parts.
    """
    train = layout.find_cases(root, dataset.file_ending, layout.TRAIN)
    if dataset.num_training is not None and dataset.num_training != len(train):
        raise UserError(f"{dataset.path}: numTraining: {dataset.num_training}, but {layout.IMAGES_TR}/ and "
                        f"{layout.LABELS_TR}/ hold {len(train)} cases (files ending in {dataset.file_ending!r})")
    test = layout.find_cases(root, dataset.file_ending, layout.TEST) if layout.has_test_part(root) else []
    both = sorted(set(train) & set(test))
    if both:
        raise UserError(f"'{root}': case {both[0]!r} is both a training case ({layout.IMAGES_TR}/) and a test case "
                        f"({layout.IMAGES_TS}/); expected distinct case names")
    return {case_id: CaseFiles.of(case_id, part, dataset)
            for part, ids in ((layout.TRAIN, train), (layout.TEST, test)) for case_id in ids}


def target_spacing(root: Path, cases: dict[str, CaseFiles],
                   spacing: tuple[float, float, float] | None) -> tuple[float, float, float]:
    """``spacing`` if given, else the median spacing of the training cases' labels (headers only).

    Raises:
        UserError: If no training label can be read.
    """
    if spacing is not None:
        return spacing
    median = median_spacing(root / files.label for files in cases.values()
                            if files.part == layout.TRAIN and (root / files.label).is_file())
    if median is None:
        raise UserError(f"'{root}': no readable label in {layout.LABELS_TR}/ to take the median spacing of")
    return median


def table_problems(table: CaseTable, cases: dict[str, CaseFiles]) -> dict[str, str]:
    """``{case_id: reason}``: cases without a table row, and table rows without images."""
    problems = {case_id: f"{table.path}: no row for case_id {case_id}" for case_id in cases if case_id not in table.ids}
    problems.update({case_id: f"{table.path}: case_id {case_id} has no image or label file in the dataset"
                     for case_id in table.ids if case_id not in cases})
    return problems


def prepare_dataset(root: Path, case_table: Path | None, cache: Path | None,
                    spacing: tuple[float, float, float] | None, on_bad_case: str, workers: int) -> PrepareSummary:
    """Check and prepare every case of an nnU-Net dataset into ``cache``.

    Args:
        root: the dataset folder.
        case_table: the case table; None: ``root/cases.csv``.
        cache: cache folder; None: ``root/.pemma_cache/spacing<Z>x<Y>x<X>`` of the target spacing.
        spacing: the target spacing (mm, z y x); None: the dataset's median.
        on_bad_case: ``refuse``: raise after the report is written, listing every bad case; ``skip``: leave them
            out (they stay in the report with their reasons).
        workers: worker processes.

    Raises:
        UserError: On a malformed folder, ``dataset.json`` or case table, or (``refuse``) when some case is bad.
    """
    problem = layout.layout_problem(root)
    if problem:
        raise UserError(problem)
    dataset = layout.read_dataset_json(root)
    table = read_case_table(layout.case_table_path(root, case_table))
    cases = dataset_cases(root, dataset)
    spacing = target_spacing(root, cases, spacing)
    cache = layout.default_cache(root, spacing) if cache is None else cache
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--cache '{cache}': cannot create it: {exc.strerror or exc}") from None
    with held(cache / LOCK_NAME, f"the prepared cache '{cache}'"):
        for leftover in cache.glob(".*.partial"):  # from a run that was killed while writing
            leftover.unlink(missing_ok=True)
        rows: dict[str, dict] = {}
        todo = []
        for case_id, files in cases.items():
            reason = files.missing(root)
            if reason:
                rows[case_id] = {"case": case_id, "part": files.part, "status": layout.STATUS_BAD, "reason": reason}
            elif (row := cached_row(cache, files, root, spacing)) is not None:
                rows[case_id] = {**row, "status": layout.STATUS_CACHED}
            else:
                todo.append(files)
        workers = max(1, min(workers, len(todo)))
        started = time.perf_counter()
        rows.update(prepare_in_processes(
            prepare_case, {files.case_id: (root, cache, files, spacing, dataset.label_values) for files in todo}, workers))
        seconds = time.perf_counter() - started
        for case_id, reason in table_problems(table, cases).items():
            row = rows.setdefault(case_id, {"case": case_id, "status": layout.STATUS_BAD, "reason": reason})
            if row["status"] != layout.STATUS_BAD:  # the images are fine and cached: only the table is at fault
                row.update(status=layout.STATUS_BAD, reason=reason)
        report = pd.DataFrame([rows[c] for c in sorted(rows)], columns=list(REPORT_COLUMNS)).fillna("")
        write_atomically(cache / layout.REPORT_CSV, lambda handle: report.to_csv(handle, index=False))
    bad = {case_id: row["reason"] for case_id, row in rows.items() if row["status"] == layout.STATUS_BAD}
    if bad and on_bad_case != "skip":
        raise refusal(bad, len(rows))
    cached = sum(row["status"] == layout.STATUS_CACHED for row in rows.values())
    return PrepareSummary(cache / layout.REPORT_CSV, len(todo), cached, bad, seconds, workers)


def cached_row(cache: Path, files: CaseFiles, root: Path, spacing: tuple[float, float, float]) -> dict | None:
    """The report row stored with a case's ``.npz``, if it is prepared for ``spacing`` from the case's current files;
    None otherwise (not cached, unreadable, another target spacing, or its files changed since)."""
    try:
        with np.load(layout.case_cache_file(cache, files.case_id)) as npz:
            row = json.loads(str(npz["report"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    target = ",".join(repr(float(v)) for v in spacing)
    if row.get("target_spacing_mm") != target or row.get("source") != files.source(root):
        return None
    return row
