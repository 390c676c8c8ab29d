"""The paper's claims, checked against stored runs: each one ``held``, ``not held`` or ``not tested here``, with why.

Reads only what ``pemma-bench run`` stored (``config.json`` for the stream, ``summary.json`` for the numbers),
so ``pemma-bench claims RUN_DIR...`` can weigh several runs (e.g. one of ``paper`` and one of ``paper-ct``)
together. A run is evidence for a claim by what its stream declares, not by its name:

* a **CT+PET stream** (every experience brings CT and PET: ``paper``, ``centers``) tests Dice against early
  fusion and continual learning of new centres with CT+PET;
* a **single-modality stream** (PET arrives, later experiences bring CT only: ``paper-ct``, ``centers-ct``)
  tests the PET gain after a CT-only update, no forgetting of PET, and continual learning with CT only;
* a **prognosis stream** (it has prognosis experiences: ``modalities``) tests the C-index gains from adding PET
  and EHR (relative gains of the C-index right after each prognosis task, against the larger of the two bootstrap
  half-widths with one seed) and that learning prognosis does not make the model forget segmentation.

Every claim is a threshold on a measured quantity (a Dice difference against early fusion, a forgetting). With one
seed the verdict reads the value against the threshold, with one margin, :data:`SEED_SPREAD`: one seed separates
nothing closer than that (the same commit and seed gave 0.448 and 0.436 on two machines). With several seeds it
reads the 95% interval over seeds (for differences against early fusion, the paired one): ``held`` when the whole
interval is on the claim's side of the threshold, ``not held`` when the whole interval is on the other side, and
``inconclusive`` when the interval straddles it (the seeds cannot tell). Task-aware PEMMA keeps one adapter set per task, so its
forgetting is zero by construction: it cannot test a forgetting claim, and its rows say so.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pemma_cl.core.errors import UserError
from pemma_cl.core.task_kinds import PROGNOSIS, SEGMENTATION
from pemma_cl.report.seeds import check_run_summary

#: Dice differences within this margin are not separated by one seed (see the module docstring).
SEED_SPREAD = 0.03
#: The paper's relative gain in PET Dice of PEMMA over early fusion after a single-modality update.
PAPER_PET_GAIN = 0.28
#: The paper's trainable share of PEMMA.
PAPER_TRAINABLE_PCT = 8.0
REFERENCE = "early-fusion"
#: The paper's relative C-index gains of PEMMA over its CT-only prognosis model, by the richer model's modalities.
PAPER_CINDEX_GAINS: dict[str, float] = {"ct+pet": 0.10, "ct+pet+ehr": 0.23}
HELD, NOT_HELD, INCONCLUSIVE, NOT_TESTED = "held", "not held", "inconclusive", "not tested here"
TASK_AWARE_PREFIX = "task-aware"


@dataclass(frozen=True)
class ClaimRow:
    """One line of the claims table."""

    claim: str
    strategy: str
    evidence: str
    measured: str
    verdict: str
    why: str


@dataclass(frozen=True)
class StoredRun:
    """What the claims need from one run folder."""

    folder: Path
    stream: str
    modalities: list[tuple[str, ...]]
    summary: dict[str, Any]
    kinds: list[str] | None = None

    @property
    def kind(self) -> str | None:
        """``prognosis`` (the stream has prognosis experiences), ``ctpet`` (every experience CT+PET), ``single`` (PET
        first, CT-only updates later) or None."""
        if PROGNOSIS in (self.kinds or ()):
            return PROGNOSIS
        if all(m == ("ct", "pet") for m in self.modalities):
            return "ctpet"
        first_pet = next((i for i, m in enumerate(self.modalities) if "pet" in m), None)
        if first_pet is not None and any(m == ("ct",) for m in self.modalities[first_pet + 1:]):
            return "single"
        return None

    @property
    def strategies(self) -> dict[str, Any]:
        return self.summary["strategies"]

    def value(self, strategy: str, setting: str, metric: str) -> float | None:
        """The mean over seeds of a metric, or None where the run does not have it."""
        value = self.strategies.get(strategy, {}).get("inputs", {}).get(setting, {}).get(metric, {}).get("mean")
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)

    def interval(self, strategy: str, setting: str, metric: str) -> tuple[float, float] | None:
        """The 95% interval over seeds of a metric, or None (one seed, or undefined)."""
        estimate = self.strategies.get(strategy, {}).get("inputs", {}).get(setting, {}).get(metric, {})
        return None if estimate.get("low") is None else (estimate["low"], estimate["high"])

    def paired(self, strategy: str, setting: str, metric: str) -> tuple[float, float] | None:
        """The 95% interval over seeds of *strategy minus early fusion*, or None (one seed, or another reference)."""
        if self.summary.get("reference") != REFERENCE:
            return None
        estimate = self.summary.get("paired", {}).get(strategy, {}).get(setting, {}).get(metric, {})
        return None if estimate.get("low") is None else (estimate["low"], estimate["high"])


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
    """A run from its configuration (``RunConfig.to_dict()``) and summary, as stored in ``folder``.

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
    return StoredRun(folder=folder, stream=name, modalities=modalities, summary=summary, kinds=kinds)


