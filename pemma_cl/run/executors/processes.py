"""``run --jobs N`` (N > 1): N units of a run at a time on this machine, each in a worker process of its own.

The driver prepares every seed (bases trained and cached once), then hands out the units
(:mod:`pemma_cl.run.tasks`); each finished unit is written to the run's partial folder as it arrives, so an
interrupted run resumes as a sequential one does. Every worker runs at the threads the driver chooses for N units at
once, with the workers started and idle (:func:`pemma_cl.core.threads.choose_threads`: the usable CPUs, never more
than the free cores, divided by N, at least one): CPU float sums depend on the thread count, so the rows equal a
sequential run's at that many threads, whatever order the units finish in; each unit records its count. Ctrl-C
reaches the driver, which stops the workers; units already written are kept.
"""

from __future__ import annotations

import queue
import signal

from pemma_cl.core.threads import choose_threads
from pemma_cl.run.executors.fork_server import worker_context
from pemma_cl.run.tasks import run_unit_task, unit_tasks
from pemma_cl.run.work import UnitResult, WorkFolder
from pemma_cl.strategy_api.registry import StrategyEntry

__all__ = ["run_units_in_processes"]


def _start_worker() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the workers


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

    # The pool returns once its workers exist: the fork server has finished importing, the CPUs it used are free.
    pool = worker_context().Pool(jobs, initializer=_start_worker)
    try:
        tasks = list(unit_tasks(work, entries))
        threads = choose_threads(jobs)
        for config, seed, name, logs in tasks:
            pool.apply_async(run_unit_task, (config, seed, name, logs, threads),
                             callback=lambda result, key=(seed, name): save(key, result),
                             error_callback=outcomes.put)
        for _ in tasks:
            error = outcomes.get()
            if error is not None:
                raise error
    finally:
        pool.terminate()
        pool.join()
