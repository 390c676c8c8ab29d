"""Verdicts on the primary contrasts (:mod:`pemma_cl.report.contrasts`): the only rows of the claims table that can read
``held`` or ``not held``.

* **One seed**: the contrast's value with its case-level bootstrap interval (:mod:`pemma_cl.stats.case_bootstrap`,
  case sampling only), and the verdict :data:`ONE_SEED`: a seed's other draws move a paired Dice difference by about
  0.07, more than the margins, and one seed cannot show that.
* **Several seeds of a fixed-seed run**: the mean and its t-interval over seeds, verdict "N seeds: indicative",
  whatever their number. A fixed-seed run is not a trial of the alpha ledger, so it never decides: only a
  ``--decide`` run does (below), each within the level its ledger trial declared before it ran, which keeps every
  verdict inside the familywise bound the ledger states.
* **A contrast that names a structure** applies only to runs whose data have that structure (``aggregated`` applies
  to every run): on a run of other data its row reads :data:`~pemma_cl.report.claim_rows.DOES_NOT_APPLY`, neither an
  error nor a verdict, and it counts in Holm's family as untested.
* **A** ``--decide`` **run** (its configuration has ``max_seeds``): its looks are replayed from its seeds' per-case
  rows under the rule its record names (:func:`pemma_cl.report.decisions.replay_record`) and its stream's contrasts
  take the group-sequential plan's decision at their last look (``undecided``: ``inconclusive``), never a
  fixed-sample t-test of seeds whose number the plan chose. Each contrast was tested at the level of its trial in the
  alpha ledger (:mod:`pemma_cl.report.ledger`), or, in the runs stored before it, by Holm across the family their
  record declared, with z-mapped bounds (the row says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pemma_cl.stats.case_bootstrap import CaseBootstrap
from pemma_cl.stats.intervals import CONFIDENCE, t_interval
from pemma_cl.report.claim_rows import DOES_NOT_APPLY, HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTED, ClaimRow, StoredRun
from pemma_cl.report.contrasts import (
    FORGETTING_METRICS,
    PrimaryContrast,
    as_recorded,
    contrast_bootstrap,
    seed_cases,
    seed_values,
)
from pemma_cl.report.decisions import BOUND_WORDS, replay_record

__all__ = ["ONE_SEED", "primary_rows"]

ONE_SEED = "one seed: indicative"
#: Why a fixed-seed run's row has no verdict, whatever its number of seeds.
DECIDED_BY = "decided only by a --decide run, within its trial's level in the alpha ledger"
NO_CASES = "no per-case rows: case-level intervals unavailable"


@dataclass(frozen=True)
class Outcome:
    """What the runs say about one contrast: its seeds' values, the run they come from, or why there are none."""

    contrast: PrimaryContrast
    values: dict[int, float]
    evidence: str = "–"
    missing: str | None = None
    #: Why the contrast does not apply to the run (its data lack the contrast's structure); None: it applies.
    inapplicable: str | None = None
    case: CaseBootstrap | None = None
    #: The contrast's last look in a ``--decide`` run's record, and the record (its plan).
    sequential: tuple[dict[str, Any], dict[str, Any]] | None = None
    #: The run the values come from (None: no run of the contrast's stream).
    run: StoredRun | None = None

    @property
    def scope(self) -> str:
        """The population of the run the values come from (:meth:`StoredRun.scope`); empty without a run."""
        return "" if self.run is None else self.run.scope(self.contrast.strategy)


def outcome(runs: Sequence[StoredRun], contrast: PrimaryContrast, records: dict[Path, dict[str, Any]]) -> Outcome:
    """The seeds' values of ``contrast`` in the run of its stream with the most seeds among those that can value it
    (both its strategies; a ``--decide`` run only for a contrast it decided), case bootstrap with one seed; or its
    last look if that run is a ``--decide`` run (``records``: the decide runs' replayed records, by folder, filled as
    they are needed)."""
    candidates = [r for r in runs if r.stream == contrast.stream]
    if not candidates:
        return Outcome(contrast, {}, missing=f"needs a run of stream {contrast.stream}")
    usable = [r for r in candidates if _can_value(r, contrast)]
    run = max(usable or candidates, key=lambda r: len(r.summary.get("seeds") or []))
    if not run.has_structure(contrast.structure):
        return Outcome(contrast, {}, run.stream, run=run, inapplicable=(
            f"the run's data have no structure {contrast.structure} (they have {', '.join(run.structures)})"))
    absent = [n for n in (contrast.strategy, contrast.reference) if n is not None and n not in run.strategies]
    if absent:
        return Outcome(contrast, {}, run.stream, run=run, missing=f"needs {' and '.join(absent)} in the run")
    if run.max_seeds is not None:
        if run.folder not in records:
            records[run.folder] = replay_record(run.folder, run.stream, list(run.strategies), run.decided,
                                                run.summary["seeds"], run.max_seeds, run.decide_record)
        record = records[run.folder]
        if contrast.name not in record["decisions"]:
            return Outcome(contrast, {}, run.stream, run=run, missing="the --decide run did not decide it (--contrast)")
        # the contrast as the record valued it (its metric named in the row: a stored decision keeps its estimator)
        return Outcome(as_recorded(contrast, record.get("metrics") or {}), {}, run.stream, run=run,
                       sequential=(last_look(record, contrast.name), record))
    values = seed_values(run.folder, contrast)
    if not values:
        return Outcome(contrast, {}, run.stream, run=run, missing=f"{NO_CASES}, and forgetting needs them"
                       if contrast.metric in FORGETTING_METRICS else "undefined in this run")
    if len(values) > 1:
        return Outcome(contrast, values, run.stream, run=run)
    [seed] = values
    cases = seed_cases(run.folder, seed)
    case = None if cases is None else contrast_bootstrap(cases, contrast, seed)
    return Outcome(contrast, values, run.stream, case=case, run=run)


