"""A run's summary over its seeds: mean and 95% interval per metric, paired differences, and their tables.

:func:`aggregate` turns the per-seed summaries of :func:`pemma_cl.report.summary.summarize` into the run's
``summary.json``::

    {"seeds": [0, 1, 2], "reference": "early-fusion" | None, "interval": INTERVAL_NOTE,
     "structures": ["GTVp", "GTVn"] (the data's, as the metric rows name them; absent in runs stored before:
                                     :func:`pemma_cl.report.summary.run_structures`),
     "strategies": {name: {"evaluation": str | None, "costs": {field: mean over seeds},
                           "inputs": {input: {metric: {"mean", "low", "high", "n"}}}}},
     "paired": {name: {input: {metric: {"mean", "low", "high", "n"}}}}}

``paired`` holds, for every strategy but the reference, the seed-by-seed difference *strategy minus
reference*: seeds share the cohort, split and base, so pairing removes the noise both strategies share
and its interval is usually much narrower than the two unpaired ones. With one seed every ``low``/``high``
is None; a one-seed run's summary adds ``paired_case_level`` (the final-Dice differences with case-level bootstrap
intervals, :func:`pemma_cl.report.contrasts.paired_case_intervals`), which the paired table shows instead.
:func:`render_markdown` and :func:`render_console_table` print one run or several side by side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from pemma_cl.core.errors import UserError
from pemma_cl.stats.intervals import INTERVAL_NOTE, Estimate, t_interval
from pemma_cl.evaluation.surface import NSD_TOLERANCE_MM
from pemma_cl.report.prognosis import prognosis_tables
from pemma_cl.report.summary import INPUT_LABELS, INPUTS, METRICS, PLASTICITY, note, run_structures

__all__ = ["aggregate", "check_run_summary", "render_console_table", "render_markdown"]

#: Columns of the main table: (label, input, metric, digits).
MAIN_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    *((f"Final Dice {INPUT_LABELS[i]}", i, "final_dice", 3) for i in INPUTS),
    *((f"Forgetting {INPUT_LABELS[i]}", i, "forgetting", 3) for i in INPUTS),
    ("Forgetting (max) CT+PET", "ctpet", "forgetting_max", 3),
    ("BWT CT+PET", "ctpet", "bwt", 3),
    ("HD95 CT+PET (mm)", "ctpet", "final_hd95", 1),
)
#: Columns of the paired table (differences against the reference).
PAIRED_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    *((f"Δ Final Dice {INPUT_LABELS[i]}", i, "final_dice", 3) for i in INPUTS),
    ("Δ Forgetting CT+PET", "ctpet", "forgetting", 3),
    ("Δ HD95 CT+PET (mm)", "ctpet", "final_hd95", 1),
)
#: The console's columns (``run`` without ``--wide``): short labels so that the summary fits an 80-column terminal;
#: summary.md and ``--wide`` show :data:`MAIN_COLUMNS` and :data:`COST_COLUMNS` with their full labels.
CONSOLE_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    *((f"Dice {INPUT_LABELS[i]}", i, "final_dice", 3) for i in INPUTS),
    *((f"Forg. {INPUT_LABELS[i]}", i, "forgetting", 3) for i in INPUTS),
    ("BWT CT+PET", "ctpet", "bwt", 3),
    ("HD95 CT+PET", "ctpet", "final_hd95", 1),
)
CONSOLE_PAIRED_COLUMNS: tuple[tuple[str, str, str, int], ...] = (
    *((f"Δ Dice {INPUT_LABELS[i]}", i, "final_dice", 3) for i in INPUTS),
    ("Δ Forg. CT+PET", "ctpet", "forgetting", 3),
    ("Δ HD95 CT+PET", "ctpet", "final_hd95", 1),
)
#: The console's legend: the full one (:func:`pemma_cl.report.summary.note`) is in summary.md.
CONSOLE_LEGEND = ("Dice: final Dice, mean over centres; Forg.: forgetting (cross-fitted where per-case rows exist); "
                  "HD95 in mm; Eval.: how adapters are chosen at test time; Train %: trainable share per task. "
                  "Every column and the full legend: summary.md, or run --wide.")
#: How the paired table of a one-seed run reads its Dice intervals (``summary["paired_case_level"]``).
CASE_LEVEL_TITLE = ("one seed: Dice ± the 95% case-level bootstrap interval (test cases redrawn within each centre, "
                    "paired; case sampling only, not seed-to-seed variation; * = it excludes 0)")
#: The console's short names of how a strategy is evaluated.
SHORT_EVALUATION: dict[str, str] = {"task-aware (task label given)": "aware", "task-agnostic": "agnostic",
                                    "offline (not continual)": "offline"}
#: The console's cost columns.
CONSOLE_COSTS: tuple[tuple[str, str, int, float], ...] = (("Train %", "trainable_pct", 1, 1.0),)
#: Columns holding text (left-aligned); all others hold numbers.
TEXT_COLUMNS: frozenset[str] = frozenset({"Run", "Strategy", "Evaluation", "Eval.", "Reference"})
#: Cost columns: (label, cost field, digits, scale).
COST_COLUMNS: tuple[tuple[str, str, int, float], ...] = (
    ("Trainable % (task)", "trainable_pct", 2, 1.0), ("Trainable % (stored)", "trainable_pct_stored", 2, 1.0),
    ("Past MB", "past_bytes", 1, 1e-6), ("Train s", "train_seconds", 0, 1.0),
)


def check_run_summary(summary: Mapping[str, Any], path: Path) -> None:
    """Raise a one-line :class:`UserError` unless ``summary`` (read from ``path``) is a run summary of this shape."""
    if not isinstance(summary.get("strategies"), dict):
        raise UserError(f"{path}: no 'strategies' in it; expected the summary of a run written by this version of "
                        "'pemma-bench run' (older runs must be run again)")


def _mean_costs(costs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Numeric cost fields averaged over seeds; other fields as the first seed has them."""
    merged: dict[str, Any] = {}
    for key in costs[0]:
        values = [c.get(key) for c in costs]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        merged[key] = sum(values) / len(values) if numeric else values[0]
    return merged


