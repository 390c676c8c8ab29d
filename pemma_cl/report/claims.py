"""The paper's claims, checked against stored runs: a primary row per claim that can be decided, then secondary rows.

Reads only what ``pemma-bench run`` stored (``config.json`` for the stream, ``summary.json`` for the numbers, the
seeds' per-case rows for the primary contrasts), so ``pemma-bench claims RUN_DIR...`` can weigh several runs (e.g.
one of ``centers`` and one of ``centers-ct``) together. A run is evidence for a claim by what its stream declares,
not by its name:

* a **CT+PET stream** (every experience brings CT and PET: ``paper``, ``centers``) tests Dice against early
  fusion and continual learning of new centres with CT+PET;
* a **single-modality stream** (PET arrives, later experiences bring CT only: ``paper-ct``, ``centers-ct``)
  tests the PET gain after a CT-only update, no forgetting of PET, and continual learning with CT only;
* a **prognosis stream** (it has prognosis experiences: ``modalities``) tests the C-index gains from adding PET
  and EHR (relative gains of the C-index right after each prognosis task, against the larger of the two bootstrap
  half-widths with one seed) and that learning prognosis does not make the model forget segmentation.

The claims are about PEMMA: the strategies tested are those registered in the ``PEMMA`` family
(:func:`~pemma_cl.strategy_api.registry.register_strategy`'s ``family``), whatever their names.

Only the **primary contrasts** (``benchmarks/contrasts/primary.yaml``, one per claim, declared before the runs) get
``held`` / ``not held`` / ``inconclusive``, by the rules of :mod:`pemma_cl.report.verdicts` (at least five seeds, Holm
across the contrasts). Every other row is **secondary**: descriptive, not adjusted for multiplicity, read against
the claim's threshold (:data:`MEETS`, :data:`MISSES`, :data:`STRADDLES`): with one seed the value against it, with
one margin, :data:`SEED_SPREAD` (the same commit and seed gave 0.448 and 0.436 on two machines); with several the
95% interval over seeds (for differences against early fusion, the paired one). Task-aware PEMMA keeps one adapter
set per task, so its forgetting is zero by construction: it cannot test a forgetting claim, and its rows say so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.table import Table

from pemma_cl.core.errors import UserError
from pemma_cl.core.task_kinds import PROGNOSIS, SEGMENTATION
from pemma_cl.report.claim_rows import (
    CENTRES_CT_CLAIM,
    CENTRES_CTPET_CLAIM,
    CT_ALONE_CLAIM,
    DICE_CLAIM,
    MEETS,
    MISSES,
    NOT_TESTED,
    PEMMA_FAMILY,
    PET_FORGETTING_CLAIM,
    PET_GAIN_CLAIM,
    PROGNOSIS_FORGETTING_CLAIM,
    REFERENCE,
    SECONDARY,
    STRADDLES,
    ClaimRow,
    StoredRun,
)
from pemma_cl.report.contrasts import load_primary_contrasts
from pemma_cl.report.ledger import load_ledger
from pemma_cl.report.scope import run_scope
from pemma_cl.report.seeds import check_run_summary
from pemma_cl.report.verdicts import primary_rows
from pemma_cl.strategy_api.registry import load_registry

#: Dice differences within this margin are not separated by one seed (see the module docstring).
SEED_SPREAD = 0.03
#: The paper's relative gain in PET Dice of PEMMA over early fusion after a single-modality update.
PAPER_PET_GAIN = 0.28
#: The paper's trainable share of PEMMA.
PAPER_TRAINABLE_PCT = 8.0
#: The paper's relative C-index gains of PEMMA over its CT-only prognosis model, by the richer model's modalities.
PAPER_CINDEX_GAINS: dict[str, float] = {"ct+pet": 0.10, "ct+pet+ehr": 0.23}
TASK_AWARE_PREFIX = "task-aware"


def load_run(folder: Path) -> StoredRun:
    """Read a run folder written by ``pemma-bench run``.

    Raises:
        UserError: If the folder or one of its files is missing or unreadable.
    """
    if not folder.is_dir():
        raise UserError(f"run folder '{folder}' does not exist")
    raw = {}
    for name in ("config.json", "summary.json"):
        path = folder / name
        try:
            raw[name] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{path}: not found; expected a run folder written by 'pemma-bench run'") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: cannot read it as JSON: {exc}") from None
    return stored_run(folder, raw["config.json"], raw["summary.json"])


def stored_run(folder: Path, config: dict[str, Any], summary: dict[str, Any]) -> StoredRun:
    """A run from its configuration (``RunConfig.to_dict()``) and summary, as stored in ``folder``; each strategy's
    family is the one its registration declares (the built-in strategies, and the run's plugin files where they
    still load); its population (:mod:`pemma_cl.report.scope`) from these and the folder's manifest where written.

    Raises:
        UserError: If the configuration holds no stream with experiences and modalities, or the summary is not
            the seed summary of :mod:`pemma_cl.report.seeds`.
    """
    try:
        stream = config["stream"]
        modalities = [tuple(exp["modalities"]) for exp in stream["experiences"]]
        kinds = [exp.get("kind", SEGMENTATION) for exp in stream["experiences"]]
        name = stream["name"]
    except (KeyError, TypeError):
        raise UserError(f"{folder / 'config.json'}: no stream with experiences and modalities in it") from None
    check_run_summary(summary, folder / "summary.json")
    entries = load_registry([Path(path) for path in config.get("plugin_files", ())]).entries
    manifest = _manifest(folder)
    return StoredRun(folder=folder, stream=name, modalities=modalities, summary=summary, kinds=kinds,
                     max_seeds=config.get("max_seeds"), decide_contrasts=tuple(config.get("decide_contrasts", ())),
                     families={name: entry.family for name, entry in entries.items()},
                     population=run_scope(config, summary, manifest),
                     decide_record=((manifest or {}).get("extra") or {}).get("decide"))


def _manifest(folder: Path) -> dict[str, Any] | None:
    """The run's ``manifest.json``, or None where it is absent or unreadable (the population then comes from the
    configuration alone)."""
    try:
        content = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return content if isinstance(content, dict) else None


def pemma_strategies(run: StoredRun, names: Iterable[str] | None = None) -> list[str]:
    """The strategies of ``names`` (default: the run's) registered in the :data:`PEMMA_FAMILY`."""
    return [name for name in (run.strategies if names is None else names) if run.families.get(name) == PEMMA_FAMILY]


def _evaluation(run: StoredRun, strategy: str) -> str | None:
    """How the strategy was evaluated, or None for runs that did not record it."""
    return run.strategies[strategy].get("evaluation")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _interval_text(interval: tuple[float, float] | None, what: str) -> str:
    return "" if interval is None else f"; {what} 95% interval [{interval[0]:+.3f}, {interval[1]:+.3f}]"


def _reading(value: float, interval: tuple[float, float] | None, holds) -> str:
    """:data:`MEETS`/:data:`MISSES` from ``holds(value)`` with one seed; with an interval, meets only if ``holds`` at
    both ends, misses only if at neither, else straddles (``holds`` is monotone in its argument)."""
    if interval is None:
        return MEETS if holds(value) else MISSES
    ends = [holds(end) for end in interval]
    return MEETS if all(ends) else MISSES if not any(ends) else STRADDLES


def _all_readings(readings: list[str]) -> str:
    """A claim over several settings: meets if it meets for all, misses if it misses for one, else straddles."""
    return MISSES if MISSES in readings else MEETS if all(r == MEETS for r in readings) else STRADDLES


def _secondary(claim: str, strategy: str, run: StoredRun, measured: str, reading: str, why: str) -> ClaimRow:
    return ClaimRow(claim, strategy, run.stream, measured, SECONDARY, why, reading, scope=run.scope(strategy))


def _dice_vs_early_fusion(runs: list[StoredRun], shares: dict[str, float]) -> list[ClaimRow]:
    claim = DICE_CLAIM
    rows = []
    for run in (r for r in runs if r.kind == "ctpet"):
        for strategy in pemma_strategies(run):
            mine, theirs = run.value(strategy, "ctpet", "final_dice"), run.value(REFERENCE, "ctpet", "final_dice")
            share = shares.get("dora" if "dora" in strategy else "lora")
            share_text = f"{share:.1f}% trainable at the paper preset" if share is not None else "share unknown"
            if mine is None or theirs is None:
                rows.append(ClaimRow(claim, strategy, run.stream, _fmt(mine), NOT_TESTED,
                                     f"needs {strategy} and {REFERENCE} in the same run", scope=run.scope(strategy)))
                continue
            gap, interval = mine - theirs, run.paired(strategy, "ctpet", "final_dice")
            reading = _reading(gap, interval, lambda difference: difference >= -SEED_SPREAD)
            small = share is not None and share <= PAPER_TRAINABLE_PCT + 2
            measured = (f"CT+PET Dice {mine:.3f} vs {REFERENCE} {theirs:.3f} ({gap:+.3f}"
                        f"{_interval_text(interval, 'paired')}); {share_text}")
            why = f"threshold: difference >= -{SEED_SPREAD}"
            if not small:
                why += f"; trainable share above {PAPER_TRAINABLE_PCT + 2:.0f}%"
                reading = MISSES
            rows.append(_secondary(claim, strategy, run, measured, reading, why))
    return rows or [ClaimRow(claim, "pemma-*", "–", "–", NOT_TESTED, "needs a run of a CT+PET stream (paper, centers)")]


def _pet_gain_after_ct_update(runs: list[StoredRun]) -> list[ClaimRow]:
    claim = PET_GAIN_CLAIM
    rows = []
    for run in (r for r in runs if r.kind == "single"):
        for strategy in pemma_strategies(run):
            mine, theirs = run.value(strategy, "ctpet", "final_dice"), run.value(REFERENCE, "ctpet", "final_dice")
            if mine is None or theirs is None:
                rows.append(ClaimRow(claim, strategy, run.stream, _fmt(mine), NOT_TESTED,
                                     f"needs {strategy} and {REFERENCE} in the same run", scope=run.scope(strategy)))
                continue
            interval = run.paired(strategy, "ctpet", "final_dice")
            gain = (mine - theirs) / theirs if theirs > 0 else math.inf
            relative = f"{gain:+.0%}" if math.isfinite(gain) else "relative gain undefined"
            reading = _reading(mine - theirs, interval, lambda difference: difference > SEED_SPREAD and (
                theirs <= 0 or difference / theirs >= PAPER_PET_GAIN))
            measured = (f"final CT+PET Dice {mine:.3f} vs {REFERENCE} {theirs:.3f}: {relative}"
                        f"{_interval_text(interval, 'paired difference')} "
                        f"(PET-only input: {_fmt(run.value(strategy, 'pet', 'final_dice'))} vs "
                        f"{_fmt(run.value(REFERENCE, 'pet', 'final_dice'))})")
            why = ("compared: mean CT+PET Dice over every experience after the last CT-only update, PEMMA over "
                   f"early fusion (our reading of 'PET Dice'); threshold: >= +{PAPER_PET_GAIN:.0%} and > {SEED_SPREAD}")
            rows.append(_secondary(claim, strategy, run, measured, reading, why))
    return rows or [ClaimRow(claim, "pemma-*", "–", "–", NOT_TESTED,
                             "needs a run of a single-modality stream (paper-ct, centers-ct)")]


def _no_forgetting(runs: list[StoredRun], kind: str, claim: str, settings: tuple[str, ...], missing: str) -> list[ClaimRow]:
    rows = []
    for run in (r for r in runs if r.kind == kind):
        for strategy in pemma_strategies(run):
            values = {s: run.value(strategy, s, "forgetting") for s in settings}
            intervals = {s: run.interval(strategy, s, "forgetting") for s in settings}
            theirs = run.value(REFERENCE, "ctpet", "forgetting")
            measured = ", ".join(f"forgetting {s} {_fmt(v)}" + ("" if intervals[s] is None else
                                 f" [{intervals[s][0]:+.3f}, {intervals[s][1]:+.3f}]") for s, v in values.items())
            measured += f" ({REFERENCE} CT+PET: {_fmt(theirs)})"
            evaluation = _evaluation(run, strategy)
            if evaluation is None:
                rows.append(ClaimRow(claim, strategy, run.stream, measured, NOT_TESTED,
                                     "the run does not record whether it was evaluated task-aware",
                                     scope=run.scope(strategy)))
            elif evaluation.startswith(TASK_AWARE_PREFIX):
                rows.append(ClaimRow(claim, strategy, run.stream, measured, NOT_TESTED,
                                     "task-aware: earlier tasks keep their own adapter set, so 0 by construction",
                                     scope=run.scope(strategy)))
            elif any(v is None for v in values.values()):
                rows.append(ClaimRow(claim, strategy, run.stream, measured, NOT_TESTED, "forgetting undefined",
                                     scope=run.scope(strategy)))
            else:
                reading = _all_readings([_reading(values[s], intervals[s], lambda f: f <= SEED_SPREAD)
                                         for s in settings])
                why = (f"task-agnostic (one shared adapter set); {run.forgetting_estimator}; "
                       f"threshold: every forgetting <= {SEED_SPREAD}")
                rows.append(_secondary(claim, strategy, run, measured, reading, why))
    return rows or [ClaimRow(claim, "pemma-*", "–", "–", NOT_TESTED, missing)]


def check_claims(runs: list[StoredRun], shares: dict[str, float]) -> list[ClaimRow]:
    """The claims table of some runs: one row per primary contrast (:mod:`pemma_cl.report.verdicts`), then the secondary
    rows (every strategy against each claim's threshold, descriptive).

    Args:
        runs: the stored runs to weigh.
        shares: trainable share (percent, per served task) of PEMMA at the ``paper`` preset, by ``lora``/``dora``.
    """
    single = "needs a run of a single-modality stream (paper-ct, centers-ct)"
    rows = primary_rows(runs, load_primary_contrasts())
    rows += _dice_vs_early_fusion(runs, shares)
    rows += _pet_gain_after_ct_update(runs)
    ctpet = "needs a run of a CT+PET stream (paper, centers)"
    rows += _no_forgetting(runs, "single", PET_FORGETTING_CLAIM, ("pet", "ctpet"), single)
    rows += _no_forgetting(runs, "ctpet", CENTRES_CTPET_CLAIM, ("ctpet",), ctpet)
    rows += _no_forgetting(runs, "ctpet", CT_ALONE_CLAIM, ("ct",), ctpet)
    rows += _no_forgetting(runs, "single", CENTRES_CT_CLAIM, ("ct", "ctpet"), single)
    rows += _cindex_gain(runs, "ct+pet", PAPER_CINDEX_GAINS["ct+pet"])
    rows += _cindex_gain(runs, "ct+pet+ehr", PAPER_CINDEX_GAINS["ct+pet+ehr"])
    rows += _no_forgetting(runs, PROGNOSIS, PROGNOSIS_FORGETTING_CLAIM, ("ct", "pet", "ctpet"),
                           "needs a run of a prognosis stream (modalities)")
    return rows


def _cindex_gain(runs: list[StoredRun], richer: str, gain: float) -> list[ClaimRow]:
    """The C-index right after the ``richer`` prognosis task against the one right after the CT-only task."""
    claim = f"C-index +{gain:.0%} adapting a CT model to {richer.upper()}"
    rows = []
    for run in (r for r in runs if r.kind == PROGNOSIS):
        block = run.summary.get("prognosis") or {}
        task_of = {inputs: task for task, inputs in block.get("tasks", {}).items()}
        if "ct" not in task_of or richer not in task_of:
            rows.append(ClaimRow(claim, "pemma-*", run.stream, "–", NOT_TESTED,
                                 f"needs prognosis tasks from ct and from {richer} in the stream",
                                 scope=run.scope("pemma-*")))
            continue
        for strategy in pemma_strategies(run, block["strategies"]):
            entry = block["strategies"][strategy]
            base, better = entry[task_of["ct"]]["own"], entry[task_of[richer]]["own"]
            if base.get("mean") is None or better.get("mean") is None:
                rows.append(ClaimRow(claim, strategy, run.stream, "–", NOT_TESTED, "C-index undefined",
                                     scope=run.scope(strategy)))
                continue
            difference, wanted = better["mean"] - base["mean"], gain * base["mean"]
            halves = [(e["high"] - e["low"]) / 2 for e in (base, better) if e.get("low") is not None]
            half = max(halves, default=SEED_SPREAD)
            reading = MEETS if difference >= wanted and difference > half else \
                MISSES if wanted - difference > half else STRADDLES
            measured = (f"C-index {base['mean']:.3f} (ct) -> {better['mean']:.3f} ({richer}): "
                        f"{difference / base['mean']:+.0%} (interval half-width {half:.3f})")
            why = (f"relative gain of the C-index right after each task; meets if >= +{gain:.0%} and the difference "
                   "exceeds the larger interval half-width, misses if it falls short by more than it")
            rows.append(_secondary(claim, strategy, run, measured, reading, why))
    return rows or [ClaimRow(claim, "pemma-*", "–", "–", NOT_TESTED, "needs a run of a prognosis stream (modalities)")]


def paper_trainable_shares() -> dict[str, float]:
    """PEMMA's trainable share per served task at the ``paper`` preset (LoRA and DoRA), counted without training."""
    from pemma_cl.evaluation.cost import pemma_parameter_counts  # heavy (torch, MONAI): `claims` answers fast without
    from pemma_cl.models.presets import PRESETS

    return {name: float(pemma_parameter_counts(PRESETS["paper"], use_dora=name == "dora", n_tasks=1)["pct_served"])
            for name in ("lora", "dora")}


#: How the claims table reads its verdicts (above the table in claims.md; the console points to it).
VERDICT_RULE = (
    "Verdicts: only the primary contrasts (benchmarks/contrasts/primary.yaml, one per claim, declared before the "
        "runs) are decided, from at least 5 seeds: a t-test of the seeds' values against the contrast's boundary, "
        "Holm-adjusted across the primary contrasts at a 5% familywise error (a --decide run: its group-sequential "
        "plan's decision instead, at the level of its trial in the alpha ledger; the runs stored before the ledger "
        "with z-mapped bounds, as recorded). One seed is indicative only (its "
        "interval covers case sampling, not the seed's other draws). Every other row is secondary: descriptive, "
        "not adjusted, read against the claim's threshold (with one seed the value, with several the 95% interval "
        "over seeds, paired against early fusion for differences). Task-aware PEMMA cannot test a forgetting claim "
        "(zero by construction).")


#: What every verdict is about, above the rule in claims.md (each verdict names its own population).
SCOPE_RULE = (
    "Scope: each verdict names its population: the cohort the run scored, the preset, and PEMMA's trainable share "
    "measured in that run. A verdict on the built-in synthetic cohort at the tiny preset (32³ phantoms, a ViT of 8 "
    "tokens, PEMMA training about 19% of its parameters) says what PEMMA does there; it neither confirms nor refutes "
    f"the paper, whose ~{PAPER_TRAINABLE_PCT:.0f}% trainable share is a fact of its own preset and whose data are "
    "HECKTOR 2022's.")


def verdict_text(row: ClaimRow, emphasis: str = "") -> str:
    """A row's verdict (a secondary row's: with its reading) followed by the population it is about.

    Args:
        row: the row.
        emphasis: markup around a primary row's verdict word (markdown's ``**``).
    """
    verdict = f"{SECONDARY} ({row.reading})" if row.verdict == SECONDARY else f"{emphasis}{row.verdict}{emphasis}"
    return f"{verdict} — on {row.scope}" if row.scope else verdict


def render_claims(rows: list[ClaimRow]) -> str:
    """The claims table as markdown, with what its verdicts are about, the rule for each verdict and the familywise
    error the alpha ledger (:mod:`pemma_cl.report.ledger`) supports above it."""
    header = ["Claim (paper)", "Strategy", "Evidence (stream)", "Measured", "Verdict (population)", "Why"]
    lines = [
        SCOPE_RULE,
        "",
        VERDICT_RULE,
        "",
        load_ledger().statement(),
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([" --- "] * len(header)) + "|",
    ]
    for row in rows:
        cells = [row.claim, row.strategy, row.evidence, row.measured, verdict_text(row, "**"), row.why]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def claims_console_table(rows: list[ClaimRow], where: str, untested: int = 0) -> Table:
    """The primary contrasts' rows as a console table whose cells wrap to the terminal (claim, strategy, stream,
    measured, verdict); the other rows (secondary: descriptive, never a verdict) are only counted in its caption, so that
    nothing on the console reads as a decision that is not one. Every row, the rule and each row's reason are in
    ``where`` (the run's claims.md), as are the ``untested`` rows the caller left out (claims the run does not
    value)."""
    primary = [row for row in rows if row.contrast]
    others = len(rows) - len(primary)
    notes = [f"{others} other rows (secondary: descriptive, not adjusted, no verdict)" if others else "",
             f"{untested} claims this run does not test" if untested else ""]
    caption = "; ".join(note for note in notes if note)
    table = Table(title=f"Paper's claims: the primary contrasts (rule and reasons: {where})", show_lines=True,
                  caption=f"{caption}: in claims.md" if caption else None)
    for name, ratio in (("Claim (paper)", 3), ("Strategy", 2), ("Stream", 1), ("Measured", 4),
                        ("Verdict (population)", 3)):
        table.add_column(name, ratio=ratio, overflow="fold")
    for row in primary:
        table.add_row(row.claim, row.strategy, row.evidence, row.measured, verdict_text(row))
    return table


def claims_json(rows: list[ClaimRow]) -> list[dict[str, str]]:
    return [asdict(row) for row in rows]
