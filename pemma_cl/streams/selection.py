"""Which cases a stream's pretrain and experiences select, checked against the data's grouping columns.

Kept apart from :mod:`pemma_cl.streams.build` (which imports torch and Avalanche) so that a run's configuration can
check its stream against a case table before anything heavy is imported (:class:`pemma_cl.run.config.RunConfig`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pemma_cl.core.errors import UserError
from pemma_cl.data.description import CENTRE_COLUMN
from pemma_cl.data.records import CaseRecord
from pemma_cl.streams.spec import StreamSpec, Where


def selection_text(centres: tuple[str, ...], where: Where) -> str:
    """``centre in [A] and tracer in [PSMA]``: a selection in words."""
    wanted = [f"centre in [{', '.join(centres)}]"] if centres else []
    wanted += [f"{column} in [{', '.join(values)}]" for column, values in where]
    return " and ".join(wanted) or "every case"


def case_groups(cases: Sequence[CaseRecord]) -> tuple[list[str], list[dict[str, str]]]:
    """``(columns, rows)`` for :func:`check_selection`: the grouping columns the cases have and each case's values."""
    rows = [{CENTRE_COLUMN: case.centre, **case.groups} for case in cases]
    return sorted({column for row in rows for column in row} | {CENTRE_COLUMN}), rows


def check_selection(spec: StreamSpec, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
    """Refuse, in one line naming the file and field, a stream that selects by a column or value the data lacks, or
    whose pretrain or an experience selects no case.

    Args:
        spec: the stream.
        columns: the data's grouping columns (``centre`` among them).
        rows: each case's grouping values ``{column: value}`` (the centre's included; an empty value left out): a
            case table's rows before any case is loaded, or :func:`case_groups` of loaded cases.

    Raises:
        UserError: If a selection names a grouping column the data lacks, a value no case has in that column, or
            a combination of values no case has.
    """
    selections = [("pretrain", spec.pretrain.centres, spec.pretrain.where)]
    selections += [(f"experiences[{i}]", e.centres, e.where) for i, e in enumerate(spec.experiences)]
    for field_name, centres, where in selections:
        for column, values in ((CENTRE_COLUMN, centres), *where):
            if column not in columns:
                raise UserError(f"{spec.path}: {field_name}.where.{column}: the data has no column {column!r}; "
                                f"its grouping columns are [{', '.join(sorted(columns))}]")
            present = sorted({row[column] for row in rows if column in row})
            missing = [value for value in values if value not in present]
            if missing:
                shown = "centres" if column == CENTRE_COLUMN else f"where.{column}"
                raise UserError(f"{spec.path}: {field_name}.{shown}: {missing[0]!r} is not a value of column "
                                f"{column!r} in the data; its values are [{', '.join(present)}]")
        if not any((not centres or row[CENTRE_COLUMN] in centres)
                   and all(row.get(column) in values for column, values in where) for row in rows):
            raise UserError(f"{spec.path}: {field_name}: selects no case: no case of the data has "
                            f"{selection_text(centres, where)}")