def _value(summary: Mapping[str, Any], strategy: str, inp: str, metric: str) -> float | None:
    value = summary.get(strategy, {}).get("inputs", {}).get(inp, {}).get(metric)
    return None if value is None or math.isnan(value) else float(value)


def aggregate(per_seed: Mapping[int, Mapping[str, Any]], reference: str | None,
              structures: Sequence[str] | None = None) -> dict[str, Any]:
    """The run's summary from each seed's :func:`~pemma_cl.report.summary.summarize` output (see the module docstring).

    Args:
        per_seed: seed -> that seed's summary, in seed order.
        reference: the strategy paired differences are taken against (None: no paired differences).
        structures: the structures of the run's metric rows (:func:`pemma_cl.evaluation.per_case.structures_of`),
            recorded for the tables' legend and the claims; None or empty (no segmentation rows): not recorded.
    """
    seeds = list(per_seed)
    summaries = [per_seed[seed] for seed in seeds]
    strategies = list(dict.fromkeys(name for summary in summaries for name in summary))
    out: dict[str, Any] = {"seeds": seeds, "reference": reference, "interval": INTERVAL_NOTE,
                           **({"structures": list(structures)} if structures else {}),
                           "strategies": {}, "paired": {}}
    for name in strategies:
        present = [s for s in summaries if name in s]
        inputs = [i for i in INPUTS if any(i in s[name]["inputs"] for s in present)]
        costs = [s[name]["costs"] for s in present]
        metrics = [*METRICS, *([PLASTICITY] if any(PLASTICITY in s[name]["inputs"].get(i, {}) for s in present
                                                     for i in inputs) else [])]
        out["strategies"][name] = {
            "evaluation": present[0][name]["evaluation"],
            "costs": _mean_costs(costs) if costs[0] else {},
            "inputs": {i: {m: t_interval(_value(s, name, i, m) for s in present).as_dict() for m in metrics}
                       for i in inputs},
        }
        if reference is not None and name != reference and any(reference in s for s in summaries):
            out["paired"][name] = {i: {m: _paired(summaries, name, reference, i, m).as_dict() for m in METRICS}
                                   for i in inputs}
    return out


def _paired(summaries: Sequence[Mapping[str, Any]], name: str, reference: str, inp: str, metric: str) -> Estimate:
    differences = []
    for summary in summaries:
        mine, theirs = _value(summary, name, inp, metric), _value(summary, reference, inp, metric)
        if mine is not None and theirs is not None:
            differences.append(mine - theirs)
    return t_interval(differences)


