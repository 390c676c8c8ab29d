"""``run --executor ray``: the units of a run as Ray tasks, on this machine or a Ray cluster.

The driver trains and caches each seed's shared bases once, then submits one task per unfinished (seed, strategy)
unit (:mod:`pemma_cl.unit_tasks`); it writes each unit to the run's partial folder as it arrives, so an
interrupted Ray run resumes like a local one.
The rows equal a local run's at the same thread count (Ray gives each task one CPU and sets ``OMP_NUM_THREADS``
to it; a local run uses every core unless ``OMP_NUM_THREADS`` says otherwise).

On a cluster, the workers need the suite installed and the results folder (its ``.cache`` of bases and the
partial folder's logs) on a shared file system; point the driver at the cluster with ``--ray-address``.
"""

from __future__ import annotations

from pemma_cl.errors import UserError
from pemma_cl.registry import StrategyEntry
from pemma_cl.unit_tasks import run_unit_task, unit_tasks
from pemma_cl.work import UnitResult, WorkFolder

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
        pending = {remote_unit.remote(*task): task[1:3] for task in unit_tasks(work, entries)}
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            seed, name = pending.pop(done)
            work.save_unit(seed, name, UnitResult.from_dict(ray.get(done)))
    finally:
        if started_here:
            ray.shutdown()