def pemma_strategies(run: StoredRun) -> list[str]:
    return [name for name in run.strategies if name.startswith("pemma")]


def _evaluation(run: StoredRun, strategy: str) -> str | None:
    """How the strategy was evaluated, or None for runs that did not record it."""
    return run.strategies[strategy].get("evaluation")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _interval_text(interval: tuple[float, float] | None, what: str) -> str:
    return "" if interval is None else f"; {what} 95% interval [{interval[0]:+.3f}, {interval[1]:+.3f}]"


def _verdict(value: float, interval: tuple[float, float] | None, holds) -> str:
    """``held``/``not held`` from ``holds(value)`` with one seed; with an interval, ``held`` only if ``holds`` at
    both ends, ``not held`` only if at neither, else ``inconclusive`` (``holds`` is monotone in its argument)."""
    if interval is None:
        return HELD if holds(value) else NOT_HELD
    ends = [holds(end) for end in interval]
    return HELD if all(ends) else NOT_HELD if not any(ends) else INCONCLUSIVE


def _all_verdicts(verdicts: list[str]) -> str:
    """A claim over several settings: held if held for all, not held if not held for one, else inconclusive."""
    return NOT_HELD if NOT_HELD in verdicts else HELD if all(v == HELD for v in verdicts) else INCONCLUSIVE


def _dice_vs_early_fusion(runs: list[StoredRun], shares: dict[str, float]) -> list[ClaimRow]:
    claim = "Dice comparable to early fusion with ~8% trainable parameters"
    rows = []
    for run in (r for r in runs if r.kind == "ctpet"):
        for strategy in pemma_strategies(run):
            mine, theirs = run.value(strategy, "ctpet", "final_dice"), run.value(REFERENCE, "ctpet", "final_dice")
            share = shares.get("dora" if "dora" in strategy else "lora")
            share_text = f"{share:.1f}% trainable at the paper preset" if share is not None else "share unknown"
            if mine is None or theirs is None:
                rows.append(ClaimRow(claim, strategy, run.stream, _fmt(mine), NOT_TESTED,
                                     f"needs {strategy} and {REFERENCE} in the same run"))
                continue
            gap, interval = mine - theirs, run.paired(strategy, "ctpet", "final_dice")
            verdict = _verdict(gap, interval, lambda difference: difference >= -SEED_SPREAD)
            small = share is not None and share <= PAPER_TRAINABLE_PCT + 2
            measured = (f"CT+PET Dice {mine:.3f} vs {REFERENCE} {theirs:.3f} ({gap:+.3f}"
                        f"{_interval_text(interval, 'paired')}); {share_text}")
            why = f"held if the difference is >= -{SEED_SPREAD}"
            if not small:
                why += f"; trainable share above {PAPER_TRAINABLE_PCT + 2:.0f}%"
                verdict = NOT_HELD
            rows.append(ClaimRow(claim, strategy, run.stream, measured, verdict, why))
    return rows or [ClaimRow(claim, "pemma-*", "–", "–", NOT_TESTED, "needs a run of a CT+PET stream (paper, centers)")]


def _pet_gain_after_ct_update(runs: list[StoredRun]) -> list[ClaimRow]:
    claim = "+28% PET Dice over early fusion after a single-modality (CT-only) update"
    rows = []
    for run in (r for r in runs if r.kind == "single"):
        for strategy in pemma_strategies(run):
            mine, theirs = run.value(strategy, "ctpet", "final_dice"), run.value(REFERENCE, "ctpet", "final_dice")
            if mine is None or theirs is None:
                rows.append(ClaimRow(claim, strategy, run.stream, _fmt(mine), NOT_TESTED,
                                     f"needs {strategy} and {REFERENCE} in the same run"))
                continue
            interval = run.paired(strategy, "ctpet", "final_dice")
            gain = (mine - theirs) / theirs if theirs > 0 else math.inf
            relative = f"{gain:+.0%}" if math.isfinite(gain) else "relative gain undefined"
            verdict = _verdict(mine - theirs, interval, lambda difference: difference > SEED_SPREAD and (
                theirs <= 0 or difference / theirs >= PAPER_PET_GAIN))
            measured = (f"final CT+PET Dice {mine:.3f} vs {REFERENCE} {theirs:.3f}: {relative}"
                        f"{_interval_text(interval, 'paired difference')} "
                        f"(PET-only input: {_fmt(run.value(strategy, 'pet', 'final_dice'))} vs "
                        f"{_fmt(run.value(REFERENCE, 'pet', 'final_dice'))})")
            why = ("compared: mean CT+PET Dice over every experience after the last CT-only update, PEMMA over "
                   f"early fusion (our reading of 'PET Dice'); held if >= +{PAPER_PET_GAIN:.0%} and > {SEED_SPREAD}")
            rows.append(ClaimRow(claim, strategy, run.stream, measured, verdict, why))
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
                                     "the run does not record whether it was evaluated task-aware"))
            elif evaluation.startswith(TASK_AWARE_PREFIX):
                rows.append(ClaimRow(claim, strategy, run.stream, measured, NOT_TESTED,
                                     "task-aware: earlier tasks keep their own adapter set, so 0 by construction"))
            elif any(v is None for v in values.values()):
                rows.append(ClaimRow(claim, strategy, run.stream, measured, NOT_TESTED, "forgetting undefined"))
            else:
                verdict = _all_verdicts([_verdict(values[s], intervals[s], lambda f: f <= SEED_SPREAD) for s in settings])
                why = (f"task-agnostic (one shared adapter set); held if every forgetting <= {SEED_SPREAD}")
                rows.append(ClaimRow(claim, strategy, run.stream, measured, verdict, why))
    return rows or [ClaimRow(claim, "pemma-*", "–", "–", NOT_TESTED, missing)]


