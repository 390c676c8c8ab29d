"""Locks of a shared results folder: waiting for another process, refusing to, taking over a killed one's lock."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.core.locks import held, hold, owner_of, release

#: A process that holds the lock argv[1] for argv[2] seconds (then releases it), saying "held" once it has it.
HOLDER = """\
import sys, time
from pathlib import Path
from pemma_cl.core.locks import held
with held(Path(sys.argv[1]), "the test lock"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


#: A holder that takes the lock argv[1] and writes its owner record only half a second later (the moment between
#: taking a lock and recording it, stretched).
LATE_HOLDER = """\
import json, os, socket, sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("held", flush=True)
time.sleep(0.5)
record = open(sys.argv[1], "w")
record.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": "just now"}))
record.close()
time.sleep(float(sys.argv[2]))
"""


def start_holder(lock: Path, seconds: float, script: str = HOLDER) -> subprocess.Popen:
    lock.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", script, str(lock), str(seconds)], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline() == "held\n"
    return process


def test_a_lock_held_elsewhere_is_refused_or_waited_for_naming_its_owner(tmp_path: Path, capsys) -> None:
    lock = tmp_path / "locks" / "run.lock"
    holder = start_holder(lock, 3)
    owner = f"pid {holder.pid} on host {socket.gethostname()} (since "
    assert owner_of(lock).startswith(owner)
    with pytest.raises(UserError, match="the test lock is in use by pid") as refused:
        hold(lock, "the test lock", wait=False)
    assert owner in str(refused.value) and str(refused.value).endswith("wait for that run to finish, or stop it, "
                                                                       "then try again")
    with held(lock, "the test lock"):
        assert owner_of(lock).startswith(f"pid {os.getpid()} on host")
    assert holder.wait() == 0
    said = capsys.readouterr().err.splitlines()
    assert len(said) == 1 and said[0].startswith(f"waiting: the test lock is in use by {owner}")
    assert lock.read_text() == ""  # released properly: no owner left on record


def test_a_lock_found_held_before_its_owner_recorded_itself_still_names_the_owner(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    holder = start_holder(lock, 3, LATE_HOLDER)
    try:
        assert lock.read_text() == ""  # held, not yet recorded
        with pytest.raises(UserError, match=f"the test lock is in use by pid {holder.pid} on host "):
            hold(lock, "the test lock", wait=False)
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_process_is_taken_over(tmp_path: Path, capsys) -> None:
    lock = tmp_path / "run.lock"
    holder = start_holder(lock, 60)
    holder.kill()
    holder.wait()
    hold(lock, "the test lock")  # at once: the operating system released the killed process's lock
    try:
        [said] = capsys.readouterr().err.splitlines()
        assert said.startswith(f"the test lock: its lock was left by pid {holder.pid} on host {socket.gethostname()} "
                               "(since ")
        assert said.endswith("), which stopped without releasing it; taking it over")
    finally:
        release(lock)


def test_a_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    with held(lock, "outer"), held(lock, "inner"):
        pass
    with held(lock, "again"):
        assert owner_of(lock).startswith("pid ")
    assert lock.read_text() == ""
