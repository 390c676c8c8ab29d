"""``pemma-bench run --decide``: a run's seeds added look by look until its stream's primary contrasts are decided.

The looks, bounds and stopping rule are :mod:`pemma_cl.evaluation.sequential`'s; the primary contrasts and each seed's value
of one are :mod:`pemma_cl.report.contrasts`'. Every look runs the units of its seeds in the run's one partial folder
(finished units are kept, so an interrupted decide run resumes), writes those seeds' files (``seeds/seed<S>/``, as
in the published folder) and evaluates each open contrast from them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pemma_cl.evaluation.sequential import HELD, NOT_HELD, ContrastLook, SequentialPlan, stream_contrasts
from pemma_cl.report import contrasts as declared
from pemma_cl.run.config import RunConfig
from pemma_cl.run.work import WorkFolder

__all__ = ["primary_contrasts", "render_decisions", "replay_looks", "run_looks"]


def primary_contrasts(config: RunConfig) -> tuple[list, int]:
    """The primary contrasts (``benchmarks/contrasts/primary.yaml``) a decide run of ``config`` decides, and how
    many are declared in all (Holm's family, as in the claims table).

    Raises:
        UserError: If the stream has none, or the run lacks a strategy one of them compares.
    """
    every = declared.load_primary_contrasts()
    return stream_contrasts(every, config.stream.name, config.strategies), len(every)


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

    record = _looks(work.config, work.root, run_seeds)
    return folders[-1], record


def replay_looks(run_dir: Path, config: RunConfig) -> dict[str, Any]:
    """The record :func:`run_looks` gives, recomputed from a published run of ``config`` whose seeds all ran (a
    decide run, or any run of enough seeds of a stream with primary contrasts): the same plan, values and rule."""
    return _looks(config, run_dir, lambda count: tuple(config.seeds[:count]))


def _looks(config: RunConfig, folder: Path, seeds_at: Callable[[int], tuple[int, ...]]) -> dict[str, Any]:
    """The look loop: at each look, ``seeds_at(count)`` makes the look's seeds' files in ``folder`` and names them;
    each open contrast is valued from them and the plan decides what it can."""
    contrasts, family = primary_contrasts(config)
    plan = SequentialPlan.for_max_seeds(config.max_seeds, untested=family - len(contrasts))
    _say(f"--decide: looks at {', '.join(map(str, plan.looks))} seeds for {len(contrasts)} primary contrast(s): "
         f"{', '.join(c.name for c in contrasts)} (Holm across the {family} declared)")
    decided: dict[str, str] = {}
    looks: list[dict[str, Any]] = []
    for index, count in enumerate(plan.looks):
        seeds = seeds_at(count)
        values = {c.name: _values(declared.seed_values(folder, c, seeds), seeds)
                  for c in contrasts if c.name not in decided}
        rows = plan.look(index, values, contrasts, decided)
        looks.append({"look": index + 1, "seeds": count, "contrasts": [row.to_dict() for row in rows]})
        for row in rows:
            _say(f"look {index + 1} ({count} seeds): {describe(row)}")
        decided.update({row.contrast: row.decision for row in rows if row.decision in (HELD, NOT_HELD)})
        if len(decided) == len(contrasts):
            stopped = f"every primary contrast decided at look {index + 1} ({count} seeds)"
            break
    else:
        open_ = [c.name for c in contrasts if c.name not in decided]
        stopped = f"reached --max-seeds {config.max_seeds} with {', '.join(open_)} undecided"
    _say(f"--decide: {stopped}")
    return {"alpha": plan.alpha, "max_seeds": config.max_seeds, "looks": list(plan.looks),
            "spending": "Lan-DeMets O'Brien-Fleming-type, two-sided",
            "statistic": "paired t over seeds, mapped to the z bound by its p-value",
            "multiplicity": f"Holm across the {family} declared primary contrasts at each look (the "
                            f"{plan.untested} of other streams counted as never rejected)",
            "family": family,
            "history": looks, "decisions": {c.name: decided.get(c.name, "undecided") for c in contrasts},
            "seeds_run": len(seeds), "stopped": stopped}


def render_decisions(record: dict[str, Any]) -> str:
    """The console's account of a decide run: each primary contrast's decision at its last look, and why it
    stopped."""
    lines = [f"Primary contrasts decided by --decide (looks at {', '.join(map(str, record['looks']))} seeds, "
             f"familywise alpha {record['alpha']}): {record['stopped']}"]
    last = {row["contrast"]: (look["look"], row) for look in record["history"] for row in look["contrasts"]}
    for name, (index, row) in last.items():
        lines.append(f"  look {index} ({row['n']} seeds): {describe(ContrastLook(**row))}")
    return "\n".join(lines)


def describe(row: ContrastLook) -> str:
    """One line of a contrast at a look: its mean and repeated confidence interval, bound and decision."""
    low, high = row.interval
    return (f"{row.contrast}: mean {row.mean:+.4f} (RCI {low:+.4f} .. {high:+.4f}), t {row.t:+.2f} against "
            f"+-{row.t_bound:.2f} (p {row.p:.2g}; decides at p <= {row.p_bound:.2g}, "
            f"local alpha {row.local_alpha:.3g}): {row.decision}")


def _values(by_seed: Mapping[int, float], seeds: tuple[int, ...]) -> list[float]:
    """The values of ``seeds`` (the look's), in seed order."""
    return [by_seed[seed] for seed in seeds if seed in by_seed]


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
