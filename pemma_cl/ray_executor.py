"""``run --executor ray``: the units of a run as Ray tasks, on this machine or a Ray cluster.

The driver (the ``pemma-bench`` process) trains and caches each seed's shared bases once, then submits one task
per unfinished (seed, strategy) unit. A task rebuilds the seed's data and stream from the run's configuration,
loads the bases from the cache, runs :func:`pemma_cl.runner.run_unit` and returns the unit's rows; the driver
writes each unit to the run's partial folder as it arrives, so an interrupted Ray run resumes like a local one.
The rows equal a local run's at the same thread count (Ray gives each task one CPU and sets ``OMP_NUM_THREADS``
to it; a local run uses every core unless ``OMP_NUM_THREADS`` says otherwise).

On a cluster, the workers need the suite installed and the results folder (its ``.cache`` of bases and the
partial folder's logs) on a shared file system; point the driver at the cluster with ``--ray-address``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pemma_cl.config import RunConfig
from pemma_cl.errors import UserError
from pemma_cl.registry import StrategyEntry, load_registry
from pemma_cl.training.bases import BASE_KINDS
from pemma_cl.work import UnitResult, WorkFolder

__all__ = ["run_units_on_ray"]


def _unit(config: dict[str, Any], seed: int, strategy: str, logs: str) -> dict[str, Any]:
    """One unit, inside a Ray worker."""
    from pemma_cl.runner import prepare_run, run_unit

    run = RunConfig.from_dict(config)
    entry = load_registry(run.plugin_files).get(strategy)
    return run_unit(run, prepare_run(run, seed), entry, Path(logs)).to_dict()


def _absolute(config: RunConfig) -> dict[str, Any]:
    """``config`` as a dict whose paths are absolute (a worker need not share the driver's working folder)."""
    raw = config.to_dict()
    raw["results_dir"] = str(Path(config.results_dir).resolve())
    raw["plugin_files"] = [str(Path(path).resolve()) for path in config.plugin_files]
    if config.cache is not None:
        raw["cache"] = str(Path(config.cache).resolve())
    if config.data.startswith("hecktor:"):
        raw["data"] = f"hecktor:{Path(config.data.partition(':')[2]).resolve()}"
    return raw


def run_units_on_ray(work: WorkFolder, entries: list[StrategyEntry], address: str | None) -> None:
    """Run every unfinished unit of ``work`` as a Ray task and save each one as it finishes.

    Raises:
        UserError: If Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise UserError("--executor ray: Ray is not installed; pip install 'pemma-cl[ray]'") from None
    from pemma_cl.runner import prepare_run

    config = work.config
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False)
    try:
        remote_unit = ray.remote(num_cpus=1)(_unit)
        payload, pending = _absolute(config), {}
        for seed in config.seeds:
            todo = [entry.name for entry in entries if not work.is_done(seed, entry.name)]
            if not todo:
                continue
            inputs = prepare_run(config, seed)
            for kind in BASE_KINDS:  # trained (and cached) once here, loaded by every task
                inputs.ctx_settings["bases"].get(kind)
            work.save_data(seed, inputs.facts(config.eval_on))
            for name in todo:
                task = remote_unit.remote(payload, seed, name, str(work.logs_dir(seed, name).resolve()))
                pending[task] = (seed, name)
        while pending:
            [done], _ = ray.wait(list(pending), num_returns=1)
            seed, name = pending.pop(done)
            work.save_unit(seed, name, UnitResult.from_dict(ray.get(done)))
    finally:
        if started_here:
            ray.shutdown()
