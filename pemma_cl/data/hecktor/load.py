"""The real HECKTOR 2022 data source (``--data hecktor:DIR``): prepared cache + clinical and endpoint tables.

``pemma-bench prepare`` (:mod:`pemma_cl.data.hecktor.prepare`) turns the folder's NIfTI files into one ``.npz``
per case; :func:`load_hecktor` reads those and joins the two CSV tables to them by PatientID. The
tables are checked here on every use (they are small), the images once by ``prepare``, whose report
says why a case has no ``.npz``.
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.data.description import DatasetDescription
from pemma_cl.data.hecktor import layout
from pemma_cl.data.hecktor.checks import duplicate_ids, missing_columns, not_hecktor_centre, refusal
from pemma_cl.data.records import CaseRecord, LoadedData


@dataclass(frozen=True)
class TableEntry:
    """What the two tables say about one patient."""

    clinical: dict[str, float | int | None]
    rfs_days: float | None
    relapse: int | None


@dataclass(frozen=True)
class Tables:
    """The parsed clinical and endpoint tables.

    Attributes:
        entries: patients with exactly one valid clinical row (and at most one endpoint row).
        bad: ``{PatientID: reason}`` of patients whose rows are duplicated or hold invalid values.
    """

    entries: dict[str, TableEntry]
    bad: dict[str, str]

    @property
    def ids(self) -> set[str]:
        """Every PatientID the tables mention."""
        return set(self.entries) | set(self.bad)

    def problem(self, case_id: str) -> str | None:
        """Why the tables cannot describe ``case_id``, or ``None``."""
        if case_id in self.bad:
            return self.bad[case_id]
        if case_id not in self.entries:
            return f"{layout.CLINICAL_CSV}: no row for PatientID {case_id}"
        return None


class _BadValue(Exception):
    """A table cell that is not what its column holds; the message is the reason."""


def read_tables(root: Path) -> Tables:
    """Read and check the clinical and endpoint tables of a HECKTOR folder.

    Raises:
        UserError: If a table is missing, unreadable, lacks a column or has a row without PatientID.
    """
    clinical = _read_csv(root, layout.CLINICAL_CSV, tuple(layout.CLINICAL_COLUMNS))
    endpoint = _read_csv(root, layout.ENDPOINT_CSV, layout.ENDPOINT_COLUMNS)
    bad = duplicate_ids(clinical, layout.CLINICAL_CSV)
    for case_id, reason in duplicate_ids(endpoint, layout.ENDPOINT_CSV).items():
        bad.setdefault(case_id, reason)
    endpoints: dict[str, tuple[float | None, int | None]] = {}
    for row in endpoint.to_dict("records"):
        try:
            endpoints[row[layout.ID_COLUMN]] = (
                _number(row, layout.RFS_COLUMN, layout.ENDPOINT_CSV, integer=False),
                _number(row, layout.RELAPSE_COLUMN, layout.ENDPOINT_CSV, integer=True),
            )
        except _BadValue as exc:
            bad.setdefault(row[layout.ID_COLUMN], str(exc))
    entries = {}
    for row in clinical.to_dict("records"):
        case_id = row[layout.ID_COLUMN]
        try:
            values = {key: _clinical_value(row, column, key) for column, key in layout.CLINICAL_COLUMNS.items()
                      if key is not None}
        except _BadValue as exc:
            bad.setdefault(case_id, str(exc))
            continue
        if case_id not in bad:
            entries[case_id] = TableEntry(values, *endpoints.get(case_id, (None, None)))
    return Tables(entries, bad)


#: HECKTOR 2022: GTVp and GTVn, cases grouped by centre.
HECKTOR_DESCRIPTION = DatasetDescription("hecktor", layout.HEAD_AND_NECK_STRUCTURES,
                                         clinical=layout.HEAD_AND_NECK_CLINICAL)


def load_hecktor(root: Path, img_size: int, on_bad_case: str, cache: Path | None = None) -> LoadedData:
    """The usable cases of a prepared HECKTOR 2022 folder.

    Args:
        root: the official training folder, prepared for ``img_size`` by ``pemma-bench prepare``.
        img_size: crop side of the preset.
        on_bad_case: ``refuse`` (raise, listing every bad case) or ``skip`` (leave them out, with reasons).
        cache: the prepared cache; ``None``: the default one, ``<root>/.pemma_cache/size<img_size>``.

    Raises:
        UserError: If the folder or tables are malformed, the cache is missing or incomplete, or
            (``refuse``) some case is bad.
    """
    problem = layout.layout_problem(root)
    if problem:
        raise UserError(f"data: {problem}")
    tables = read_tables(root)
    command = layout.prepare_command(root, img_size, cache)
    cache = cache or layout.default_cache(root, img_size)
    report = _read_report(cache, command)
    ids = layout.find_case_ids(root, tables.ids)
    cases, bad, unprepared = [], {}, []
    for case_id in ids:
        path = layout.case_cache_file(cache, case_id)
        cached = path.is_file()
        status, image_reason = report.get(case_id, ("", ""))
        if not cached and status != layout.STATUS_BAD:
            unprepared.append(case_id)
            continue
        reason = not_hecktor_centre(case_id) or tables.problem(case_id) or (None if cached else image_reason)
        if reason is None:
            try:
                cases.append(_read_case(path, case_id, img_size, tables.entries[case_id]))
                continue
            except _BadValue as exc:
                reason = f"{exc}; run '{command}' again to redo it"
        bad[case_id] = reason
    if unprepared:
        raise UserError(f"{len(unprepared)} of {len(ids)} cases of '{root}' are not in the prepared cache "
                        f"'{cache}' (new cases, or prepare was interrupted); run '{command}' first",
                        details=unprepared)
    if bad and on_bad_case != "skip":
        raise refusal(bad, len(ids))
    if not cases:
        raise UserError(f"data: no usable case in '{root}'")
    return LoadedData(cases, _data_key(root, img_size, cache, (c.case_id for c in cases)), HECKTOR_DESCRIPTION,
                      skipped=bad)


def _read_case(path: Path, case_id: str, img_size: int, entry: TableEntry) -> CaseRecord:
    """One prepared case joined with its table entry; :class:`_BadValue` if the file is unreadable or mis-sized."""
    try:
        with np.load(path) as npz:
            ct, pet, label = npz["ct"], npz["pet"], npz["label"]
            spacing = tuple(float(s) for s in npz["spacing"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        raise _BadValue(f"cache file '{path}' is unreadable") from None
    if not ct.shape == pet.shape == label.shape == (img_size,) * 3:
        raise _BadValue(f"cache file '{path}' holds volumes of shape {ct.shape}, expected {(img_size,) * 3}")
    return CaseRecord(case_id=case_id, centre=layout.centre_of(case_id), ct=ct, pet=pet, label=label,
                      spacing=spacing, clinical=dict(entry.clinical), rfs_days=entry.rfs_days,
                      relapse=entry.relapse)


def _read_csv(root: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    path = root / name
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: cannot read it as CSV: {' '.join(str(exc).split())}") from None
    table.columns = [str(c).strip() for c in table.columns]
    problem = missing_columns(table, str(path), columns)
    if problem:
        raise UserError(problem)
    table = table[list(columns)].apply(lambda column: column.str.strip())
    empty = np.flatnonzero(table[layout.ID_COLUMN] == "")
    if empty.size:
        raise UserError(f"{path}: row {empty[0] + 2} has no {layout.ID_COLUMN}")
    return table


def _clinical_value(row: Mapping[str, str], column: str, key: str) -> float | int | None:
    text = row[column]
    if key == "gender" and text.upper() in layout.GENDER_CODES:
        return layout.GENDER_CODES[text.upper()]
    return _number(row, column, layout.CLINICAL_CSV, integer=key not in layout.REAL_FIELDS)


def _number(row: Mapping[str, str], column: str, csv_name: str, integer: bool) -> float | int | None:
    """A cell as a number (``None`` if empty); an integer column must hold a whole number."""
    text = row[column]
    if text == "" or text.lower() == "nan":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or (integer and not value.is_integer()):
        kind = "a whole number" if integer else "a number"
        raise _BadValue(f"{csv_name}: PatientID {row[layout.ID_COLUMN]}: column '{column}' holds {text!r}; "
                        f"expected {kind} or an empty cell")
    return int(value) if integer else value


def _read_report(cache: Path, command: str) -> dict[str, tuple[str, str]]:
    """``{case: (status, reason)}`` from the cache's prepare report."""
    path = cache / layout.REPORT_CSV
    if not path.is_file():
        raise UserError(f"data: no prepared cache '{cache}'; run '{command}' first")
    try:
        report = pd.read_csv(path, dtype=str, keep_default_na=False)
        return {row["case"]: (row["status"], row["reason"]) for row in report.to_dict("records")}
    except (OSError, KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        raise UserError(f"data: '{path}' is damaged; run '{command}' again") from None


def _data_key(root: Path, img_size: int, cache: Path, case_ids: Iterable[str]) -> str:
    """Identifies the cases used: the folder, the size and each case's cache file version."""
    stamps = [(case_id, layout.case_cache_file(cache, case_id).stat().st_mtime_ns) for case_id in case_ids]
    digest = hashlib.sha256(json.dumps(stamps).encode()).hexdigest()[:16]
    return f"hecktor-v1:{root.resolve()}:size{img_size}:{len(stamps)}cases:{digest}"
