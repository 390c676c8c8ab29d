"""Intra-op threads that fit the machine: the CPUs this process may use, shared out among the units running at once,
never more than the cores that are free now.

On a shared machine, more OpenMP threads than free cores make every step several times slower: the threads spin
waiting for the one that lost its core (measured 7.8x for a tiny training step with one of two cores busy). So the
suite sizes torch's intra-op pool, and the OpenMP and BLAS pools :mod:`threadpoolctl` reaches, from

* the CPUs the process may run on (``os.sched_getaffinity``), bounded by the cgroup's CPU quota (cgroup v2
  ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``; 1.5 CPUs of quota count as one) and by torch's thread
  count: its own default, which follows ``OMP_NUM_THREADS``, or what the caller set with ``torch.set_num_threads``
  (inside :func:`thread_budget`, the count when the block began, so that a long run can go back up after a busy
  spell);
* the cores free now: the idle share of those CPUs over :data:`SAMPLE_SECONDS` of ``/proc/stat``, a core counting
  when at least :data:`FREE_SHARE` of it was idle;

``min(CPUs, free cores) // units``, at least one. ``PEMMA_THREADS=N`` replaces the measurement: N threads in all,
``N // units`` (at least one) for each of ``units`` processes; a value that is not a positive integer is a user
error. Where a file cannot be read (no ``/proc`` outside Linux), that bound is left out.

CPU float sums depend on the thread count: a run records the threads each unit used (its manifest).
This module imports neither torch nor threadpoolctl until threads are applied (the command line imports it early).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import time
from collections.abc import Iterator

from pemma_cl.core.errors import UserError

__all__ = ["ENV", "apply_threads", "choose_threads", "cpu_quota", "fit_threads", "free_cores", "thread_budget",
           "usable_cpus"]

#: The override: threads in all, shared out among the units running at once.
ENV = "PEMMA_THREADS"
#: How long the idle time of the CPUs is sampled.
SAMPLE_SECONDS = 0.2
#: The idle share of a core from which it counts as free.
FREE_SHARE = 0.75
#: cgroup v2's quota file, then cgroup v1's quota and period files (as a container sees its own cgroup).
CPU_MAX = "/sys/fs/cgroup/cpu.max"
CFS_FILES: tuple[tuple[str, str], ...] = (
    ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
    ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us"),
)
PROC_STAT = "/proc/stat"

#: Inside :func:`thread_budget`: torch's thread count when the block began.
_BUDGET: contextvars.ContextVar[int | None] = contextvars.ContextVar("pemma_cl_thread_budget", default=None)


def _read_text(path: str) -> str | None:
    """The text of ``path``, or None when it cannot be read."""
    try:
        with open(path, encoding="ascii") as file:
            return file.read()
    except (OSError, UnicodeDecodeError):
        return None


def _affinity() -> set[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def cpu_quota() -> float | None:
    """The cgroup's CPU quota in CPUs (``1.5``), or None when there is none."""
    text = _read_text(CPU_MAX)
    if text is not None:
        fields = text.split()
        if len(fields) == 2 and fields[0] != "max":
            return _ratio(fields[0], fields[1])
        return None
    for quota_file, period_file in CFS_FILES:
        quota, period = _read_text(quota_file), _read_text(period_file)
        if quota is not None and period is not None:
            return _ratio(quota.strip(), period.strip())
    return None


def _ratio(quota: str, period: str) -> float | None:
    """``quota / period``, or None for no quota (v1 writes ``-1``) or text that is not a pair of numbers."""
    try:
        value = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity, bounded by the cgroup quota (whole CPUs) and by the thread count
    torch had before the suite set one (see the module docstring); at least one."""
    cpus = len(_affinity())
    quota = cpu_quota()
    if quota is not None:
        cpus = min(cpus, math.floor(quota))
    budget = _BUDGET.get()
    return max(1, min(cpus, _torch_threads() if budget is None else budget))


def _idle_and_total(text: str, cpus: set[int]) -> dict[int, tuple[int, int]]:
    """Per CPU of ``cpus``, its idle and total time (clock ticks) in ``/proc/stat``'s text (``cpuN user nice system
    idle iowait irq softirq steal ...``; guest time is already in user time)."""
    times = {}
    for line in text.splitlines():
        name, *fields = line.split() or [""]
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [int(field) for field in fields[:8]]
            times[int(name[3:])] = (sum(ticks[3:5]), sum(ticks))
    return times


def free_cores(cpus: set[int]) -> int | None:
    """How many of ``cpus`` are free now: those idle at least :data:`FREE_SHARE` of the time, counted over
    :data:`SAMPLE_SECONDS` (the idle shares summed, so two half-busy cores are one busy core); None without
    ``/proc/stat``."""
    before = _read_text(PROC_STAT)
    time.sleep(SAMPLE_SECONDS)
    after = _read_text(PROC_STAT)
    if before is None or after is None:
        return None
    first, second = _idle_and_total(before, cpus), _idle_and_total(after, cpus)
    idle = 0.0
    for cpu in first.keys() & second.keys():
        total = second[cpu][1] - first[cpu][1]
        idle += (second[cpu][0] - first[cpu][0]) / total if total > 0 else 1.0
    return math.floor(idle + 1 - FREE_SHARE) if first.keys() & second.keys() else None


def _override() -> int | None:
    """``PEMMA_THREADS`` as a positive integer, None when unset or empty.

    Raises:
        UserError: When it is set to anything but a positive integer.
    """
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{ENV}: expected a positive integer (threads in all, shared out among the units running "
                        f"at once), got {text!r}")
    return int(text)


def choose_threads(units: int = 1) -> int:
    """Threads for each of ``units`` processes running at once (see the module docstring).

    Raises:
        UserError: When ``PEMMA_THREADS`` is not a positive integer.
    """
    threads = _override()
    if threads is None:
        threads = usable_cpus()
        free = free_cores(_affinity())
        if free is not None:
            threads = min(threads, free)
    return max(1, threads // units)


def apply_threads(threads: int) -> None:
    """Give torch's intra-op pool and the OpenMP and BLAS pools threadpoolctl finds ``threads`` threads."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def fit_threads(units: int = 1) -> int:
    """Choose (:func:`choose_threads`) and apply (:func:`apply_threads`) this process's threads; returns them."""
    threads = choose_threads(units)
    apply_threads(threads)
    return threads


@contextlib.contextmanager
def thread_budget() -> Iterator[None]:
    """A block (a run) whose thread choices may use up to torch's thread count as it begins, going down on a busy
    machine and back up when cores are free again; on the way out, torch's and the pools' counts are restored."""
    import torch
    from threadpoolctl import threadpool_limits

    before = _torch_threads()
    token = _BUDGET.set(before)
    with threadpool_limits(limits=None):  # restores the OpenMP and BLAS pools' counts on exit
        try:
            yield
        finally:
            _BUDGET.reset(token)
            torch.set_num_threads(before)
