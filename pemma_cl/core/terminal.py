"""The width the console output is laid out for: the terminal's, within bounds a table can be read at."""

from __future__ import annotations

import shutil

#: The narrowest and widest layouts: below 80 columns tables stop being readable, above 200 lines are too long
#: to follow.
NARROWEST, WIDEST = 80, 200
#: The width assumed when there is no terminal (output to a file or a pipe, with no ``COLUMNS`` set).
NO_TERMINAL = 100


def console_width() -> int:
    """The terminal's columns (``COLUMNS`` when set, as :func:`shutil.get_terminal_size` reads it), clamped to
    [:data:`NARROWEST`, :data:`WIDEST`]."""
    columns = shutil.get_terminal_size((NO_TERMINAL, 24)).columns
    return max(NARROWEST, min(WIDEST, columns))

