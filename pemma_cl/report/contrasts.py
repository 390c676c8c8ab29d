"""The primary contrasts (``benchmarks/contrasts/primary.yaml``) and each seed's value of one.

Each paper claim names one primary contrast, declared in the file before the runs that judge it: a stream, a
strategy (and the reference it is paired with), a metric, an input setting, a structure, a margin and a direction.
A contrast scores its claim's input: one whose input is not among those its claim's wording names
(:data:`~pemma_cl.report.claim_rows.CLAIM_INPUTS`) is refused where the file is read.
Only these get held / not held (Holm-adjusted across them, :mod:`pemma_cl.report.verdicts`). A seed's value of a contrast
comes from that seed's own rows: its per-case rows (``cases.csv.gz``) where the run has them, else, for final Dice
only, its summary (runs written before per-case rows existed; forgetting then has no value, since its estimators need
the cases); a C-index gain from its prognosis rows (``seeds/seedN/prognosis.csv``).

The metrics (:data:`METRIC_LABELS`): ``final_dice``; ``forgetting_drop``, the drop from the just-trained state
(:func:`~pemma_cl.evaluation.cl_metrics.drop_forgetting`), which every forgetting contrast is declared with since
2026-12-06; ``forgetting``, the cross-fitted max-based form
(:func:`~pemma_cl.evaluation.cl_metrics.crossfit_forgetting`), which reads low on some shapes of forgetting and so
leans toward "no forgetting": it stays the summary's headline column and the metric stored decisions were made with
(:func:`as_recorded`); ``cindex_gain``, the C-index right after training the prognosis task of the contrast's input
minus the one right after the CT-only task, for one strategy (:func:`~pemma_cl.report.prognosis.cindex_gain`).

A contrast file is written for a cohort: its structures are ``aggregated`` (the mean over the data's structures,
valid for any data) or a structure of that cohort (the suite's file: the head-and-neck cohort's GTVp and GTVn),
checked against them where the file is read. A contrast naming a structure applies only to runs whose data have it
(:mod:`pemma_cl.report.verdicts`).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pemma_cl.core.errors import UserError
from pemma_cl.data.hecktor.layout import HEAD_AND_NECK_STRUCTURES
from pemma_cl.data.records import EHR, MODALITIES
from pemma_cl.evaluation.cl_metrics import crossfit_forgetting, drop_forgetting, weighted_forgetting
from pemma_cl.evaluation.per_case import aggregated_dice, read_cases, scored_at_every_state
from pemma_cl.report.claim_rows import CLAIM_INPUTS
from pemma_cl.report.prognosis import cindex_gain
from pemma_cl.report.summary import INPUTS
from pemma_cl.stats.case_bootstrap import CaseBootstrap, case_bootstrap, resample_halves
from pemma_cl.stats.sequential import BELOW, NON_INFERIOR, margin_threshold, on_claims_side
from pemma_cl.streams.spec import benchmarks_dir

__all__ = ["DIRECTIONS", "FORGETTING_METRICS", "METRICS", "METRIC_LABELS", "PrimaryContrast", "as_recorded",
           "case_value", "contrast_bootstrap", "contrast_rows", "load_primary_contrasts", "paired_case_intervals",
           "seed_cases", "seed_prognosis", "seed_values", "weighted_contrast_forgetting", "weighted_final_dice"]

#: The file, relative to the folder of the stream files.
PRIMARY_FILE = Path("contrasts") / "primary.yaml"
#: The per-case rows of a run folder and of each ``seeds/seedN/`` (see :mod:`pemma_cl.evaluation.per_case`).
CASES_FILE = "cases.csv.gz"
#: The prognosis rows of each ``seeds/seedN/`` (:mod:`pemma_cl.evaluation.prognosis_metric`'s columns).
PROGNOSIS_FILE = "prognosis.csv"
#: What each metric is, as a contrast's description names it.
METRIC_LABELS: dict[str, str] = {
    "final_dice": "final Dice",
    "forgetting_drop": "forgetting as the drop from the just-trained state",
    "forgetting": "cross-fitted max-based forgetting",
    "cindex_gain": "C-index gain over the CT-only prognosis task",
}
METRICS: tuple[str, ...] = tuple(METRIC_LABELS)
FORGETTING_METRICS: tuple[str, ...] = ("forgetting_drop", "forgetting")
#: The metric a stored ``--decide`` record valued a contrast with when the record names none (records written before
#: 2026-12-06, when every forgetting contrast was declared with the cross-fitted estimator).
UNRECORDED_METRICS: dict[str, str] = {"forgetting_drop": "forgetting"}
#: The input of the prognosis task a C-index gain is measured from: the paper's "adapting a CT model".
CINDEX_BASE_INPUT = "ct"
_ADDED = tuple(m for m in (*MODALITIES, EHR) if m != CINDEX_BASE_INPUT)
#: The inputs a C-index gain can be of: a prognosis task's modalities joined by ``+``, the base's and more
#: (``ct+pet``, ``ct+ehr``, ``ct+pet+ehr``).
CINDEX_INPUTS: tuple[str, ...] = tuple("+".join((CINDEX_BASE_INPUT, *more)) for k in range(1, len(_ADDED) + 1)
                                       for more in itertools.combinations(_ADDED, k))
DIRECTIONS: tuple[str, ...] = (NON_INFERIOR, BELOW)
#: The structures of the cohort the suite's contrast file is written for (the built-in cohort and HECKTOR 2022).
COHORT_STRUCTURES: tuple[str, ...] = tuple(HEAD_AND_NECK_STRUCTURES.values())


@dataclass(frozen=True)
class PrimaryContrast:
    """One declared contrast; ``non_inferior``: held when (strategy - reference) > -margin; ``below``: held when the
    value < margin."""

    name: str
    claim: str
    stream: str
    strategy: str
    reference: str | None
    metric: str
    input: str
    structure: str
    margin: float
    direction: str

    @property
    def boundary(self) -> float:
        """The value the claim must be beyond: ``-margin`` (non_inferior) or ``margin`` (below)."""
        return margin_threshold(self)

    def holds(self, value: float) -> bool:
        """Whether ``value`` is on the claim's side of :attr:`boundary`."""
        return on_claims_side(self.direction, value - self.boundary)

    def describe(self) -> str:
        """E.g. ``pemma-lora - early-fusion, final_dice (final Dice) ctpet (aggregated) > -0.030``."""
        what = self.strategy if self.reference is None else f"{self.strategy} - {self.reference}"
        side = ">" if self.direction == "non_inferior" else "<"
        return (f"{what}, {self.metric} ({METRIC_LABELS[self.metric]}) {self.input} ({self.structure}) {side} "
                f"{self.boundary:+.3f}")