def _can_value(run: StoredRun, contrast: PrimaryContrast) -> bool:
    """Whether ``run`` has the contrast's strategies and structure and, if it is a ``--decide`` run, decided it."""
    needed = [name for name in (contrast.strategy, contrast.reference) if name is not None]
    decided = run.max_seeds is None or not run.decided or contrast.name in run.decided
    return decided and run.has_structure(contrast.structure) and all(name in run.strategies for name in needed)


def last_look(record: dict[str, Any], name: str) -> dict[str, Any]:
    """Contrast ``name``'s row at the last look a ``--decide`` record has of it."""
    return [row for look in record["history"] for row in look["contrasts"] if row["contrast"] == name][-1]


def primary_rows(runs: Sequence[StoredRun], contrasts: Sequence[PrimaryContrast]) -> list[ClaimRow]:
    """One claims-table row per declared contrast, with its verdict (see the module docstring)."""
    records: dict[Path, dict[str, Any]] = {}
    return [_row(outcome(runs, c, records)) for c in contrasts]


def _row(found: Outcome) -> ClaimRow:
    contrast = found.contrast
    why = f"primary contrast '{contrast.name}': {contrast.describe()}"
    if found.inapplicable:
        return ClaimRow(contrast.claim, contrast.strategy, found.evidence, "–", DOES_NOT_APPLY,
                        f"{why}; {found.inapplicable}", contrast=contrast.name, scope=found.scope)
    if found.missing:
        return ClaimRow(contrast.claim, contrast.strategy, found.evidence, "–", NOT_TESTED, f"{why}; {found.missing}",
                        contrast=contrast.name, scope=found.scope)
    if found.sequential:
        return _sequential_row(found, why)
    values = found.values
    if len(values) == 1:
        [value] = values.values()
        case = NO_CASES if found.case is None else (
            "{:.0%} case-level interval [{:+.3f}, {:+.3f}] (case sampling only, {} resamples)".format(
                CONFIDENCE, *found.case.interval, found.case.n_resamples))
        return ClaimRow(contrast.claim, contrast.strategy, found.evidence, f"{value:+.3f}; {case}", ONE_SEED,
                        f"{why}; {DECIDED_BY}", contrast=contrast.name, scope=found.scope)
    estimate = t_interval(values.values())
    measured = (f"mean {estimate.mean:+.3f} over {len(values)} seeds; 95% interval over seeds "
                f"[{estimate.low:+.3f}, {estimate.high:+.3f}]")
    return ClaimRow(contrast.claim, contrast.strategy, found.evidence, measured, f"{len(values)} seeds: indicative",
                    f"{why}; {DECIDED_BY}", contrast=contrast.name, scope=found.scope)


def _sequential_row(found: Outcome, why: str) -> ClaimRow:
    """The row of a contrast a ``--decide`` run looked at: its plan's decision at the contrast's last look."""
    row, record = found.sequential
    decision = {HELD: HELD, NOT_HELD: NOT_HELD}.get(row["decision"], INCONCLUSIVE)
    low, high = row["interval"]
    measured = (f"mean {row['mean']:+.3f} over {row['n']} seeds; repeated confidence interval [{low:+.3f}, "
                f"{high:+.3f}] (p = {row['p']:.3g}, decides at p <= {row['p_bound']:.2g})")
    levels = record.get("levels")
    rule = (f"level {levels[found.contrast.name]:.2g} of its trial in the alpha ledger" if levels else
            f"Holm across the {record['family']} declared, familywise error {record['alpha']:.0%}")
    plan = (f"--decide: looks at {', '.join(map(str, record['looks']))} seeds, O'Brien-Fleming-type "
            f"{BOUND_WORDS[record['bounds']]}, {rule}; {record['stopped']}")
    return ClaimRow(found.contrast.claim, found.contrast.strategy, found.evidence, measured, decision,
                    f"{why}; {plan}", contrast=found.contrast.name, scope=found.scope)
