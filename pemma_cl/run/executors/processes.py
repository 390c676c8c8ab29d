"""``run --jobs N`` (N > 1): N units of a run at a time on this machine, each in a worker process of its own.

The driver prepares every seed (bases trained and cached once), then hands out the units
(:mod:`pemma_cl.run.tasks`); each finished unit is written to the run's partial folder as it arrives, so an
interrupted run resumes as a sequential one does. Every worker runs with the driver's thread count divided by N
(at least one): CPU float sums depend on the thread count, so the rows equal a sequential run's at that many
threads, whatever order the units finish in. Ctrl-C reaches the driver, which stops the workers; units already written are kept.
"""

from __future__ import annotations

import os
import queue
import signal

from pemma_cl.run.executors.fork_server import worker_context
from pemma_cl.run.tasks import run_unit_task, unit_tasks
from pemma_cl.run.work import UnitResult, WorkFolder
from pemma_cl.strategy_api.registry import StrategyEntry

__all__ = ["threads_per_unit", "run_units_in_processes"]


def threads_per_unit(jobs: int) -> int:
    """Threads each of ``jobs`` workers gets: this process's torch thread count (``OMP_NUM_THREADS`` or the cores)
    shared out, at least one."""
    import torch

    return max(1, torch.get_num_threads() // jobs)


def _start_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the workers
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)
    import pemma_cl.run.benchmark  # noqa: F401  (already imported by the fork server; a spawned worker imports it now)


def run_units_in_processes(work: WorkFolder, entries: list[StrategyEntry], jobs: int) -> None:
    """Run every unfinished unit of ``work`` in ``jobs`` worker processes and save each one as it finishes.

    Every seed's bases are trained before the first unit starts, so that no unit shares the CPU with base training
    (its train seconds are a cost the summary compares).

    Raises:
        Whatever a unit raised (a :class:`pemma_cl.core.errors.UserError` stays one), after stopping the workers.
    """
    outcomes: queue.SimpleQueue = queue.SimpleQueue()  # one per unit: None (saved) or the exception it raised

    def save(key: tuple[int, str], result: dict) -> None:  # runs in the pool's result thread
        try:
            work.save_unit(*key, UnitResult.from_dict(result))
            outcomes.put(None)
        except BaseException as exc:  # a full disk: raised by the driver below
            outcomes.put(exc)

    pool = worker_context().Pool(jobs, initializer=_start_worker, initargs=(threads_per_unit(jobs),))
    try:
        tasks = list(unit_tasks(work, entries))
        for config, seed, name, logs in tasks:
            pool.apply_async(run_unit_task, (config, seed, name, logs),
                             callback=lambda result, key=(seed, name): save(key, result),
                             error_callback=outcomes.put)
        for _ in tasks:
            error = outcomes.get()
            if error is not None:
                raise error
    finally:
        pool.terminate()
        pool.join()
