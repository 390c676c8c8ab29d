"""How many seeds a primary contrast needs, from a pilot run of three seeds or more (``pemma-bench plan``).

For each primary contrast of the run's stream: the variance of the seeds' values (each from its own cases), the
part of it that case sampling explains (the mean over seeds of the case-level bootstrap variance, from the per-case
rows), the rest (between seeds beyond case sampling), and two seed counts at the pilot's test-set size:

* for a paired 95% interval over seeds of half-width ``W``: the least ``n`` with ``t(0.975, n-1) · s / sqrt(n) <= W``;
* for deciding at the margin, given the pilot's effect ``d = |mean - boundary|``: the least ``n`` (at least
  :data:`MIN_SEEDS`) with ``(t(1 - a/2, n-1) + t(0.8, n-1)) · s / sqrt(n) <= d``, i.e.
  80% power at level ``a``: the level of the contrast's planned trial in the alpha ledger
  (:mod:`pemma_cl.report.ledger`), the one its decide run will be tested at, else ``5% / K`` (K
  declared contrasts);
* the range of that count over the pilot's own uncertainty: the count at the far end of an 80% interval for the
  true value with the standard deviation at the low end of its 80% interval (optimistic), and at the near end with
  the standard deviation at its high end (pessimistic). When the interval reaches the boundary the pessimistic end
  has no bound: the pilot cannot exclude a true value on the margin, where no number of seeds decides.
  ``benchmarks/plan_accuracy.py`` measures on known truth how often each count buys the power it promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from pemma_cl.core.errors import UserError
from pemma_cl.report.claims import load_run
from pemma_cl.report.contrasts import (
    PrimaryContrast,
    contrast_bootstrap,
    load_primary_contrasts,
    seed_cases,
    seed_values,
)
from pemma_cl.report.ledger import load_ledger
from pemma_cl.stats.sequential import ALPHA
from pemma_cl.report.verdicts import NO_CASES

__all__ = ["PILOT_SEEDS", "ContrastPlan", "SeedRange", "decide_counts", "plan_run", "range_ends", "render_plan",
           "seeds_to_decide", "seeds_to_decide_range", "seeds_for_half_width"]

#: Seeds a pilot run needs at least.
PILOT_SEEDS = 3
#: Seed counts are searched up to this; beyond it a plan says so.
MAX_SEEDS = 1000
#: The fewest seeds a count to decide may be: below it the seeds' standard deviation is itself a guess.
MIN_SEEDS = 5
POWER = 0.8
#: Two-sided confidence of the intervals (true value, standard deviation) a plan's range spans.
RANGE_CONFIDENCE = 0.8


@dataclass(frozen=True)
class SeedRange:
    """Seeds to decide at the two ends of a pilot's uncertainty (None: more than :data:`MAX_SEEDS`); ``unbounded``:
    the pilot's interval for the true value reaches the boundary, so the pessimistic end has no bound."""

    optimistic: int | None
    pessimistic: int | None
    unbounded: bool


@dataclass(frozen=True)
class ContrastPlan:
    """The variance components of one contrast in a pilot run and the seeds it needs."""

    contrast: PrimaryContrast
    values: dict[int, float]
    seed_variance: float
    case_variance: float | None
    for_half_width: int | None
    to_decide: int | None
    to_decide_range: SeedRange | None
    #: The level the seeds to decide are counted at (the contrast's planned trial's, else 5 % over the declared contrasts).
    alpha: float

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.values.values())))

    @property
    def beyond_cases(self) -> float | None:
        """Seed-to-seed variance left once case sampling is taken out (floored at 0)."""
        return None if self.case_variance is None else max(self.seed_variance - self.case_variance, 0.0)


def _least_n(start: int, multiplier, ratio) -> np.ndarray:
    """For each ``ratio`` (standard deviation over target), the least ``n`` in ``start..MAX_SEEDS`` with
    ``multiplier(n) * ratio / sqrt(n) <= 1``, or 0 where none is (``sqrt(n) / multiplier(n)`` grows with ``n``, so
    a sorted search finds it)."""
    n = np.arange(start, MAX_SEEDS + 1)
    reach = np.sqrt(n) / multiplier(n)
    index = np.searchsorted(reach, np.asarray(ratio, dtype=float), side="left")
    return np.where(index < n.size, n[np.minimum(index, n.size - 1)], 0)


