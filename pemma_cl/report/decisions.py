"""The looks of a ``--decide`` run over a folder of seeds' files: each primary contrast valued at each look and decided
by the group-sequential plan (:mod:`pemma_cl.stats.sequential`).

One loop serves the run itself (:mod:`pemma_cl.run.decide`, which makes each look's seeds before it is valued) and the
claims table, which replays it from a published decide run's per-case rows under the rule its record names (so a
decide run's verdicts are always its plan's, never a fixed-sample test of seeds whose number the plan chose). A new
run tests each contrast at the level of its planned trial in the alpha ledger (:mod:`pemma_cl.report.ledger`) with
t-calibrated bounds; the runs stored before the ledger keep their rule (Holm across the declared family, z-mapped
bounds) and their decisions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pemma_cl.core.errors import UserError
from pemma_cl.report import contrasts as declared
from pemma_cl.stats.sequential import (
    HELD,
    NOT_HELD,
    T_CALIBRATED,
    Z_MAPPED,
    Contrast,
    ContrastLook,
    SequentialPlan,
    margin_threshold,
)

__all__ = ["describe", "primary_contrasts", "record_looks", "recorded_bounds", "render_decisions", "replay_record"]

#: What a record's ``bounds`` says, in words (a record without one is of a run stored before t-calibrated bounds).
BOUND_WORDS = {T_CALIBRATED: "t-calibrated bounds",
               Z_MAPPED: "z-mapped bounds (a t mapped to the normal bounds by its p-value; stored decision)"}


def stream_contrasts(contrasts: Sequence[Contrast], stream: str, strategies: Sequence[str],
                     names: Sequence[str] = ()) -> list[Contrast]:
    """The primary contrasts a run of ``stream`` with ``strategies`` decides: those named in ``names`` (``--contrast``),
    or every one of the stream's when it is empty.

    Raises:
        UserError: If the stream has no primary contrast, a name is not one of its contrasts, or the run lacks a
            strategy one of the chosen contrasts compares.
    """
    mine = [c for c in contrasts if c.stream == stream]
    if not mine:
        raise UserError(f"--decide: stream {stream!r} has no primary contrast in benchmarks/contrasts/primary.yaml "
                        "(streams that have one: "
                        f"{', '.join(sorted({c.stream for c in contrasts})) or 'none'})")
    unknown = [name for name in names if name not in {c.name for c in mine}]
    if unknown:
        raise UserError(f"--contrast: {unknown[0]!r} is not a primary contrast of stream {stream!r} (its contrasts: "
                        f"{', '.join(c.name for c in mine)})")
    if names:
        mine = [c for c in mine if c.name in names]
    for contrast in mine:
        needed = [name for name in (contrast.strategy, contrast.reference) if name is not None]
        missing = [name for name in needed if name not in strategies]
        if missing:
            raise UserError(f"--decide: primary contrast {contrast.name!r} compares {' and '.join(needed)}; "
                            f"add --strategy {' --strategy '.join(missing)}")
    for contrast in mine:
        margin_threshold(contrast)
    return mine


def primary_contrasts(stream: str, strategies: Sequence[str], names: Sequence[str] = (),
                      family: int | None = None) -> tuple[list, int]:
    """The primary contrasts (``benchmarks/contrasts/primary.yaml``) a decide run of ``stream`` with ``strategies``
    decides (those in ``names``, or all of the stream's), and how many are declared in all (``family``: the size a
    stored run's record declared, which a replay keeps).

    Raises:
        UserError: If the stream has none, a name is not one of them, or the run lacks a strategy one compares.
    """
    every = declared.load_primary_contrasts()
    return stream_contrasts(every, stream, strategies, names), family or len(every)


def record_looks(stream: str, strategies: Sequence[str], names: Sequence[str], max_seeds: int, folder: Path,
                 seeds_at: Callable[[int], tuple[int, ...]], say: Callable[[str], None] = lambda text: None,
                 levels: Mapping[str, float] | None = None, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The look loop over the contrasts :func:`primary_contrasts` gives for ``stream``, ``strategies`` and ``names``:
    at each look, ``seeds_at(count)`` makes the look's seeds' files in ``folder`` (if need be) and names them; each
    open contrast is valued from them and decided by its plan. Stops when every contrast is decided or at the last
    look; ``say`` hears a line per look and contrast.

    Args:
        levels: each contrast's level, from its planned trial in the alpha ledger (:meth:`~pemma_cl.report.ledger.
            Ledger.levels`): each is decided alone at it, with t-calibrated bounds (no Holm within the run).
        record: a stored decide run's record, whose rule a replay keeps: its levels, or (runs stored before the
            ledger) Holm across the family it declared; its bound convention (:func:`recorded_bounds`) and the
            metric it valued each contrast with. Neither: Holm across the declared contrasts, t-calibrated.

    Returns:
        The record a decide run keeps in its manifest (``extra.decide``).
    """
    contrasts, family = primary_contrasts(stream, strategies, names, (record or {}).get("family"))
    bounds = T_CALIBRATED if levels is not None else recorded_bounds(record)
    if record is not None:
        levels = record.get("levels")
        contrasts = [declared.as_recorded(c, record.get("metrics") or {}) for c in contrasts]
    if levels is not None:
        plans = [(SequentialPlan.for_max_seeds(max_seeds, levels[c.name], bounds=bounds), [c]) for c in contrasts]
        rule = ("each contrast alone at the level of its planned trial in the alpha ledger "
                "(benchmarks/contrasts/ledger.yaml); no Holm within the run")
    else:
        plans = [(SequentialPlan.for_max_seeds(max_seeds, untested=family - len(contrasts), bounds=bounds), contrasts)]
        rule = (f"Holm across the {family} declared primary contrasts at each look (the {family - len(contrasts)} "
                "of other streams counted as never rejected)")
    looks_at = plans[0][0].looks
    say(f"--decide: looks at {', '.join(map(str, looks_at))} seeds for {len(contrasts)} primary contrast(s): "
        f"{', '.join(c.name for c in contrasts)} ({rule}; {BOUND_WORDS[bounds]})")
    decided: dict[str, str] = {}
    looks: list[dict[str, Any]] = []
    for index, count in enumerate(looks_at):
        seeds = seeds_at(count)
        rows = []
        for plan, members in plans:
            values = {c.name: _values(declared.seed_values(folder, c, seeds), seeds)
                      for c in members if c.name not in decided}
            rows += plan.look(index, values, members, decided) if values else []
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
    return {"alpha": math.fsum(plan.alpha for plan, _ in plans), "max_seeds": max_seeds, "looks": list(looks_at),
            "spending": "Lan-DeMets O'Brien-Fleming-type, two-sided",
            "bounds": bounds, "statistic": _STATISTIC[bounds], "multiplicity": rule, "family": family,
            **({"levels": dict(levels)} if levels is not None else {}),
            "metrics": {c.name: c.metric for c in contrasts},
            "history": looks, "decisions": {c.name: decided.get(c.name, "undecided") for c in contrasts},
            "seeds_run": len(seeds), "stopped": stopped}


def replay_record(folder: Path, stream: str, strategies: Sequence[str], names: Sequence[str], seeds: Sequence[int],
                  max_seeds: int, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """The record of a published decide run (or of any run of consecutive seeds of a stream with primary
    contrasts) recomputed from its seeds' files: the same plan, values and rule, looks cut at the seeds it has
    (``names`` and ``record``: the contrasts its record decided and the record itself, whose rule the replay keeps,
    so that what was declared since does not change it)."""
    ordered = tuple(seeds)

    def seeds_at(count: int) -> tuple[int, ...]:
        return ordered[:count]

    return record_looks(stream, strategies, names, max_seeds, folder, seeds_at, record=record)


def recorded_bounds(record: dict[str, Any] | None) -> str:
    """The bound convention of a decide run's record: its ``bounds``, :data:`Z_MAPPED` for a record written before
    t-calibrated bounds (which has none), the current :data:`T_CALIBRATED` without a record."""
    return T_CALIBRATED if record is None else record.get("bounds", Z_MAPPED)


def render_decisions(record: dict[str, Any]) -> str:
    """The console's account of a decide run: each primary contrast's decision at its last look, and why it
    stopped."""
    level = "alpha {:g} from the alpha ledger" if record.get("levels") else "familywise alpha {:g}"
    lines = [f"Primary contrasts decided by --decide (looks at {', '.join(map(str, record['looks']))} seeds, "
             f"{level.format(record['alpha'])}, {BOUND_WORDS[recorded_bounds(record)]}): {record['stopped']}"]
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


#: How each convention's record names its statistic.
_STATISTIC = {T_CALIBRATED: "paired t over seeds against bounds on |t| calibrated by simulation",
              Z_MAPPED: "paired t over seeds, mapped to the z bound by its p-value"}


def _values(by_seed: Mapping[int, float], seeds: tuple[int, ...]) -> list[float]:
    """The values of ``seeds`` (the look's), in seed order."""
    return [by_seed[seed] for seed in seeds if seed in by_seed]
