"""``pemma-bench run --decide``: a run's seeds added look by look until its stream's primary contrasts are decided.

The looks, bounds and stopping rule are :mod:`pemma_cl.stats.sequential`'s, the look loop
:mod:`pemma_cl.report.decisions`', each contrast's level that of its planned trial in the alpha ledger
(:mod:`pemma_cl.report.ledger`): a run whose contrast has no planned trial for its seeds is refused. Every look runs
the units of its seeds in the run's one partial folder (finished units are kept, so an interrupted decide run
resumes), writes those seeds' files (``seeds/seed<S>/``, as in the published folder) and evaluates each open contrast
from them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pemma_cl.report.decisions import primary_contrasts, record_looks, replay_record
from pemma_cl.report.ledger import load_ledger
from pemma_cl.run.config import RunConfig
from pemma_cl.run.work import WorkFolder

__all__ = ["check_decidable", "ledger_levels", "replay_looks", "run_looks"]


def check_decidable(config: RunConfig) -> None:
    """Refuse a decide run of ``config`` before anything runs.

    Raises:
        UserError: If its stream has no primary contrast, ``--contrast`` names none of them, the run lacks a
            strategy one of those it decides compares, or one has no planned trial in the alpha ledger for the run's
            seeds.
    """
    ledger_levels(config)


def ledger_levels(config: RunConfig) -> dict[str, float]:
    """The level of each contrast a decide run of ``config`` decides: its planned trial's in the alpha ledger.

    Raises:
        UserError: as :func:`check_decidable`.
    """
    contrasts, _ = primary_contrasts(config.stream.name, config.strategies, config.decide_contrasts)
    return load_ledger().levels(contrasts, config.stream.name, config.seeds)


def run_looks(work: WorkFolder, run_units: Callable[[WorkFolder], None],
              write_seed: Callable[[WorkFolder, int], None]) -> tuple[WorkFolder, dict[str, Any]]:
    """Run ``work``'s seeds look by look and stop when every primary contrast is decided or the last look is done.

    Args:
        work: the decide run's partial folder (its configuration lists every seed it may run).
        run_units: runs the unfinished units of a folder restricted to some seeds (the run's executor).
        write_seed: writes one finished seed's files (``seeds/seed<S>/``) into a folder.

    Returns:
        The folder restricted to the seeds that ran, and the record of the looks for the manifest.
    """
    folders: list[WorkFolder] = []

    def run_seeds(count: int) -> tuple[int, ...]:
        folders.append(work.for_seeds(work.config.seeds[:count]))
        run_units(folders[-1])
        for seed in folders[-1].config.seeds:
            write_seed(folders[-1], seed)
        return tuple(folders[-1].config.seeds)

    config = work.config
    record = record_looks(config.stream.name, config.strategies, config.decide_contrasts, config.max_seeds, work.root,
                          run_seeds, _say, levels=ledger_levels(config))
    return folders[-1], record


def replay_looks(run_dir: Path, config: RunConfig) -> dict[str, Any]:
    """The record :func:`run_looks` gave, recomputed from a published run of ``config`` whose seeds all ran, under
    the rule its manifest's record names (none: the declared family, t-calibrated)."""
    try:
        record = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))["extra"]["decide"]
    except (OSError, ValueError, KeyError, TypeError):
        record = None
    return replay_record(run_dir, config.stream.name, config.strategies, config.decide_contrasts, config.seeds,
                         config.max_seeds, record)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