def _as_count(found: np.ndarray) -> int | None:
    return int(found) if found else None


def seeds_for_half_width(sd: float, half_width: float) -> int | None:
    """Least number of seeds whose 95% t-interval has half-width ``<= half_width`` at standard deviation ``sd``."""
    return _as_count(_least_n(2, lambda n: stats.t.ppf(0.975, n - 1), sd / half_width))


def decide_counts(ratio, alpha: float) -> np.ndarray:
    """Vectorised :func:`seeds_to_decide` over ``ratio = sd / effect`` (0 where more than MAX_SEEDS are needed)."""
    return _least_n(MIN_SEEDS, lambda n: stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(POWER, n - 1), ratio)


def seeds_to_decide(sd: float, effect: float, alpha: float) -> int | None:
    """Least number of seeds (at least MIN_SEEDS) for power :data:`POWER` at two-sided level ``alpha`` against a
    true distance ``effect`` from the boundary; None if ``effect`` is 0 or more than :data:`MAX_SEEDS` are needed."""
    if effect == 0:
        return None
    return _as_count(decide_counts(sd / abs(effect), alpha))


def range_ends(values: np.ndarray, boundary: float) -> tuple[np.ndarray, ...]:
    """The ends of a pilot's uncertainty, vectorised over pilots (rows of ``values``): (far distance from the
    boundary, low standard deviation, near distance, high standard deviation), each from a two-sided
    :data:`RANGE_CONFIDENCE` interval (t for the mean, chi-square for the standard deviation)."""
    pilots = values.shape[-1]
    upper = (1 + RANGE_CONFIDENCE) / 2
    mean, sd = values.mean(axis=-1), values.std(axis=-1, ddof=1)
    half = stats.t.ppf(upper, pilots - 1) * sd / np.sqrt(pilots)
    distance = np.abs(mean - boundary)
    low_sd = sd * np.sqrt((pilots - 1) / stats.chi2.ppf(upper, pilots - 1))
    high_sd = sd * np.sqrt((pilots - 1) / stats.chi2.ppf(1 - upper, pilots - 1))
    return distance + half, low_sd, distance - half, high_sd


def seeds_to_decide_range(values: list[float], boundary: float, alpha: float) -> SeedRange:
    """:func:`seeds_to_decide` at the optimistic and pessimistic ends of a pilot's seed values."""
    far, low_sd, near, high_sd = (float(x) for x in range_ends(np.asarray(values, dtype=float), boundary))
    if near <= 0:
        return SeedRange(seeds_to_decide(low_sd, far, alpha), None, True)
    return SeedRange(seeds_to_decide(low_sd, far, alpha), seeds_to_decide(high_sd, near, alpha), False)


def plan_run(run_dir: Path, half_width: float, contrasts: list[PrimaryContrast] | None = None) -> list[ContrastPlan]:
    """The plan of every primary contrast of the run's stream that applies to the run's data (a contrast naming a
    structure the data lack does not).

    Raises:
        UserError: the folder is not a run, has fewer than :data:`PILOT_SEEDS` seeds, or its stream has no primary
            contrast that applies.
    """
    if half_width <= 0:
        raise UserError(f"--half-width: expected a positive number, got {half_width}")
    run = load_run(run_dir)
    seeds = run.summary.get("seeds") or []
    if len(seeds) < PILOT_SEEDS:
        raise UserError(f"{run_dir}: a plan needs a pilot run of at least {PILOT_SEEDS} seeds, this one has "
                        f"{len(seeds)} (run it with --seeds 0,1,2)")
    declared = contrasts if contrasts is not None else load_primary_contrasts()
    mine = [c for c in declared if c.stream == run.stream]
    if not mine:
        raise UserError(f"{run_dir}: stream {run.stream!r} has no primary contrast (declared for: "
                        f"{', '.join(sorted({c.stream for c in declared}))})")
    applicable = [c for c in mine if run.has_structure(c.structure)]  # a contrast of a structure the data lack: none
    if not applicable:
        raise UserError(f"{run_dir}: no primary contrast of stream {run.stream!r} applies to the run's data (they name "
                        f"{', '.join(sorted({c.structure for c in mine}))}; the data have "
                        f"{', '.join(run.structures)})")
    planned: dict[str, float] = {}
    for trial in load_ledger().trials:  # a contrast's first planned trial: the one its next decide run is
        if trial.planned:
            planned.setdefault(trial.contrast, trial.alpha)
    return [_plan(run_dir, c, half_width, planned.get(c.name, ALPHA / len(declared))) for c in applicable]