def as_recorded(contrast: PrimaryContrast, metrics: dict[str, str]) -> PrimaryContrast:
    """The contrast as a stored ``--decide`` record valued it: with the metric the record names for it (``metrics``,
    the record's ``metrics``), else with :data:`UNRECORDED_METRICS`' (records written before they named one)."""
    metric = metrics.get(contrast.name, UNRECORDED_METRICS.get(contrast.metric, contrast.metric))
    return contrast if metric == contrast.metric else replace(contrast, metric=metric)


_CHOICES: dict[str, tuple[str, ...]] = {"metric": METRICS, "input": INPUTS, "direction": DIRECTIONS}


def load_primary_contrasts(path: Path | None = None,
                           structures: Sequence[str] = COHORT_STRUCTURES) -> list[PrimaryContrast]:
    """The contrasts of ``path`` (default: the suite's ``benchmarks/contrasts/primary.yaml``).

    Args:
        path: the contrast file.
        structures: the structures of the cohort the file is written for: a contrast's ``structure`` must be one
            of them or ``aggregated``.

    Raises:
        UserError: one line naming the file, the contrast and the field, if the file is not a list of contrasts.
    """
    path = path or benchmarks_dir() / PRIMARY_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read it as YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, list) or not raw:
        raise UserError(f"{path}: expected a non-empty list of contrasts")
    choices = {**_CHOICES, "structure": ("aggregated", *structures)}
    contrasts = [_contrast(path, k, entry, choices) for k, entry in enumerate(raw)]
    names = [c.name for c in contrasts]
    if len(set(names)) != len(names):
        raise UserError(f"{path}: contrast names must be unique, got {', '.join(names)}")
    return contrasts


