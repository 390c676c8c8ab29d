"""The thread choice (pemma_cl.core.threads) on faked machines: the affinity, the cgroup files, /proc/stat and torch's
thread count are read through functions these tests replace."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pemma_cl.core import threads
from pemma_cl.core.errors import UserError

TICKS = 20  # clock ticks of each CPU between the two samples of /proc/stat (0.2 s at 100 Hz)


def proc_stat(busy: dict[int, float], cpus: int, later: bool) -> str:
    """/proc/stat's text: the first sample, or the one TICKS later where CPU i was busy ``busy.get(i, 0)`` of them."""
    lines = ["cpu  9 9 9 9 9 9 9 9 0 0"]
    for cpu in range(cpus):
        worked = round(TICKS * busy.get(cpu, 0.0)) if later else 0
        idle = TICKS - worked if later else 0
        lines.append(f"cpu{cpu} {1000 + worked} 0 300 {5000 + idle} 40 0 7 0 0 0")
    return "\n".join([*lines, "intr 1 2 3", "ctxt 99", ""])


@pytest.fixture
def machine(monkeypatch):
    """A faked machine: ``machine(cpus=2, busy={}, files={}, torch=None)`` sets the affinity to ``cpus`` CPUs, CPU i
    busy ``busy[i]`` of the sampled time, the cgroup files to ``files`` (path -> text), torch's thread count to
    ``torch`` (a count or a function giving it; default: ``cpus``)."""
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "SAMPLE_SECONDS", 0.0)

    def setup(cpus: int = 2, busy: dict[int, float] | None = None, files: dict[str, str] | None = None,
              torch: int | Callable[[], int] | None = None) -> None:
        samples = iter([proc_stat(busy or {}, cpus, later) for later in (False, True)])
        texts = dict(files or {})
        monkeypatch.setattr(threads, "_affinity", lambda: set(range(cpus)))
        monkeypatch.setattr(threads, "_torch_threads", torch if callable(torch) else lambda: torch or cpus)
        monkeypatch.setattr(threads, "_read_text",
                            lambda path: next(samples) if path == threads.PROC_STAT else texts.get(path))

    return setup


def test_two_idle_cpus_give_two_threads(machine) -> None:
    machine(cpus=2)
    assert threads.choose_threads() == 2


def test_a_quota_of_one_and_a_half_cpus_gives_one_thread(machine) -> None:
    machine(cpus=2, files={threads.CPU_MAX: "150000 100000\n"})
    assert threads.choose_threads() == 1


@pytest.mark.parametrize(("files", "quota"), [
    ({threads.CPU_MAX: "max 100000\n"}, None),
    ({threads.CPU_MAX: "150000 100000\n"}, 1.5),
    ({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "250000\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n"}, 2.5),
    ({}, None),
])
def test_the_cgroup_quota_is_read_from_v2_or_v1(machine, files, quota) -> None:
    machine(files=files)
    assert threads.cpu_quota() == quota


def test_an_affinity_of_four_with_two_units_at_once_gives_two_threads_each(machine) -> None:
    machine(cpus=4)
    assert threads.choose_threads(units=2) == 2


def test_one_of_two_cores_busy_gives_one_thread(machine) -> None:
    machine(cpus=2, busy={1: 1.0})
    assert threads.choose_threads() == 1


@pytest.mark.parametrize(("busy", "expected"), [(0.2, 2), (0.3, 1)])
def test_a_core_counts_as_free_when_three_quarters_of_it_is_idle(machine, busy, expected) -> None:
    machine(cpus=2, busy={0: busy})  # idle capacity 1.8 (two free cores) or 1.7 (one)
    assert threads.choose_threads() == expected


def test_the_thread_count_torch_was_given_is_a_ceiling(machine) -> None:
    machine(cpus=4, torch=1)  # OMP_NUM_THREADS=1, or torch.set_num_threads(1) by the caller
    assert threads.choose_threads() == 1


def test_without_proc_stat_the_usable_cpus_are_shared_out(machine, monkeypatch) -> None:
    machine(cpus=4)
    monkeypatch.setattr(threads, "_read_text", lambda path: None)
    assert threads.choose_threads(units=2) == 2


def test_pemma_threads_overrides_the_machine_and_is_shared_out(machine, monkeypatch) -> None:
    machine(cpus=2, busy={0: 1.0, 1: 1.0}, files={threads.CPU_MAX: "100000 100000"})
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.choose_threads() == 3
    assert threads.choose_threads(units=2) == 1


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5", "2 3"])
def test_a_malformed_pemma_threads_is_a_one_line_user_error(machine, monkeypatch, value) -> None:
    machine()
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(UserError) as error:
        threads.choose_threads()
    assert str(error.value) == (f"PEMMA_THREADS: expected a positive integer (threads in all, shared out among the "
                                f"units running at once), got {value!r}")


def test_a_run_goes_down_to_the_free_cores_and_back_up_to_its_budget(machine, monkeypatch) -> None:
    """Inside thread_budget (a run) the choice follows the free cores up to torch's count at the start, which is
    restored at the end; outside one, a count the caller set (here the suite's own 1) is the ceiling."""
    import torch

    torch_threads = [2]
    monkeypatch.setattr(torch, "set_num_threads", torch_threads.append)

    def current() -> int:
        return torch_threads[-1]

    machine(cpus=2, torch=current)
    with threads.thread_budget():
        machine(cpus=2, busy={1: 1.0}, torch=current)
        assert threads.fit_threads() == 1 and current() == 1
        machine(cpus=2, torch=current)
        assert threads.fit_threads() == 2 and current() == 2
        machine(cpus=2, busy={0: 1.0}, torch=current)
        assert threads.fit_threads() == 1
    assert current() == 2
    torch_threads.append(1)
    machine(cpus=2, torch=current)
    assert threads.fit_threads() == 1
