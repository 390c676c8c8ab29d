"""What every executor of a run's units shares: the driver prepares each seed once, a worker runs one unit.

The driver (the ``pemma-bench`` process) trains and caches each seed's shared bases, writes the seed's data facts,
and hands out one task per unfinished (seed, strategy) unit; a worker (another process on this machine, or a Ray
worker) rebuilds the seed's data and stream from the run's configuration, loads the bases from the cache and runs
:func:`pemma_cl.run.benchmark.run_unit`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pemma_cl.run.config import RunConfig
from pemma_cl.run.work import WorkFolder
from pemma_cl.strategy_api.registry import StrategyEntry, load_registry
from pemma_cl.training.bases import BASE_KINDS

#: A unit as a task: (the run's configuration as a portable dict, seed, strategy name, logs folder).
UnitTask = tuple[dict[str, Any], int, str, str]


#: The inputs a worker process last prepared, by (configuration, seed): the next unit of the same seed in the same
#: worker reuses them (data, stream, loaded bases), as the sequential executor does.
_PREPARED: dict[tuple[str, int], Any] = {}


def run_unit_task(config: dict[str, Any], seed: int, strategy: str, logs: str) -> dict[str, Any]:
    """One unit, inside a worker: its :class:`pemma_cl.run.work.UnitResult` as a dict."""
    from pemma_cl.run.unit import prepare_run, run_unit

    run = RunConfig.from_dict(config)
    key = (json.dumps(config, sort_keys=True), seed)
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = prepare_run(run, seed)
    entry = load_registry(run.plugin_files).get(strategy)
    return run_unit(run, _PREPARED[key], entry, Path(logs)).to_dict()


def portable_config(config: RunConfig) -> dict[str, Any]:
    """``config`` as a dict whose paths are absolute (a worker need not share the driver's working folder)."""
    raw = config.to_dict()
    raw["results_dir"] = str(Path(config.results_dir).resolve())
    raw["plugin_files"] = [str(Path(path).resolve()) for path in config.plugin_files]
    if config.cache is not None:
        raw["cache"] = str(Path(config.cache).resolve())
    if config.data.startswith("hecktor:"):
        raw["data"] = f"hecktor:{Path(config.data.partition(':')[2]).resolve()}"
    return raw


def unit_tasks(work: WorkFolder, entries: list[StrategyEntry]) -> Iterator[UnitTask]:
    """The unfinished units of ``work`` as tasks, seed by seed; before a seed's first task, its bases are trained
    (or loaded) here and its data facts written, so that workers only load them."""
    from pemma_cl.run.unit import prepare_run

    config = work.config
    payload = portable_config(config)
    for seed in config.seeds:
        todo = [entry.name for entry in entries if not work.is_done(seed, entry.name)]
        if not todo:
            continue
        inputs = prepare_run(config, seed)
        for kind in BASE_KINDS:
            inputs.ctx_settings["bases"].get(kind)
        work.save_data(seed, inputs.facts(config.eval_on))
        for name in todo:
            yield payload, seed, name, str(work.logs_dir(seed, name).resolve())
