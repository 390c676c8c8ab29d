"""The case table of an nnU-Net dataset (``cases.csv``): each case's centre, grouping values, survival and clinical
data.

One row per case: ``case_id`` (the case name of its image files), ``centre``, and any other columns. Which columns
hold survival (time, event) and clinical values is declared (``--survival TIME,EVENT``, ``--clinical COL,COL``),
never guessed; every other column is a grouping column that streams select cases by (``where:``). Cells are read as
text, stripped; an empty cell is missing.

A problem of the whole table (no file, a missing column, a row without ``case_id`` or ``centre``, a case with two
rows) raises :class:`~pemma_cl.core.errors.UserError` at once; a cell that is not what its declared column holds
makes its case bad (refused, or skipped with ``--on-bad-case skip``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.data.description import CENTRE_COLUMN
from pemma_cl.data.nnunet.layout import CASE_ID_COLUMN


@dataclass(frozen=True)
class CaseEntry:
    """What the table says about one case.

    Attributes:
        centre: its ``centre`` value.
        groups: its values of the other grouping columns (empty cells left out).
        clinical: its declared clinical columns as numbers (None where the cell is empty).
        rfs_days: its survival time, None without an endpoint.
        relapse: its event (1 event, 0 censored), None without an endpoint.
    """

    centre: str
    groups: dict[str, str]
    clinical: dict[str, float | None]
    rfs_days: float | None
    relapse: int | None


@dataclass(frozen=True)
class CaseTable:
    """A read case table.

    Attributes:
        path: the CSV file.
        columns: the grouping columns: ``centre``, then the others in the table's order.
        entries: ``{case_id: entry}`` of the cases whose cells are valid.
        bad: ``{case_id: reason}`` of the cases with a cell their declared column cannot hold.
    """

    path: Path
    columns: tuple[str, ...]
    entries: dict[str, CaseEntry]
    bad: dict[str, str]

    @property
    def ids(self) -> set[str]:
        """Every case the table has a row for."""
        return set(self.entries) | set(self.bad)

    def selection_rows(self) -> list[dict[str, str]]:
        """Each case's grouping values ``{column: value}`` (centre included), what a stream's selection is checked
        against (:func:`pemma_cl.streams.build.check_selection`)."""
        return [{CENTRE_COLUMN: entry.centre, **entry.groups} for _, entry in sorted(self.entries.items())]


class _BadValue(Exception):
    """A cell its declared column cannot hold; the message is the reason."""


def read_case_table(path: Path, survival: Sequence[str] | None = None, clinical: Sequence[str] = ()) -> CaseTable:
    """Read and check a case table.

    Args:
        path: the CSV file.
        survival: the ``(time, event)`` columns, or None (no survival endpoint).
        clinical: the clinical columns (numbers).

    Raises:
        UserError: If the file is missing or unreadable, lacks ``case_id``, ``centre`` or a declared column, a row
            has no case id or centre, a case has more than one row, or the declared columns overlap.
    """
    survival = tuple(survival or ())
    clinical = tuple(clinical)
    if survival and len(survival) != 2:
        raise UserError(f"survival: expected two columns TIME,EVENT, got {list(survival)!r}")
    table = _read_csv(path)
    declared = [*survival, *clinical]
    for role, names in (("survival", survival), ("clinical", clinical)):
        for name in names:
            if name not in table.columns:
                raise UserError(f"{path}: no column {name!r} (a declared {role} column); its columns are "
                                f"[{', '.join(table.columns)}]")
            if name in (CASE_ID_COLUMN, CENTRE_COLUMN):
                raise UserError(f"{role}: column {name!r} names the cases or their centre; declare other columns")
            if declared.count(name) > 1:
                raise UserError(f"{role}: column {name!r} is declared twice; a column plays one role")
    grouping = [c for c in table.columns if c not in (CASE_ID_COLUMN, CENTRE_COLUMN, *declared)]
    entries, bad = {}, {}
    for row in table.to_dict("records"):
        case_id = row[CASE_ID_COLUMN]
        try:
            entries[case_id] = CaseEntry(
                centre=row[CENTRE_COLUMN], groups={c: row[c] for c in grouping if row[c] != ""},
                clinical={c: _number(row, c, path) for c in clinical}, **_endpoint(row, survival, path))
        except _BadValue as exc:
            bad[case_id] = str(exc)
    return CaseTable(path=path, columns=(CENTRE_COLUMN, *grouping), entries=entries, bad=bad)


def _read_csv(path: Path) -> pd.DataFrame:
    """The table as stripped text, checked for ``case_id`` and ``centre`` in every row and one row per case."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")  # a spreadsheet's BOM
    except FileNotFoundError:
        raise UserError(f"{path}: case table not found; expected a CSV with the columns {CASE_ID_COLUMN!r} and "
                        f"{CENTRE_COLUMN!r} (or name another with --case-table FILE)") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: cannot read it as CSV: {' '.join(str(exc).split())}") from None
    table.columns = [str(c).strip() for c in table.columns]
    for column in (CASE_ID_COLUMN, CENTRE_COLUMN):
        if column not in table.columns:
            raise UserError(f"{path}: no column {column!r}; expected {CASE_ID_COLUMN!r} (the case name of the image "
                            f"files), {CENTRE_COLUMN!r} and any grouping columns; its columns are "
                            f"[{', '.join(table.columns)}]")
    table = table.apply(lambda column: column.str.strip())
    for column in (CASE_ID_COLUMN, CENTRE_COLUMN):
        empty = (table[column] == "").to_numpy().nonzero()[0]
        if empty.size:
            raise UserError(f"{path}: row {empty[0] + 2} has no {column}")
    repeated = table[CASE_ID_COLUMN][table[CASE_ID_COLUMN].duplicated()]
    if not repeated.empty:
        case_id = repeated.iloc[0]
        count = int((table[CASE_ID_COLUMN] == case_id).sum())
        raise UserError(f"{path}: case_id {case_id!r} has {count} rows; expected one row per case")
    return table


def _endpoint(row: dict[str, str], survival: tuple[str, ...], path: Path) -> dict[str, float | int | None]:
    """``rfs_days`` and ``relapse`` of a row: both None when the survival cells are empty (no endpoint)."""
    if not survival:
        return {"rfs_days": None, "relapse": None}
    time_column, event_column = survival
    time, event = _number(row, time_column, path), _number(row, event_column, path)
    if (time is None) != (event is None):
        empty, given = (time_column, event_column) if time is None else (event_column, time_column)
        raise _BadValue(f"{path}: case_id {row[CASE_ID_COLUMN]}: column {empty!r} is empty but {given!r} is not; "
                        "give both survival cells or neither")
    if time is not None and time < 0:
        raise _BadValue(f"{path}: case_id {row[CASE_ID_COLUMN]}: column {time_column!r} holds {time:g}; expected a "
                        "time of at least 0")
    if event is not None and event not in (0, 1):
        raise _BadValue(f"{path}: case_id {row[CASE_ID_COLUMN]}: column {event_column!r} holds {event:g}; expected "
                        "1 (event) or 0 (censored)")
    return {"rfs_days": time, "relapse": None if event is None else int(event)}


def _number(row: dict[str, str], column: str, path: Path) -> float | None:
    """A cell as a finite number, None if empty."""
    text = row[column]
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _BadValue(f"{path}: case_id {row[CASE_ID_COLUMN]}: column {column!r} holds {text!r}; expected a "
                        "number or an empty cell")
    return value
