"""The looks of a ``--decide`` run over a folder of seeds' files: each primary contrast valued at each look and decided
by the group-sequential plan (:mod:`pemma_cl.evaluation.sequential`).

One loop serves the run itself (:mod:`pemma_cl.run.decide`, which makes each look's seeds before it is valued) and the
claims table, which replays it from a published decide run's per-case rows (so a decide run's verdicts are always the
plan's under the current rule, never a fixed-sample test of seeds whose number the plan chose).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pemma_cl.evaluation.sequential import HELD, NOT_HELD, ContrastLook, SequentialPlan, stream_contrasts
from pemma_cl.report import contrasts as declared

__all__ = ["describe", "primary_contrasts", "record_looks", "render_decisions", "replay_record"]


def primary_contrasts(stream: str, strategies: Sequence[str], names: Sequence[str] = (),
                      family: int | None = None) -> tuple[list, int]:
    """The primary contrasts (``benchmarks/contrasts/primary.yaml``) a decide run of ``stream`` with ``strategies``
    decides (those in ``names``, or all of the stream's), and how many are declared in all (Holm's family, as in the
    claims table; ``family``: the size a stored run's record declared, which a replay keeps).

    Raises:
        UserError: If the stream has none, a name is not one of them, or the run lacks a strategy one compares.
    """
    every = declared.load_primary_contrasts()
    return stream_contrasts(every, stream, strategies, names), family or len(every)


def record_looks(stream: str, strategies: Sequence[str], names: Sequence[str], max_seeds: int, folder: Path,
                 seeds_at: Callable[[int], tuple[int, ...]], say: Callable[[str], None] = lambda text: None,
                 family: int | None = None) -> dict[str, Any]:
    """The look loop over the contrasts :func:`primary_contrasts` gives for ``stream``, ``strategies`` and ``names``:
    at each look, ``seeds_at(count)`` makes the look's seeds' files in ``folder`` (if need be) and names them; each open contrast is valued from them and the plan decides what it can. Stops when every contrast is
    decided or at the last look; ``say`` hears a line per look and contrast.

    Returns:
        The record a decide run keeps in its manifest (``extra.decide``).
    """
    contrasts, family = primary_contrasts(stream, strategies, names, family)
    plan = SequentialPlan.for_max_seeds(max_seeds, untested=family - len(contrasts))
    say(f"--decide: looks at {', '.join(map(str, plan.looks))} seeds for {len(contrasts)} primary contrast(s): "
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
            say(f"look {index + 1} ({count} seeds): {describe(row)}")
        decided.update({row.contrast: row.decision for row in rows if row.decision in (HELD, NOT_HELD)})
        if len(decided) == len(contrasts):
            stopped = f"every primary contrast decided at look {index + 1} ({count} seeds)"
            break
    else:
        open_ = [c.name for c in contrasts if c.name not in decided]
        stopped = f"reached --max-seeds {max_seeds} with {', '.join(open_)} undecided"
    say(f"--decide: {stopped}")
    return {"alpha": plan.alpha, "max_seeds": max_seeds, "looks": list(plan.looks),
            "spending": "Lan-DeMets O'Brien-Fleming-type, two-sided",
            "statistic": "paired t over seeds, mapped to the z bound by its p-value",
            "multiplicity": f"Holm across the {family} declared primary contrasts at each look (the "
                            f"{plan.untested} of other streams counted as never rejected)",
            "family": family,
            "history": looks, "decisions": {c.name: decided.get(c.name, "undecided") for c in contrasts},
            "seeds_run": len(seeds), "stopped": stopped}


def replay_record(folder: Path, stream: str, strategies: Sequence[str], names: Sequence[str], seeds: Sequence[int],
                  max_seeds: int, family: int | None = None) -> dict[str, Any]:
    """The record of a published decide run (or of any run of consecutive seeds of a stream with primary
    contrasts) recomputed from its seeds' files: the same plan, values and rule, looks cut at the seeds it has
    (``names`` and ``family``: the contrasts its record decided and the family it declared, so that contrasts
    declared since do not change it)."""
    ordered = tuple(seeds)

    def seeds_at(count: int) -> tuple[int, ...]:
        return ordered[:count]

    return record_looks(stream, strategies, names, max_seeds, folder, seeds_at, family=family)


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