def _contrast(path: Path, k: int, entry: Any, choices: dict[str, tuple[str, ...]]) -> PrimaryContrast:
    where = f"{path}: contrast {k + 1}"
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a mapping of {', '.join(f.name for f in fields(PrimaryContrast))}")
    entry = {"structure": "aggregated", **entry}
    names = [f.name for f in fields(PrimaryContrast)]
    unknown, missing = sorted(set(entry) - set(names)), [n for n in names if n not in entry]
    if unknown or missing:
        raise UserError(f"{where}: " + "; ".join(filter(None, [unknown and f"unknown field(s) {', '.join(unknown)}",
                                                               missing and f"missing field(s) {', '.join(missing)}"])))
    for name in ("name", "claim", "stream", "strategy"):
        if not isinstance(entry[name], str) or not entry[name]:
            raise UserError(f"{where}: field '{name}': expected a non-empty string, got {entry[name]!r}")
    if entry.get("metric") == "cindex_gain":  # a gain between two prognosis tasks of one strategy, no structure
        choices = {**choices, "input": CINDEX_INPUTS, "structure": ("aggregated",)}
        if entry["reference"] is not None:
            raise UserError(f"{where}: field 'reference': a cindex_gain contrast compares two tasks of one strategy; "
                            f"expected null, got {entry['reference']!r}")
    for name, allowed in choices.items():
        if entry[name] not in allowed:
            raise UserError(f"{where}: field '{name}': expected one of [{', '.join(allowed)}], got {entry[name]!r}")
    if isinstance(entry["margin"], bool) or not isinstance(entry["margin"], (int, float)):
        raise UserError(f"{where}: field 'margin': expected a number, got {entry['margin']!r}")
    if entry["reference"] is not None and not isinstance(entry["reference"], str):
        raise UserError(f"{where}: field 'reference': expected a strategy name or null, got {entry['reference']!r}")
    if entry["direction"] == "non_inferior" and entry["reference"] is None and entry["metric"] != "cindex_gain":
        raise UserError(f"{where}: field 'reference': direction non_inferior needs a reference strategy")
    wanted = CLAIM_INPUTS.get(entry["claim"])
    if wanted is not None and entry["input"] not in wanted:
        raise UserError(f"{where} ({entry['name']}): field 'input': its claim {entry['claim']!r} names input "
                        f"{' or '.join(wanted)}, got {entry['input']!r}")
    return PrimaryContrast(**{**entry, "margin": float(entry["margin"])})


def seed_cases(run_dir: Path, seed: int) -> Any | None:
    """The per-case rows of one seed (a :class:`pandas.DataFrame`: ``seeds/seedN/cases.csv.gz``, else that seed's
    rows of the run's own file), or None where the run has none (runs written before they existed)."""
    seed_dir = run_dir / "seeds" / f"seed{seed}"
    folder = next((f for f in (seed_dir, run_dir) if (f / CASES_FILE).is_file()), None)
    if folder is None:
        return None

    cases = read_cases(folder)
    return cases if folder == seed_dir else cases[cases["seed"] == seed]


