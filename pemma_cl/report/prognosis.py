"""The prognosis part of a run's summary: C-index per strategy and prognosis task, the references, and tables.

``summary.json`` gains (for a stream with prognosis experiences)::

    "prognosis": {"interval": str, "tasks": {name: modalities},
                  "strategies": {strategy: {task: {"own": Estimate, "final": Estimate, "forgetting": Estimate}}},
                  "references": {reference: Estimate}}

*own* is the C-index on a prognosis task right after training on it, *final* after the whole stream, *forgetting*
own minus final. With one seed an Estimate's interval is the 95% bootstrap interval over test cases; with several,
the Student-t interval over the seeds' values.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pemma_cl.stats.intervals import t_interval

#: How the prognosis intervals are described.
PROGNOSIS_INTERVAL_NOTE = ("C-index: Harrell's (lifelines), on the last prognosis experience's test cases; one seed: "
                           "95% percentile bootstrap interval over test cases; several seeds: 95% Student-t interval "
                           "over seeds")


def _own_and_final(rows: Sequence[Mapping[str, Any]], strategy: str, task: int) -> tuple[dict | None, dict | None]:
    """This seed's row right after training on ``task`` and the row after the whole stream."""
    mine = [r for r in rows if r["strategy"] == strategy and r["eval_experience"] == task]
    own = next((r for r in mine if r["trained_through"] == task), None)
    last = max((r["trained_through"] for r in mine), default=None)
    final = next((r for r in mine if r["trained_through"] == last), None)
    return own, final


def cindex_gain(rows: Sequence[Mapping[str, Any]], strategy: str, richer: str, poorer: str) -> float:
    """One seed's C-index gain of ``strategy`` from the prognosis task scored from ``poorer`` to the one scored from
    ``richer`` (their ``input``, e.g. ``ct`` and ``ct+pet``): the C-index right after training the richer task, on
    its test patients, minus the one right after training the poorer task, on its own (every prognosis task of a
    stream scores the same test patients). NaN where the stream has not exactly one such task, or a C-index is
    undefined.

    Args:
        rows: the seed's prognosis rows (:data:`~pemma_cl.evaluation.prognosis_metric.PROGNOSIS_COLUMNS` with
            ``strategy``).
        strategy: the strategy.
        richer: the input of the richer task.
        poorer: the input of the poorer task.
    """
    own = {}
    for inputs in (richer, poorer):
        tasks = {r["eval_experience"] for r in rows if r["input"] == inputs}
        if len(tasks) != 1:
            return math.nan
        row, _ = _own_and_final(rows, strategy, tasks.pop())
        value = None if row is None else row["cindex"]
        own[inputs] = math.nan if value is None else float(value)
    return own[richer] - own[poorer]


def _estimate(values: Sequence[dict | None], key: str = "cindex") -> dict[str, Any]:
    """One seed: the value and its bootstrap interval; several: the t-interval over seeds."""
    present = [v for v in values if v is not None]
    if len(present) == 1:
        return {"mean": present[0][key], "low": present[0].get("low"), "high": present[0].get("high"), "n": 1}
    return t_interval(v[key] for v in present).as_dict()


def summarize_prognosis(rows_per_seed: Mapping[int, Sequence[Mapping[str, Any]]],
                        references_per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any] | None:
    """The ``prognosis`` block of ``summary.json`` (see the module docstring); None without prognosis rows.

    Args:
        rows_per_seed: seed -> the prognosis rows of every strategy (:class:`PrognosisMetric` rows with ``seed`` and
            ``strategy``).
        references_per_seed: seed -> the seed's prognosis references (:func:`prognosis_references`).
    """
    every = [row for rows in rows_per_seed.values() for row in rows]
    if not every:
        return None
    tasks = {r["eval_experience"]: (r["eval_experience_name"], r["input"]) for r in every}
    strategies: dict[str, dict] = {}
    for strategy in dict.fromkeys(r["strategy"] for r in every):
        entry = {}
        for task, (name, _) in sorted(tasks.items()):
            pairs = [_own_and_final(rows, strategy, task) for rows in rows_per_seed.values()]
            drops = [{"cindex": own["cindex"] - final["cindex"]}
                     if own and final and own["cindex"] is not None and final["cindex"] is not None else None
                     for own, final in pairs]
            entry[name] = {"own": _estimate([own for own, _ in pairs]), "final": _estimate([final for _, final in pairs]),
                           "forgetting": _estimate(drops)}
        strategies[strategy] = entry
    names = list(dict.fromkeys(name for refs in references_per_seed.values() for name in refs))
    references = {name: _estimate([refs.get(name) for refs in references_per_seed.values()]) for name in names}
    return {"interval": PROGNOSIS_INTERVAL_NOTE, "tasks": {name: inp for name, inp in tasks.values()},
            "strategies": strategies, "references": references}


def prognosis_tables(runs: Sequence[tuple[str, Mapping[str, Any]]],
                     cell: Callable[[Mapping[str, Any], int], str]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the C-index tables of the runs that have prognosis: the strategies, then the
    references on the same test cases.

    Args:
        runs: ``(label, summary.json)`` pairs.
        cell: renders an Estimate with a number of digits (the seed summary's cell format).
    """
    tables = []
    for label, summary in runs:
        block = summary.get("prognosis")
        if not block:
            continue
        lead = f"{label}: " if len(runs) > 1 else ""
        tasks = list(block["tasks"])
        header = ["Strategy", *(f"C-index {task} ({block['tasks'][task]})" for task in tasks),
                  *(f"Forgetting {task}" for task in tasks[:-1])]
        rows = [[name, *(cell(entry[t]["own"], 3) for t in tasks), *(cell(entry[t]["forgetting"], 3) for t in tasks[:-1])]
                for name, entry in block["strategies"].items()]
        tables.append((f"{lead}Prognosis: C-index right after training on each task; forgetting = that C-index minus "
                       "the one after the whole stream", header, rows))
        tables.append((f"{lead}Prognosis references on the same test cases (fitted on the last prognosis task's "
                       "training cases)", ["Reference", "C-index"],
                       [[name, cell(estimate, 3)] for name, estimate in block["references"].items()]))
    return tables
