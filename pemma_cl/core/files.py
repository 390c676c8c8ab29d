"""Files written whole or not at all, safe when several processes share a folder."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from pemma_cl.core.errors import UserError


def write_atomically(path: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write ``path`` through ``write(file)`` under a temporary name unique to this writer (host, pid, a random
    token), then rename it into place.

    Two processes writing the same file (two runs sharing a results folder) never write into one temporary file,
    and a reader sees the old file or the new one, never half of one.

    Raises:
        UserError: naming ``path`` and the operating system's reason (a full disk, a quota, a read-only folder);
            the temporary file is removed.
    """
    temporary = path.with_name(f".{path.name}.{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        with open(temporary, "xb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UserError(f"'{path}': cannot write it: {exc.strerror or exc}") from exc
        raise
    return path