def case_value(cases: Any, contrast: PrimaryContrast, seed: int = 0) -> float:
    """The contrast's value from per-case rows of one seed (every strategy's): strategy minus reference where there
    is one. Final Dice: the mean over test experiences of the aggregated Dice after the last step; forgetting: the
    mean over the earlier experiences of the drop from the just-trained state (``forgetting_drop``) or of the
    cross-fitted forgetting (``forgetting``, halves seeded with ``seed``). NaN where undefined (a C-index gain has
    no per-case rows: :func:`seed_values` reads it)."""
    value = _strategy_value(cases, contrast.strategy, contrast, seed)
    if contrast.reference is not None:
        value -= _strategy_value(cases, contrast.reference, contrast, seed)
    return value


def contrast_rows(cases: Any, contrast: PrimaryContrast) -> Any:
    """The rows a contrast reads: its strategies, input setting and structure(s); for final Dice the last step only;
    for forgetting the tracked cases of the experiences before the last (each scored at every step from the one it
    was trained at), the only cases its estimators read."""
    keep = (cases["input"] == contrast.input) & cases["strategy"].isin([contrast.strategy, contrast.reference])
    if contrast.structure != "aggregated":
        keep &= cases["structure"] == contrast.structure
    rows = cases[keep]
    if rows.empty or contrast.metric not in ("final_dice", *FORGETTING_METRICS):
        return rows
    last = rows.groupby("strategy")["trained_through"].transform("max")
    if contrast.metric == "final_dice":
        return rows[rows["trained_through"] == last]
    since_trained = (rows["trained_through"] >= rows["eval_experience"]) & (rows["eval_experience"] < last)
    return scored_at_every_state(rows[since_trained & (rows["trained_through"] >= 0)])


def contrast_bootstrap(cases: Any, contrast: PrimaryContrast, seed: int = 0) -> CaseBootstrap | None:
    """The case-level bootstrap of the contrast on one seed's per-case rows (paired, stratified by centre, the cases
    of :func:`contrast_rows` only; see :mod:`pemma_cl.stats.case_bootstrap`), its
    :data:`~pemma_cl.stats.case_bootstrap.N_RESAMPLES` resamples at once (:func:`weighted_final_dice`,
    :func:`weighted_contrast_forgetting`); None for a C-index gain (its prognosis rows hold no cases)."""
    rows = contrast_rows(cases, contrast)
    if contrast.metric == "final_dice":
        weighted = partial(weighted_final_dice, rows, contrast)
    elif contrast.metric in FORGETTING_METRICS:
        weighted = partial(weighted_contrast_forgetting, rows, contrast, seed=seed)
    else:
        return None
    return case_bootstrap(rows, lambda r: case_value(r, contrast, seed), seed, weighted=weighted)


def paired_case_intervals(cases: Any, strategies: Any, reference: str, seed: int = 0) -> dict[str, dict[str, Any]]:
    """One seed's paired final-Dice differences, each strategy minus ``reference`` under every input setting, with
    their case-level bootstrap intervals (:func:`contrast_bootstrap`: paired, stratified by centre, case sampling
    only): ``{strategy: {input: {"final_dice": {"mean", "low", "high", "n"}}}}``, ``n`` the resamples."""
    out: dict[str, dict[str, Any]] = {}
    for name in strategies:
        for inp in INPUTS:
            contrast = PrimaryContrast(f"{name}-minus-{reference}", "", "", name, reference, "final_dice", inp,
                                       "aggregated", 0.0, "non_inferior")
            found = contrast_bootstrap(cases, contrast, seed)
            if found is not None:
                low, high = found.interval
                estimate = {"mean": found.value, "low": low, "high": high, "n": found.n_resamples}
                out.setdefault(name, {})[inp] = {"final_dice": estimate}
    return out


