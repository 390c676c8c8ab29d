"""The one exception type for user mistakes (bad names, bad files, bad data)."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for or supplied.

    The CLI prints ``error: <message>`` on one line and exits with code 2; the message must name
    the file/field at fault and what was expected.
    """
