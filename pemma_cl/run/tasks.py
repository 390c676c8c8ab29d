"""What every executor of a run's units shares: the driver prepares each seed once, a worker runs one unit.

The driver (the ``pemma-bench`` process) trains and caches each seed's shared bases, writes the seed's data facts,
and hands out one task per unfinished (seed, strategy) unit; a worker (another process on this machine, or a Ray
worker) rebuilds the seed's data and stream from the run's configuration, loads the bases from the cache and runs
:func:`pemma_cl.run.unit.run_unit`. Both size their threads to the machine (:mod:`pemma_cl.core.threads`): the driver
before each seed's bases, a worker with the count the driver chose for it or, on Ray, its own choice.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pemma_cl.core.threads import apply_threads, fit_threads
from pemma_cl.run.config import RunConfig
from pemma_cl.run.unit import prepare_run, run_unit
from pemma_cl.run.work import WorkFolder
from pemma_cl.strategy_api.registry import StrategyEntry, load_registry
from pemma_cl.training.bases import BASE_KINDS

#: A unit as a task: (the run's configuration as a portable dict, seed, strategy name, logs folder).
UnitTask = tuple[dict[str, Any], int, str, str]


#: The inputs a worker process last prepared, by (configuration, seed): the next unit of the same seed in the same
#: worker reuses them (data, stream, loaded bases), as the sequential executor does.
_PREPARED: dict[tuple[str, int], Any] = {}


def run_unit_task(config: dict[str, Any], seed: int, strategy: str, logs: str,
                  threads: int | None = None) -> dict[str, Any]:
    """One unit, inside a worker, at ``threads`` threads (None: as many as fit the machine now, for one unit):
    its :class:`pemma_cl.run.work.UnitResult` as a dict."""
    if threads is None:
        fit_threads()
    else:
        apply_threads(threads)
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
    if config.data.startswith(("hecktor:", "nnunet:")):
        kind, _, folder = config.data.partition(":")
        raw["data"] = f"{kind}:{Path(folder).resolve()}"
    if config.case_table is not None:
        raw["case_table"] = str(Path(config.case_table).resolve())
    return raw


def unit_tasks(work: WorkFolder, entries: list[StrategyEntry]) -> Iterator[UnitTask]:
    """The unfinished units of ``work`` as tasks, seed by seed; before a seed's first task, its bases are trained
    (or loaded) here, at the threads that fit the machine then, and its data facts written, so that workers only
    load them."""
    config = work.config
    payload = portable_config(config)
    for seed in config.seeds:
        todo = [entry.name for entry in entries if not work.is_done(seed, entry.name)]
        if not todo:
            continue
        fit_threads()
        inputs = prepare_run(config, seed)
        for kind in BASE_KINDS:
            inputs.ctx_settings["bases"].get(kind)
        work.save_data(seed, inputs.facts(config.eval_on))
        for name in todo:
            yield payload, seed, name, str(work.logs_dir(seed, name).resolve())