def weighted_final_dice(rows: Any, contrast: PrimaryContrast, units: Any, weights: np.ndarray) -> np.ndarray:
    """The final-Dice contrast of every resample at once: each row of ``weights`` says how often each case of
    ``units`` is drawn, and the aggregated Dice of an experience is that of the weighted sums of TP, FP and FN
    (what :func:`~pemma_cl.evaluation.per_case.aggregated_dice` gives on the drawn rows)."""
    def one(strategy: str) -> np.ndarray:
        mine = rows[rows["strategy"] == strategy]
        where = pd.MultiIndex.from_frame(units).get_indexer(pd.MultiIndex.from_frame(mine[["centre", "case_id"]]))
        groups = mine.groupby(["eval_experience", "structure"]).ngroup().to_numpy()
        experience = mine.groupby(["eval_experience", "structure"])["eval_experience"].first().to_numpy()
        sums = {}
        for column in ("tp", "fp", "fn"):
            counts = np.zeros((groups.max() + 1, len(units)))
            np.add.at(counts, (groups, where), mine[column].to_numpy(dtype=float))
            sums[column] = weights @ counts.T  # resamples x (experience, structure)
        with np.errstate(invalid="ignore", divide="ignore"):
            dice = np.where(sums["tp"] + sums["fn"] > 0,
                            2 * sums["tp"] / (2 * sums["tp"] + sums["fp"] + sums["fn"]), np.nan)
            per_experience = np.stack([_nanmean(dice[:, experience == e]) for e in np.unique(experience)], axis=1)
            return _nanmean(per_experience)

    value = one(contrast.strategy)
    return value if contrast.reference is None else value - one(contrast.reference)


