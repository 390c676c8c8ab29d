"""The one exception type for user mistakes (bad names, bad files, bad data)."""

from __future__ import annotations

from collections.abc import Sequence


class UserError(Exception):
    """A mistake in what the user asked for or supplied.

    The CLI prints ``error: <message>`` on one line and exits with code 2; the message must name
    the file/field at fault and what was expected. ``details`` are extra lines printed after it, one
    per item (e.g. one per bad case of a data folder).

    Args:
        message: the one-line message.
        details: further lines, each complete on its own.
    """

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.details = tuple(details)