def _cell(estimate: Mapping[str, Any] | None, digits: int, signed: bool = False) -> str:
    """``0.634 ± 0.033`` (the t-interval is symmetric: mean ± its half-width); ``–`` when undefined; a paired
    difference whose interval excludes 0 gets ``*``."""
    if not estimate or estimate.get("mean") is None:
        return "–"
    text = f"{estimate['mean']:{'+' if signed else ''}.{digits}f}"
    if estimate.get("low") is not None:
        text += f" ± {(estimate['high'] - estimate['low']) / 2:.{digits}f}"
        if signed and Estimate(**estimate).excludes(0.0):
            text += " *"
    return text


def _scaled(value: Any, factor: float) -> Any:
    return value * factor if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _plain(value: Any, digits: int) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _tables(runs: Sequence[tuple[str, Mapping[str, Any]]],
            compact: bool = False) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the main table and, where a run has a reference, the paired table; ``compact``: the
    console's columns and short labels."""
    several = len(runs) > 1
    lead = ["Run"] if several else []
    main_columns, cost_columns = (CONSOLE_COLUMNS, CONSOLE_COSTS) if compact else (MAIN_COLUMNS, COST_COLUMNS)
    paired_columns = CONSOLE_PAIRED_COLUMNS if compact else PAIRED_COLUMNS
    main_header = [*lead, "Strategy", "Eval." if compact else "Evaluation", *(c[0] for c in main_columns),
                   *(c[0] for c in cost_columns)]
    main_rows, paired_rows = [], []
    for label, summary in runs:
        for name, entry in summary["strategies"].items():
            evaluation = entry.get("evaluation") or "–"
            main_rows.append([*([label] if several else []), name,
                              SHORT_EVALUATION.get(evaluation, evaluation) if compact else evaluation,
                              *(_cell(entry["inputs"].get(i, {}).get(m), d) for _, i, m, d in main_columns),
                              *(_plain(_scaled(entry["costs"].get(k), f), d) for _, k, d, f in cost_columns)])
        case_level = summary.get("paired_case_level", {})
        for name, entry in summary.get("paired", {}).items():
            cells = (case_level.get(name, {}).get(i, {}).get(m) or entry.get(i, {}).get(m)
                     for _, i, m, _ in paired_columns)
            paired_rows.append([*([label] if several else []), name,
                                *(_cell(cell, d, signed=True) for cell, (*_, d) in zip(cells, paired_columns))])
    seeds = "; ".join(f"{label + ': ' if several else ''}{_seeds(s['seeds'])}" for label, s in runs)
    title = f"{seeds}; ± half-width of the 95% interval" if any(len(s["seeds"]) > 1 for _, s in runs) else seeds
    tables = [(title[0].upper() + title[1:], main_header, main_rows)]
    references = sorted({s["reference"] for _, s in runs if s.get("paired")})
    if paired_rows:
        paired_header = [*lead, "Strategy", *(c[0] for c in paired_columns)]
        how = (CASE_LEVEL_TITLE if any(s.get("paired_case_level") for _, s in runs)
               else "seed by seed (* = the interval excludes 0: a difference the seeds separate)")
        tables.append((f"Paired differences, strategy minus {' / '.join(references)}, {how}", paired_header,
                       paired_rows))
    return tables + _measure_tables(runs) + prognosis_tables(runs, _cell)


#: The final state's measures beside Dice, as the measures table shows them (label, key in ``final_measures``, digits).
MEASURE_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("NSD", "nsd", 3), ("Lesion F1", "lesion_f1", 3), ("FP mL", "fp_volume_ml", 2), ("FN mL", "fn_volume_ml", 2),
)