def check_claims(runs: list[StoredRun], shares: dict[str, float]) -> list[ClaimRow]:
    """The claims table of some runs.

    Args:
        runs: the stored runs to weigh.
        shares: trainable share (percent, per served task) of PEMMA at the ``paper`` preset, by ``lora``/``dora``.
    """
    single = "needs a run of a single-modality stream (paper-ct, centers-ct)"
    rows = _dice_vs_early_fusion(runs, shares)
    rows += _pet_gain_after_ct_update(runs)
    rows += _no_forgetting(runs, "single", "No forgetting of PET when updating with CT only", ("pet", "ctpet"), single)
    rows += _no_forgetting(runs, "ctpet", "Continual learning of new centres with CT+PET, without forgetting",
                           ("ctpet",), "needs a run of a CT+PET stream (paper, centers)")
    rows += _no_forgetting(runs, "single", "Continual learning of new centres with CT only, without forgetting",
                           ("ct", "ctpet"), single)
    rows += _cindex_gain(runs, "ct+pet", PAPER_CINDEX_GAINS["ct+pet"])
    rows += _cindex_gain(runs, "ct+pet+ehr", PAPER_CINDEX_GAINS["ct+pet+ehr"])
    rows += _no_forgetting(runs, PROGNOSIS, "No forgetting of segmentation when adapting to prognosis",
                           ("ct", "pet", "ctpet"), "needs a run of a prognosis stream (modalities)")
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
                                 f"needs prognosis tasks from ct and from {richer} in the stream"))
            continue
        for strategy in (name for name in block["strategies"] if name.startswith("pemma")):
            entry = block["strategies"][strategy]
            base, better = entry[task_of["ct"]]["own"], entry[task_of[richer]]["own"]
            if base.get("mean") is None or better.get("mean") is None:
                rows.append(ClaimRow(claim, strategy, run.stream, "–", NOT_TESTED, "C-index undefined"))
                continue
            difference, wanted = better["mean"] - base["mean"], gain * base["mean"]
            halves = [(e["high"] - e["low"]) / 2 for e in (base, better) if e.get("low") is not None]
            half = max(halves, default=SEED_SPREAD)
            verdict = HELD if difference >= wanted and difference > half else \
                NOT_HELD if wanted - difference > half else INCONCLUSIVE
            measured = (f"C-index {base['mean']:.3f} (ct) -> {better['mean']:.3f} ({richer}): "
                        f"{difference / base['mean']:+.0%} (interval half-width {half:.3f})")
            why = (f"relative gain of the C-index right after each task; held if >= +{gain:.0%} and the difference "
                   "exceeds the larger interval half-width, not held if it falls short by more than it")
            rows.append(ClaimRow(claim, strategy, run.stream, measured, verdict, why))
    return rows or [ClaimRow(claim, "pemma-*", "–", "–", NOT_TESTED, "needs a run of a prognosis stream (modalities)")]


def paper_trainable_shares() -> dict[str, float]:
    """PEMMA's trainable share per served task at the ``paper`` preset (LoRA and DoRA), counted without training."""
    from pemma_cl.evaluation.cost import pemma_parameter_counts
    from pemma_cl.models.presets import PRESETS

    return {name: float(pemma_parameter_counts(PRESETS["paper"], use_dora=name == "dora", n_tasks=1)["pct_served"])
            for name in ("lora", "dora")}


def render_claims(rows: list[ClaimRow]) -> str:
    """The claims table as markdown, with the rule for each verdict above it."""
    header = ["Claim (paper)", "Strategy", "Evidence (stream)", "Measured", "Verdict", "Why"]
    lines = [
        f"Verdicts: with one seed, the value against the claim's threshold (a difference within {SEED_SPREAD} Dice is "
        "not separated by one seed); with several, the 95% interval over seeds (paired against early fusion for "
        "differences): held if all of it meets the claim, not held if none of it does, inconclusive if it straddles "
        "the threshold. Task-aware PEMMA cannot test a forgetting claim (zero by construction).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join([" --- "] * len(header)) + "|",
    ]
    for row in rows:
        cells = [row.claim, row.strategy, row.evidence, row.measured, f"**{row.verdict}**", row.why]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def claims_json(rows: list[ClaimRow]) -> list[dict[str, str]]:
    return [asdict(row) for row in rows]