def weighted_contrast_forgetting(rows: Any, contrast: PrimaryContrast, units: Any, weights: np.ndarray,
                                 seed: int = 0) -> np.ndarray:
    """The forgetting contrast of every resample at once (:func:`~pemma_cl.evaluation.cl_metrics.weighted_forgetting`
    per earlier experience, averaged over them): ``rows`` from :func:`contrast_rows`, each row of ``weights`` how
    often each case of ``units`` is drawn. The cross-fitted form splits each resample's distinct drawn cases of an
    experience in halves (:func:`~pemma_cl.stats.case_bootstrap.resample_halves`, generator seeded with
    ``[seed, experience, 1]``), the same halves for the strategy and its reference."""
    where = pd.MultiIndex.from_frame(units[["centre", "case_id"]])
    index = where.get_indexer(pd.MultiIndex.from_frame(rows[["centre", "case_id"]]))
    structures = {name: k for k, name in enumerate(pd.unique(rows["structure"]))}
    experience = rows["eval_experience"].to_numpy()
    members = {int(j): np.unique(index[experience == j]) for j in np.unique(experience)}  # each one's cases (units)
    centres = units["centre"].to_numpy()
    halves = {j: resample_halves(centres[cases], weights[:, cases], np.random.default_rng([seed, j, 1]))
              for j, cases in members.items()} if contrast.metric == "forgetting" else {}

    def one(strategy: str) -> np.ndarray:
        per_experience = []
        for j, cases in members.items():
            mine = (rows["strategy"] == strategy).to_numpy() & (experience == j)
            if not mine.any():
                per_experience.append(np.full(len(weights), math.nan))
                continue
            group = rows[mine]
            steps = np.sort(group["trained_through"].unique())
            counts = np.zeros((len(cases), len(steps), len(structures), 3))
            counts[np.searchsorted(cases, index[mine]), np.searchsorted(steps, group["trained_through"]),
                   group["structure"].map(structures).to_numpy()] = group[["tp", "fp", "fn"]].to_numpy(dtype=float)
            value = weighted_forgetting(counts, weights[:, cases], halves.get(j))
            trained = contrast.metric == "forgetting" or steps[0] == j  # the drop needs the just-trained state
            per_experience.append(value if trained else np.full(len(weights), math.nan))
        return _nanmean(np.stack(per_experience, axis=1))

    value = one(contrast.strategy)
    return value if contrast.reference is None else value - one(contrast.reference)


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Row means over the finite entries (NaN, without a warning, for a row with none)."""
    finite = ~np.isnan(values)
    return np.where(finite.any(axis=1), np.where(finite, values, 0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1),
                    np.nan)


def _strategy_value(cases: Any, strategy: str, contrast: PrimaryContrast, seed: int) -> float:

    rows = contrast_rows(cases, contrast)
    rows = rows[rows["strategy"] == strategy]
    if rows.empty:
        return math.nan
    if contrast.metric == "final_dice":
        per_experience = [aggregated_dice(group) for _, group in rows.groupby("eval_experience")]
    elif contrast.metric == "forgetting":
        per_experience = list(crossfit_forgetting(rows, seed).values())
    elif contrast.metric == "forgetting_drop":
        per_experience = list(drop_forgetting(rows).values())
    else:
        return math.nan
    finite = [v for v in per_experience if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def seed_values(run_dir: Path, contrast: PrimaryContrast, seeds: Sequence[int] | None = None) -> dict[int, float]:
    """Each seed's value of ``contrast`` in a stored run, computed from that seed's own rows (seeds without a
    finite value left out; forgetting needs per-case rows, so a run without them gives ``{}``; a C-index gain reads
    the seed's prognosis rows, :func:`seed_prognosis`).

    Args:
        run_dir: a published run folder, or (with ``seeds``) a partial one whose ``seeds/seed<S>/`` are written.
        contrast: the contrast.
        seeds: the seeds to value; None: those of the run's ``summary.json``.

    Raises:
        UserError: the run's ``summary.json`` (or a seed's) is missing or unreadable.
    """
    summary = _json(run_dir / "summary.json") if seeds is None else None
    values = {}
    for seed in (summary.get("seeds") or []) if summary is not None else seeds:
        if contrast.metric == "cindex_gain":
            rows = seed_prognosis(run_dir, seed)
            if rows is not None:
                values[seed] = cindex_gain(rows, contrast.strategy, contrast.input, CINDEX_BASE_INPUT)
            continue
        cases = seed_cases(run_dir, seed)
        if cases is not None:
            values[seed] = case_value(cases, contrast, seed)
        elif contrast.metric == "final_dice" and contrast.structure == "aggregated":
            values[seed] = _summary_value(run_dir, summary, seed, contrast)
    return {seed: value for seed, value in values.items() if not math.isnan(value)}


def seed_prognosis(run_dir: Path, seed: int) -> list[dict[str, Any]] | None:
    """The prognosis rows of one seed (``seeds/seedN/prognosis.csv``: every strategy's C-index of every prognosis
    test experience after each step, as records; NaN where undefined), or None where the seed has none.

    Raises:
        UserError: the file is there but not readable as CSV.
    """
    path = run_dir / "seeds" / f"seed{seed}" / PROGNOSIS_FILE
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, dtype={"strategy": str, "input": str}, keep_default_na=False,
                           na_values=dict.fromkeys(("cindex", "low", "high"), [""])).to_dict("records")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise UserError(f"{path}: cannot read it as CSV: {exc}") from None


def _summary_value(run_dir: Path, summary: dict[str, Any] | None, seed: int, contrast: PrimaryContrast) -> float:
    """Final Dice of a seed from its ``seeds/seedN/summary.json`` (a one-seed run: the run's own summary)."""
    seed_file = run_dir / "seeds" / f"seed{seed}" / "summary.json"
    if seed_file.is_file():
        strategies, pick = _json(seed_file), (lambda entry: entry)
    else:
        if summary is None or len(summary["seeds"]) != 1:
            raise UserError(f"{seed_file}: not found; expected the seed's summary beside the run's")
        strategies, pick = summary["strategies"], (lambda entry: (entry or {}).get("mean"))

    def one(name: str) -> float:
        value = pick(strategies.get(name, {}).get("inputs", {}).get(contrast.input, {}).get("final_dice"))
        return math.nan if value is None else float(value)

    return one(contrast.strategy) - (0.0 if contrast.reference is None else one(contrast.reference))


def _json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found; expected a run folder written by 'pemma-bench run'") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read it as JSON: {exc}") from None
    if not isinstance(content, dict):
        raise UserError(f"{path}: expected a JSON object")
    return content