def _measure_tables(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The table of plasticity and the final state's boundary and detection measures at CT+PET input, per structure
    (mean over seeds), for the runs that have them; none otherwise."""
    measured = [(label, s) for label, s in runs if s.get("final_measures")
                or any(PLASTICITY in e["inputs"].get("ctpet", {}) for e in s["strategies"].values())]
    if not measured:
        return []
    several = len(runs) > 1
    structures = list(dict.fromkeys(structure for _, s in measured for by_input in s.get("final_measures", {}).values()
                                    for structure in by_input.get("ctpet", {})))
    header = [*(["Run"] if several else []), "Strategy", "Plasticity CT+PET",
              *(f"{label} {structure}" for structure in structures for label, _, _ in MEASURE_COLUMNS)]
    rows = []
    for label, summary in measured:
        for name, entry in summary["strategies"].items():
            values = summary.get("final_measures", {}).get(name, {}).get("ctpet", {})
            rows.append([*([label] if several else []), name, _cell(entry["inputs"].get("ctpet", {}).get(PLASTICITY), 3,
                                                                    signed=True),
                         *(_plain(values.get(structure, {}).get(key), digits) for structure in structures
                           for _, key, digits in MEASURE_COLUMNS)])
    title = ("Final state at CT+PET input: plasticity (Dice right after each experience minus that of a model "
             f"trained on it alone, separate-models), NSD at {NSD_TOLERANCE_MM:g} mm, lesion-detection F1 "
             "(IoU > 0.3), false-positive and false-negative volumes (mL); mean over seeds")
    return [(title, header, rows)]


def _seeds(seeds: Sequence[int]) -> str:
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"mean over seeds {', '.join(map(str, seeds))}"


def _footnote(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The definitions under the tables; the structures are named when every run has the same ones."""
    prognosis = next((s["prognosis"]["interval"] for _, s in runs if s.get("prognosis")), None)
    recorded = {run_structures(s) for _, s in runs}
    structures = next(iter(recorded)) if len(recorded) == 1 else ()
    return f"Intervals: {runs[0][1]['interval']}. {note(structures)}" + (f" {prognosis}." if prognosis else "")


def render_markdown(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Markdown tables of one or several runs' summaries (``(label, summary.json)``), then the definitions."""
    blocks = []
    for title, header, rows in _tables(runs):
        lines = [f"**{title}**", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join(" --- " if name in TEXT_COLUMNS else " ---: " for name in header) + "|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n" + _footnote(runs) + "\n"


def _header(name: str) -> str:
    """A console header on two lines: the metric, then its input setting or unit."""
    name = name.replace(" (", "\n(")
    for word in ("Dice", "Forgetting", "Forg.", "BWT", "HD95", "Train"):
        name = name.replace(f"{word} ", f"{word}\n", 1)
    return name


def render_console_table(runs: Sequence[tuple[str, Mapping[str, Any]]], wide: bool = False,
                         width: int | None = None) -> list[Table]:
    """The tables of :func:`render_markdown` as :class:`rich.table.Table` objects (headers wrapped): by default the
    console's columns (:data:`CONSOLE_COLUMNS`, :data:`CONSOLE_LEGEND`); ``wide``: every column of summary.md with
    the full legend. With a ``width``, a table wider than it is cut into several, each with the row labels and as
    many of the value columns as fit, so that no cell is cut short."""
    tables, specs = [], _tables(runs, compact=not wide)
    legend = _footnote(runs) if wide else CONSOLE_LEGEND
    for k, (title, header, rows) in enumerate(specs):
        labels = [i for i, name in enumerate(header) if name in TEXT_COLUMNS]
        values = [i for i, name in enumerate(header) if name not in TEXT_COLUMNS]
        parts = _column_groups(header, rows, labels, values, width)
        for n, part in enumerate(parts):
            last = k == len(specs) - 1 and n == len(parts) - 1
            tables.append(_console_table(title if n == 0 else None, legend if last else None, header, rows,
                                         [*labels, *part]))
    return tables


def _console_table(title: str | None, caption: str | None, header: Sequence[str], rows: Sequence[Sequence[str]],
                   columns: Sequence[int]) -> Table:
    """A console table of ``columns`` (indices into ``header`` and each row)."""
    table = Table(title=title, caption=caption)
    for i in columns:
        name = header[i]
        table.add_column(_header(name), justify="left" if name in TEXT_COLUMNS else "right",
                         no_wrap=name in TEXT_COLUMNS - {"Evaluation"}, min_width=13 if name == "Evaluation" else None)
    for row in rows:
        table.add_row(*[row[i].replace(" ± ", "\n± ").replace(" (", "\n(") for i in columns])
    return table


def _column_groups(header: Sequence[str], rows: Sequence[Sequence[str]], labels: Sequence[int],
                   values: Sequence[int], width: int | None) -> list[list[int]]:
    """The value columns split, in order, into groups whose table (with the ``labels`` columns) fits ``width``
    (one group when no width is given or all fit; a column too wide on its own gets a group of its own)."""
    if width is None:
        return [list(values)]
    measure = Console(width=10_000)
    groups: list[list[int]] = [[]]
    for i in values:
        trial = _console_table(None, None, header, rows, [*labels, *groups[-1], i])
        if groups[-1] and measure.measure(trial).maximum > width:
            groups.append([])
        groups[-1].append(i)
    return groups
