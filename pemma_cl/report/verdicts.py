"""Verdicts on the primary contrasts (:mod:`pemma_cl.report.contrasts`): the only rows of the claims table that can read
``held`` or ``not held``.

* **One seed**: the contrast's value with its case-level bootstrap interval (:mod:`pemma_cl.evaluation.case_bootstrap`,
  case sampling only), and the verdict :data:`ONE_SEED`: a seed's other draws move a paired Dice difference by about
  0.07, more than the margins, and one seed cannot show that.
* **Two to** :data:`MIN_SEEDS` **- 1 seeds**: the mean and its t-interval over seeds, verdict "N seeds: indicative".
  With so few seeds the standard deviation is itself a guess (at 3 seeds, 2 degrees of freedom, it falls below half
  the true one about one time in five), and a verdict would rest on that guess.
* **At least** :data:`MIN_SEEDS` **seeds**: a one-sample t-test of the seeds' values (each from its own cases)
  against the contrast's boundary, two-sided; the p-values are Holm-adjusted across *every* declared contrast (a
  contrast without a run counts as untested, p = 1), at a familywise error of :data:`FAMILYWISE_ERROR`. Adjusted
  p below it: ``held`` if the mean is on the claim's side of the boundary, else ``not held``; otherwise
  ``inconclusive``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pemma_cl.evaluation.case_bootstrap import CaseBootstrap
from pemma_cl.evaluation.intervals import CONFIDENCE, t_interval
from pemma_cl.report.claim_rows import HELD, INCONCLUSIVE, NOT_HELD, NOT_TESTED, ClaimRow, StoredRun
from pemma_cl.report.contrasts import PrimaryContrast, contrast_bootstrap, seed_cases, seed_values

__all__ = ["FAMILYWISE_ERROR", "MIN_SEEDS", "ONE_SEED", "holm", "primary_rows"]

#: Seeds below which no primary contrast is decided (see the module docstring and docs/statistics.md).
MIN_SEEDS = 5
#: Familywise error of the primary contrasts' verdicts (Holm).
FAMILYWISE_ERROR = 0.05
ONE_SEED = "one seed: indicative"
NO_CASES = "no per-case rows: case-level intervals unavailable"


@dataclass(frozen=True)
class Outcome:
    """What the runs say about one contrast: its seeds' values, the run they come from, or why there are none."""

    contrast: PrimaryContrast
    values: dict[int, float]
    evidence: str = "–"
    missing: str | None = None
    case: CaseBootstrap | None = None

    @property
    def p_value(self) -> float | None:
        """Two-sided one-sample t-test of the seeds' values against the boundary; None below :data:`MIN_SEEDS`."""
        if self.missing or len(self.values) < MIN_SEEDS:
            return None
        values = np.array(list(self.values.values()))
        if np.ptp(values) == 0:  # no spread: the test is degenerate, and the values decide exactly
            return 0.0 if values[0] != self.contrast.boundary else 1.0
        return float(stats.ttest_1samp(values, self.contrast.boundary).pvalue)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (Holm, 1979); None (untested) counts in the family as p = 1.

    The k-th smallest p (k from 0) is multiplied by ``m - k``, capped at 1, and made non-decreasing in that order.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda k: 1.0 if p_values[k] is None else p_values[k])
    adjusted: list[float | None] = [None] * m
    running = 0.0
    for rank, k in enumerate(order):
        p = p_values[k]
        if p is not None:
            running = max(running, min(1.0, (m - rank) * p))
            adjusted[k] = running
    return adjusted


def outcome(runs: Sequence[StoredRun], contrast: PrimaryContrast) -> Outcome:
    """The seeds' values of ``contrast`` in the run of its stream with the most seeds (case bootstrap with one)."""
    candidates = [r for r in runs if r.stream == contrast.stream]
    if not candidates:
        return Outcome(contrast, {}, missing=f"needs a run of stream {contrast.stream}")
    run = max(candidates, key=lambda r: len(r.summary.get("seeds") or []))
    absent = [n for n in (contrast.strategy, contrast.reference) if n is not None and n not in run.strategies]
    if absent:
        return Outcome(contrast, {}, run.stream, f"needs {' and '.join(absent)} in the run")
    values = seed_values(run.folder, contrast)
    if not values:
        return Outcome(contrast, {}, run.stream, f"{NO_CASES}, and the cross-fitted forgetting needs them"
                       if contrast.metric == "forgetting" else "undefined in this run")
    if len(values) > 1:
        return Outcome(contrast, values, run.stream)
    [seed] = values
    cases = seed_cases(run.folder, seed)
    case = None if cases is None else contrast_bootstrap(cases, contrast, seed)
    return Outcome(contrast, values, run.stream, case=case)


def primary_rows(runs: Sequence[StoredRun], contrasts: Sequence[PrimaryContrast]) -> list[ClaimRow]:
    """One claims-table row per declared contrast, with its verdict (see the module docstring)."""
    outcomes = [outcome(runs, c) for c in contrasts]
    adjusted = holm([o.p_value for o in outcomes])
    return [_row(o, p) for o, p in zip(outcomes, adjusted)]


def _row(found: Outcome, adjusted: float | None) -> ClaimRow:
    contrast = found.contrast
    why = f"primary contrast '{contrast.name}': {contrast.describe()}"
    if found.missing:
        return ClaimRow(contrast.claim, contrast.strategy, found.evidence, "–", NOT_TESTED, f"{why}; {found.missing}",
                        contrast=contrast.name)
    values = found.values
    if len(values) == 1:
        [value] = values.values()
        case = NO_CASES if found.case is None else (
            "{:.0%} case-level interval [{:+.3f}, {:+.3f}] (case sampling only, {} resamples)".format(
                CONFIDENCE, *found.case.interval, found.case.n_resamples))
        return ClaimRow(contrast.claim, contrast.strategy, found.evidence, f"{value:+.3f}; {case}", ONE_SEED,
                        f"{why}; decided from {MIN_SEEDS} seeds", contrast=contrast.name)
    estimate = t_interval(values.values())
    measured = (f"mean {estimate.mean:+.3f} over {len(values)} seeds; 95% interval over seeds "
                f"[{estimate.low:+.3f}, {estimate.high:+.3f}]")
    if adjusted is None:
        return ClaimRow(contrast.claim, contrast.strategy, found.evidence, measured, f"{len(values)} seeds: indicative",
                        f"{why}; decided from {MIN_SEEDS} seeds", contrast=contrast.name)
    measured += f"; p = {found.p_value:.3g}, Holm-adjusted {adjusted:.3g}"
    verdict = INCONCLUSIVE if adjusted >= FAMILYWISE_ERROR else HELD if contrast.holds(estimate.mean) else NOT_HELD
    return ClaimRow(contrast.claim, contrast.strategy, found.evidence, measured, verdict,
                    f"{why}; Holm across the primary contrasts, familywise error {FAMILYWISE_ERROR:.0%}",
                    contrast=contrast.name)