def _plan(run_dir: Path, contrast: PrimaryContrast, half_width: float, alpha: float) -> ContrastPlan:
    values = seed_values(run_dir, contrast)
    if len(values) < 2:
        return ContrastPlan(contrast, values, math.nan, None, None, None, None, alpha)
    seed_variance = float(np.var(list(values.values()), ddof=1))
    case_variances = []
    for seed in values:
        cases = seed_cases(run_dir, seed)
        found = None if cases is None else contrast_bootstrap(cases, contrast, seed)
        case_variances.append(None if found is None else found.se ** 2)
    case_variance = None if None in case_variances else float(np.mean(case_variances))
    sd = math.sqrt(seed_variance)
    effect = float(np.mean(list(values.values()))) - contrast.boundary
    return ContrastPlan(contrast, values, seed_variance, case_variance, seeds_for_half_width(sd, half_width),
                        seeds_to_decide(sd, effect, alpha),
                        seeds_to_decide_range(list(values.values()), contrast.boundary, alpha), alpha)


def render_plan(plans: list[ContrastPlan], half_width: float) -> str:
    """The plan as a markdown table, with what each column means under it."""
    header = ["Contrast", "Seeds", "Mean (boundary)", "Seed-to-seed variance", "of which case sampling",
              "beyond case sampling", f"Seeds for ±{half_width:g}", "Seeds to decide",
              f"its {RANGE_CONFIDENCE:.0%} range", "at level"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([" --- "] * len(header)) + "|"]
    for plan in plans:
        c = plan.contrast
        if len(plan.values) < 2:
            lines.append(f"| {c.name} | {len(plan.values)} | – | undefined (no value per seed: per-case rows "
                         "needed for forgetting) | – | – | – | – | – | – |")
            continue
        cells = [c.name, str(len(plan.values)), f"{plan.mean:+.3f} ({c.boundary:+.3f})", f"{plan.seed_variance:.5f}",
                 NO_CASES if plan.case_variance is None else f"{plan.case_variance:.5f}",
                 "–" if plan.beyond_cases is None else f"{plan.beyond_cases:.5f}",
                 _count(plan.for_half_width), _count(plan.to_decide), _range(plan.to_decide_range),
                 f"{plan.alpha:.2g}"]
        lines.append("| " + " | ".join(cells) + " |")
    note = (f"Seed-to-seed variance: of the seeds' values (each from its own cases); case sampling: the mean "
            f"case-level bootstrap variance; seeds for ±{half_width:g}: for a 95% interval over seeds that narrow; "
            f"seeds to decide: for {POWER:.0%} power at level (the level of the contrast's planned trial in the alpha "
            f"ledger, else {ALPHA:g} over the declared contrasts) given the pilot's "
            f"distance from the boundary (at least {MIN_SEEDS}); both at the pilot's test-set size. Its range: the "
            f"same count with the true value and the standard deviation at the ends of their {RANGE_CONFIDENCE:.0%} "
            "intervals from the pilot; no bound where that interval reaches the boundary (a true value on the margin "
            "is never decided). The count is for a fixed number of seeds; a decide run's looks need a few per cent "
            "more at the same power.")
    return "\n".join(lines) + "\n\n" + note + "\n"


def _count(n: int | None) -> str:
    return f"more than {MAX_SEEDS}" if n is None else str(n)


def _range(found: SeedRange) -> str:
    return f"{_count(found.optimistic)} to {'no bound' if found.unbounded else _count(found.pessimistic)}"
