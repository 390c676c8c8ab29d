"""``run --executor ray``: the units of a run as Ray tasks, on this machine or a Ray cluster.

The driver goes seed by seed: it trains and caches the seed's shared bases once, submits one task per unfinished
(seed, strategy) unit (:mod:`pemma_cl.run.tasks`), and writes every unit already finished to the run's partial
folder before it trains the next seed's bases; then it writes the rest as they arrive. An interrupted Ray run
resumes like a local one.
The rows equal a local run's at the same thread count: Ray gives each task one CPU and sets ``OMP_NUM_THREADS`` to
it, and a task sizes its threads within that to the cores free on its node (:mod:`pemma_cl.core.threads`); a local
run sizes its own to the machine; every unit records its count.

On a cluster, the workers need the suite installed and the results folder (its ``.cache`` of bases and the
partial folder's logs) on a shared file system; point the driver at the cluster with ``--ray-address``. Runs
and workers sharing that folder coordinate through its locks (``docs/guide/shared-results.md``).
"""

from __future__ import annotations

from pemma_cl.core.errors import UserError
from pemma_cl.run.tasks import run_unit_task, unit_tasks
from pemma_cl.run.work import UnitResult, WorkFolder
from pemma_cl.strategy_api.registry import StrategyEntry

__all__ = ["run_units_on_ray"]


def run_units_on_ray(work: WorkFolder, entries: list[StrategyEntry], address: str | None) -> None:
    """Run every unfinished unit of ``work`` as a Ray task and save each one as it finishes.

    Raises:
        UserError: If Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray: Ray is not installed; pip install 'pemma-cl[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False)
    try:
        remote_unit = ray.remote(num_cpus=1)(run_unit_task)
        pending: dict = {}
        for task in unit_tasks(work, entries):  # trains each seed's bases before yielding its first task
            pending[remote_unit.remote(*task)] = task[1:3]
            _save_finished(ray, pending, work, wait=False)  # kept before the next seed's bases are trained
        while pending:
            _save_finished(ray, pending, work, wait=True)
    finally:
        if started_here:
            ray.shutdown()


def _save_finished(ray, pending: dict, work: WorkFolder, wait: bool) -> None:
    """Save the finished tasks of ``pending`` (Ray object ref -> (seed, strategy)) and drop them from it: with
    ``wait``, at least one (blocking until it finishes), else only those already finished."""
    done, _ = ray.wait(list(pending), num_returns=1 if wait else len(pending), timeout=None if wait else 0)
    for ref in done:
        seed, name = pending.pop(ref)
        work.save_unit(seed, name, UnitResult.from_dict(ray.get(ref)))
