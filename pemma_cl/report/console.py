"""What ``run`` and ``report`` print on the console: the summary's tables and the claims a run can value, laid
out for the terminal's width (:func:`pemma_cl.core.terminal.console_width`)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from rich.console import Console

from pemma_cl.core.terminal import console_width
from pemma_cl.report.claim_rows import NOT_TESTED, ClaimRow
from pemma_cl.report.claims import claims_console_table
from pemma_cl.report.seeds import render_console_table

#: The width of ``--wide``: every column of summary.md (about 215 columns).
WIDE_CONSOLE = 220


def print_summary(runs: Sequence[tuple[str, Mapping[str, Any]]], claims: Sequence[ClaimRow] = (),
                  claims_where: str = "claims.md", wide: bool = False, caution: str | None = None,
                  file: TextIO | None = None) -> Console:
    """Print the summary tables of ``runs`` (name, summary) and the primary claims they value.

    Args:
        runs: the runs, each with its summary (``summary.json``).
        claims: the claims table's rows; only the primary contrasts the runs value are printed (those "not tested
            here" are counted in the caption, every row is in ``claims_where``).
        claims_where: where every row of the claims table is (the run's claims.md).
        wide: every column of summary.md instead of the terminal-width view.
        caution: what the numbers cannot be read as (a preset's, :data:`~pemma_cl.models.presets.PRESET_CAUTIONS`),
            printed under the tables.
        file: where to print (standard output by default).

    Returns:
        The console printed to (for the caller's further lines).
    """
    console = Console(file=file or sys.stdout, width=WIDE_CONSOLE if wide else console_width())
    for table in render_console_table(runs, wide=wide, width=None if wide else console.width):
        console.print(table)
    if caution:
        console.print(f"Note: {caution}.", style="bold")
    valued = [row for row in claims if row.verdict != NOT_TESTED]
    if any(row.contrast for row in valued):
        console.print(claims_console_table(valued, claims_where, untested=len(claims) - len(valued)))
    elif claims:
        console.print(f"No primary contrast is valued by this run (the claims table: {claims_where}).")
    return console
