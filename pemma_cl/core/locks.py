"""Locks on a results folder that several runs share (two people, a grid of jobs, every Ray worker of a cluster).

A lock is a file beside what it guards, held with :class:`filelock.FileLock` (``flock``; on NFS v4 the server
keeps it, on a file system without ``flock`` filelock falls back to its soft lock). While it is held the file
records its owner (host, pid, since when), so a process that finds it held can say whom it waits for, or name the
owner when it refuses to wait. The operating system releases the lock of a killed process; the record that
process left tells the next owner that it takes over a stale lock, and it says so.

Within one process a lock is re-entrant (one :class:`~filelock.FileLock` per file, shared by all threads).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from pemma_cl.core.errors import UserError

__all__ = ["held", "hold", "owner_of", "release"]

#: Every lock this process has used, by path (a lock object must live as long as it is held: filelock releases
#: the lock of an object that is collected).
_LOCKS: dict[str, FileLock] = {}
#: How long a process that finds a lock held waits for its owner's record: the owner writes it just after taking
#: the lock, so for a moment the file can still be empty.
RECORD_PATIENCE_S = 2.0
#: How a lock's owner is named when its file holds no record (yet).
UNRECORDED_OWNER = "another process"
#: The record the last physical acquisition in this thread replaced (``""``: the lock was released properly).
_replaced = threading.local()


def _record_owner(descriptor: int) -> None:
    """filelock's ``on_acquired``: keep the record a previous owner left, then write this process's own."""
    size = os.fstat(descriptor).st_size
    _replaced.record = os.pread(descriptor, size, 0).decode("utf-8", errors="replace") if size else ""
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(record).encode(), 0)


def _lock(path: Path) -> FileLock:
    key = os.path.abspath(path)
    if key not in _LOCKS:
        path.parent.mkdir(parents=True, exist_ok=True)
        _LOCKS[key] = FileLock(path, thread_local=False, on_acquired=_record_owner)
    return _LOCKS[key]


def _described(record: str) -> str:
    """``pid 123 on host node7 (since 2026-12-04 18:30:02 UTC)``, or what is known of an unreadable record."""
    try:
        owner = json.loads(record)
        return f"pid {owner['pid']} on host {owner['host']} (since {owner['since']})"
    except (ValueError, TypeError, KeyError):
        return "another process (its record is unreadable)" if record.strip() else UNRECORDED_OWNER


def owner_of(path: Path) -> str:
    """Who holds the lock ``path`` as its record says (see :func:`_described`)."""
    try:
        return _described(path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return UNRECORDED_OWNER


def _holder(path: Path) -> str:
    """:func:`owner_of` a lock just found held, waiting up to :data:`RECORD_PATIENCE_S` for the new owner's record."""
    deadline = time.monotonic() + RECORD_PATIENCE_S
    owner = owner_of(path)
    while owner == UNRECORDED_OWNER and time.monotonic() < deadline:
        time.sleep(0.02)
        owner = owner_of(path)
    return owner


def hold(path: Path, what: str, wait: bool = True) -> None:
    """Acquire the lock ``path``, which guards ``what`` (a phrase such as ``the partial folder 'x'``).

    Held by another process: with ``wait``, say so on one line of stderr naming the owner and wait; without, refuse.
    Taking over the lock of a process that stopped without releasing it is said on one line too.

    Raises:
        UserError: Without ``wait``, if another process holds the lock (naming it and what to do).
    """
    lock = _lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = _holder(path)
        if not wait:
            raise UserError(f"{what} is in use by {owner}; wait for that run to finish, or stop it, then try "
                            "again") from None
        _say(f"waiting: {what} is in use by {owner} (another run, or another worker of this one)")
        lock.acquire()
    if lock.lock_counter == 1 and getattr(_replaced, "record", ""):
        _say(f"{what}: its lock was left by {_described(_replaced.record)}, which stopped without releasing it; "
             "taking it over")
        _replaced.record = ""


def release(path: Path) -> None:
    """Release the lock ``path`` once (a re-entrant lock is freed by its last release), clearing its owner record."""
    lock = _lock(path)
    if lock.lock_counter == 1:
        os.truncate(path, 0)
    lock.release()


@contextmanager
def held(path: Path, what: str, wait: bool = True) -> Iterator[None]:
    """:func:`hold` the lock ``path`` for the body of a ``with`` block, then :func:`release` it."""
    hold(path, what, wait)
    try:
        yield
    finally:
        release(path)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
