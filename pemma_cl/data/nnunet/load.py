"""A prepared nnU-Net dataset as case records (``--data nnunet:DIR``): the cache's volumes joined with the case table.

``pemma-bench prepare --data nnunet:DIR`` (:mod:`pemma_cl.data.nnunet.prepare`) writes one ``.npz`` per case;
:func:`load_nnunet` reads them and joins the case table (checked here on every use: it is small, and a change to it
needs no new preparation). The images' checks ran in ``prepare``, whose report says why a case has no ``.npz``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.data.description import DEFAULT_NORMALISATION, DatasetDescription
from pemma_cl.data.ehr import fit_clinical_fields
from pemma_cl.data.hecktor.checks import refusal
from pemma_cl.data.nnunet import layout
from pemma_cl.data.nnunet.prepare import cached_row, dataset_cases, table_problems, target_spacing
from pemma_cl.data.nnunet.prepare_case import CaseFiles
from pemma_cl.data.nnunet.table import CaseEntry, read_case_table
from pemma_cl.data.records import CaseRecord, LoadedData


def load_nnunet(root: Path, on_bad_case: str, settings: layout.NnunetSettings = layout.NnunetSettings(),
                cache: Path | None = None) -> LoadedData:
    """The usable cases of a prepared nnU-Net dataset: its training cases, and its test cases when imagesTs/ and
    labelsTs/ both exist (``LoadedData.test``; otherwise the run splits the training cases).

    Args:
        root: the dataset folder, prepared by ``pemma-bench prepare --data nnunet:DIR``.
        on_bad_case: ``refuse`` (raise, listing every bad case) or ``skip`` (leave them out, with reasons).
        settings: the case table, its survival and clinical columns, and the target spacing the cache was prepared
            for.
        cache: the prepared cache; None: the default one of the target spacing.

    Raises:
        UserError: If the folder, ``dataset.json`` or case table is malformed, the cache is missing, incomplete or
            older than the files, or (``refuse``) some case is bad.
    """
    problem = layout.layout_problem(root)
    if problem:
        raise UserError(f"data: {problem}")
    dataset = layout.read_dataset_json(root)
    table = read_case_table(layout.case_table_path(root, settings.case_table), settings.survival, settings.clinical)
    cases = dataset_cases(root, dataset)
    command = layout.prepare_command(root, settings.case_table, settings.spacing, cache)
    target = target_spacing(root, cases, settings.spacing)
    cache = layout.default_cache(root, target) if cache is None else cache
    report = _read_report(cache, command)
    bad = {**table.bad, **table_problems(table, cases)}
    records: dict[str, list[CaseRecord]] = {layout.TRAIN: [], layout.TEST: []}
    unprepared, digest = [], hashlib.sha256(json.dumps(target).encode())
    for case_id, files in sorted(cases.items()):
        reason = bad.get(case_id) or files.missing(root)
        if reason is None:
            row = cached_row(cache, files, root, target)
            if row is not None:
                records[files.part].append(_read_case(cache, files, table.entries[case_id], target, command))
                digest.update(f"{case_id}:{row['sha256']}".encode())
                continue
            status, reason, source = report.get(case_id, ("", "", ""))
            if status != layout.STATUS_BAD or source != files.source(root):  # never prepared, or changed since
                unprepared.append(case_id)
                continue
        bad[case_id] = reason
    if unprepared:
        raise UserError(f"{len(unprepared)} of {len(cases)} cases of '{root}' are not in the prepared cache '{cache}' "
                        f"for spacing {layout.spacing_text(target)} mm (new or changed cases, or prepare was "
                        f"interrupted); run '{command}' first", details=unprepared)
    if bad and on_bad_case != "skip":
        raise refusal(bad, len(set(cases) | table.ids))
    if not records[layout.TRAIN]:
        raise UserError(f"data: no usable training case in '{root}'")
    if layout.has_test_part(root) and not records[layout.TEST]:
        raise UserError(f"data: no usable test case in '{root / layout.IMAGES_TS}'")
    # The clinical columns' maps are fitted on the training folder's covariates (no outcome is read).
    clinical = fit_clinical_fields(settings.clinical, [case.clinical for case in records[layout.TRAIN]])
    description = DatasetDescription(dataset.name, dataset.structures, groups=table.columns,
                                     normalisation=dict(DEFAULT_NORMALISATION), clinical=clinical)
    n_cases = len(records[layout.TRAIN]) + len(records[layout.TEST])
    key = f"nnunet-v1:{root.resolve()}:spacing{layout.spacing_text(target)}:{n_cases}cases:{digest.hexdigest()[:16]}"
    return LoadedData(records[layout.TRAIN], key, description, skipped=bad,
                      test=records[layout.TEST] if layout.has_test_part(root) else None)


def _read_case(cache: Path, files: CaseFiles, entry: CaseEntry, spacing: tuple[float, float, float],
               command: str) -> CaseRecord:
    """One prepared case joined with its table entry."""
    path = layout.case_cache_file(cache, files.case_id)
    try:
        with np.load(path) as npz:
            ct, pet, label = npz["ct"], npz["pet"], npz["label"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        raise UserError(f"data: cache file '{path}' is damaged; run '{command}' again") from None
    return CaseRecord(case_id=files.case_id, centre=entry.centre, ct=ct, pet=pet, label=label, spacing=spacing,
                      clinical=dict(entry.clinical), rfs_days=entry.rfs_days, relapse=entry.relapse,
                      groups=dict(entry.groups))


def _read_report(cache: Path, command: str) -> dict[str, tuple[str, str, str]]:
    """``{case: (status, reason, source)}`` from the cache's prepare report."""
    path = cache / layout.REPORT_CSV
    if not path.is_file():
        raise UserError(f"data: no prepared cache '{cache}'; run '{command}' first")
    try:
        report = pd.read_csv(path, dtype=str, keep_default_na=False)
        return {row["case"]: (row["status"], row["reason"], row["source"]) for row in report.to_dict("records")}
    except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        raise UserError(f"data: '{path}' is damaged; run '{command}' again") from None
