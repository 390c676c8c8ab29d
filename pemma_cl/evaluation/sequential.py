"""Group-sequential decisions over seeds (``pemma-bench run --decide``): pre-set looks, O'Brien-Fleming-type
bounds, Holm across the primary contrasts.

The plan, fixed before the first seed runs (``docs/decide.md``):

* **Looks** at 3, 5, 8, 12, 18, ... seeds, cut at ``--max-seeds`` N (which is always the last look); information
  fraction ``t_k = n_k / N``.
* **Bounds**: Lan-DeMets alpha spending with the O'Brien-Fleming-type function ``a(t) = 2 - 2 Phi(z_{1-a/2} /
  sqrt(t))``, two-sided; the z bound ``c_k`` of look k spends ``a(t_k) - a(t_{k-1})`` given that no earlier look
  crossed (joint normal law of the looks' z statistics, ``corr = sqrt(t_i / t_j)``, :func:`scipy.stats.
  multivariate_normal`).
* **Statistic**: each contrast's paired t over the seeds run, against its margin (the value it is held or not held
  against). With 2 to 11 degrees of freedom a t is not a z: it is mapped to the bounds through its p-value
  (the *nominal significance level* approach of Jennison & Turnbull, ch. 11): look k decides when the t's
  two-sided p-value (t law with ``n_k - 1`` degrees of freedom) is at most the z bound's ``2 - 2 Phi(c_k)``.
  Equivalently, the repeated confidence interval ``mean +- t_{n_k-1}(1 - p_k/2) * sd / sqrt(n_k)`` excludes the
  margin.
* **Decision**: a crossing on the side the claim wants is ``held``, on the other side ``not held``; neither:
  ``continue``; at the last look, ``undecided``.
* **Multiplicity**: Holm across the primary contrasts at each look, on top of the spending (the graphical
  group-sequential Holm of Maurer & Bretz 2013): each open contrast is tested at local level ``alpha / (m - r)``,
  ``r`` the contrasts already decided, step-down by p-value within a look, and a decided contrast's level passes
  to the others. A decided contrast stays decided; the run stops when none is open or N is reached.

The familywise rate of false decisions (any decision on a contrast whose truth sits on its margin) is simulated
by :func:`simulate_false_decisions` (``benchmarks/sequential_error.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
from scipy import optimize, stats

from pemma_cl.core.errors import UserError

#: Familywise two-sided level of a decide run.
ALPHA = 0.05
#: Seed counts of the looks (cut at ``--max-seeds``, which is always the last look).
LOOK_SCHEDULE: tuple[int, ...] = (3, 5, 8, 12, 18, 27, 40, 60)
#: Alpha spent at one look below which its bound is the marginal one (see :func:`z_bounds`): well above the
#: integral's absolute error (1e-6).
RESOLVABLE_SPENDING = 1e-5
#: Directions of a primary contrast: held when the value is above ``-margin`` / below ``margin``.
NON_INFERIOR, BELOW = "non_inferior", "below"
HELD, NOT_HELD, CONTINUE, UNDECIDED = "held", "not held", "continue", "undecided"


class Contrast(Protocol):
    """What the plan reads of a primary contrast (:class:`pemma_cl.report.contrasts.PrimaryContrast`)."""

    name: str
    stream: str
    strategy: str
    reference: str | None
    margin: float
    direction: str


def look_schedule(max_seeds: int) -> tuple[int, ...]:
    """Seed counts of the looks up to ``max_seeds``: :data:`LOOK_SCHEDULE`'s below it, then ``max_seeds`` itself
    (the look before it dropped when it is only one seed short, a look that could add little).

    Raises:
        UserError: If ``max_seeds`` is below the first look.
    """
    if max_seeds < LOOK_SCHEDULE[0]:
        raise UserError(f"--max-seeds: expected at least {LOOK_SCHEDULE[0]} (the first look of --decide), "
                        f"got {max_seeds}")
    looks = [n for n in LOOK_SCHEDULE if n < max_seeds]
    if looks and max_seeds - looks[-1] < 2:
        looks.pop()
    return (*looks, max_seeds)


def obf_spending(fraction: float, alpha: float) -> float:
    """Lan-DeMets O'Brien-Fleming-type alpha spent by information fraction ``fraction`` (two-sided)."""
    return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(fraction)))


@functools.lru_cache(maxsize=256)
def z_bounds(looks: tuple[int, ...], alpha: float) -> tuple[float, ...]:
    """Two-sided z bounds ``c_k`` of the looks (seed counts) spending ``alpha`` by :func:`obf_spending`.

    Look k's bound solves ``P(|Z_i| < c_i for i < k) - P(|Z_i| < c_i for i <= k) = a(t_k) - a(t_{k-1})`` under
    the canonical joint law of the looks' statistics (``corr(Z_i, Z_j) = sqrt(n_i / n_j)``).
    """
    fractions = np.asarray(looks, dtype=float) / looks[-1]
    spent = [obf_spending(t, alpha) for t in fractions]
    bounds = [float(stats.norm.isf(spent[0] / 2))]
    for k in range(1, len(looks)):
        cov = np.sqrt(np.minimum.outer(fractions[: k + 1], fractions[: k + 1])
                      / np.maximum.outer(fractions[: k + 1], fractions[: k + 1]))
        target = spent[k] - spent[k - 1]
        if target < RESOLVABLE_SPENDING:
            # Below what the quasi-Monte Carlo integral resolves (a long plan's early looks at a small level: 60
            # seeds at 5 % / 6 spend 6e-20 at 5 seeds, a bound past any bracket). The marginal bound spends at most
            # the target, and exactly it when earlier looks spent far less, as they do under this spending.
            bounds.append(float(stats.norm.isf(target / 2)))
            continue
        inside_before = _inside(cov[:k, :k], bounds)
        bounds.append(float(optimize.brentq(lambda c: inside_before - _inside(cov, [*bounds, c]) - target, 1.0, 8.0,
                                            xtol=1e-5)))
    return tuple(bounds)


def _inside(cov: np.ndarray, bounds: Sequence[float]) -> float:
    """``P(|Z_i| < bounds_i for all i)`` for a centred normal vector with covariance ``cov``."""
    upper = np.asarray(bounds, dtype=float)
    if len(upper) == 1:
        return float(1 - 2 * stats.norm.sf(upper[0]))
    law = stats.multivariate_normal(mean=np.zeros(len(upper)), cov=cov, seed=0,  # seeded quasi-Monte Carlo
                                    maxpts=20_000 * len(upper), abseps=1e-6, releps=1e-5)
    return float(law.cdf(upper, lower_limit=-upper))


@functools.lru_cache(maxsize=1024)
def nominal_level(looks: tuple[int, ...], look: int, alpha: float) -> float:
    """Two-sided p-value at or below which look ``look`` (0-based) decides, at local level ``alpha``."""
    return float(2 * stats.norm.sf(z_bounds(looks, alpha)[look]))


@dataclass(frozen=True)
class PairedT:
    """A contrast's paired t over seeds against its margin."""

    n: int
    mean: float
    sd: float
    t: float
    p: float


def paired_t(values: Sequence[float], threshold: float) -> PairedT:
    """The one-sample t of ``values`` (one per seed) against ``threshold``, with its two-sided p-value.

    A zero standard deviation gives an infinite t (p 0) unless the mean sits on the threshold (t 0, p 1).

    Raises:
        UserError: With fewer than two finite values.
    """
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if len(x) < 2:
        raise UserError(f"--decide: a contrast needs a value from at least two seeds, got {len(x)}")
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    diff = mean - threshold
    if sd == 0:
        t = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    else:
        t = diff / (sd / math.sqrt(len(x)))
    return PairedT(len(x), mean, sd, t, float(2 * stats.t.sf(abs(t), len(x) - 1)))


def margin_threshold(contrast: Contrast) -> float:
    """The value a contrast is decided against: ``-margin`` (non-inferior) or ``margin`` (below)."""
    if contrast.direction == NON_INFERIOR:
        return -contrast.margin
    if contrast.direction == BELOW:
        return contrast.margin
    raise UserError(f"primary contrast {contrast.name!r}: direction expected {NON_INFERIOR} or {BELOW}, "
                    f"got {contrast.direction!r}")


def side(contrast: Contrast, t: float) -> str:
    """``held`` when ``t`` lies on the side the contrast's claim wants, else ``not held``."""
    wants_above = contrast.direction == NON_INFERIOR
    return HELD if (t > 0) == wants_above else NOT_HELD


@dataclass(frozen=True)
class ContrastLook:
    """One contrast at one look: its statistic, the bound it was held to and the decision."""

    contrast: str
    n: int
    mean: float
    sd: float
    t: float
    p: float
    local_alpha: float
    z_bound: float
    p_bound: float
    t_bound: float
    interval: tuple[float, float]
    decision: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SequentialPlan:
    """Looks (seed counts) and familywise level of a decide run; :meth:`look` applies the stopping rule.

    ``untested``: declared primary contrasts the run cannot test (other streams'). Holm's family is every declared
    contrast, as in the claims table: the untested ones count as never rejected (p = 1), so they keep the local
    levels of the others at ``alpha / (open + untested)``.
    """

    looks: tuple[int, ...]
    alpha: float = ALPHA
    untested: int = 0

    @classmethod
    def for_max_seeds(cls, max_seeds: int, alpha: float = ALPHA, untested: int = 0) -> SequentialPlan:
        return cls(look_schedule(max_seeds), alpha, untested)

    def holm(self, index: int, pvalues: Mapping[str, float]) -> tuple[set[str], dict[str, float]]:
        """Holm's step-down at look ``index`` over the open contrasts' p-values: the contrasts it decides, and the
        local level each is tested at (``alpha / (m - r)`` with r decided, earlier looks included, i.e. alpha over
        the contrasts still open and the :attr:`untested` ones)."""
        left = len(pvalues) + self.untested
        levels: dict[str, float] = {}
        rejected: set[str] = set()
        for name in sorted(pvalues, key=pvalues.__getitem__):
            levels[name] = self.alpha / left
            if pvalues[name] > nominal_level(self.looks, index, levels[name]):
                break
            rejected.add(name)
            left -= 1
        for name in pvalues:  # those past the first failure: the level they would be tested at next
            if name not in levels:
                levels[name] = self.alpha / left
        return rejected, levels

    def look(self, index: int, values: Mapping[str, Sequence[float]], contrasts: Sequence[Contrast],
             decided: Mapping[str, str]) -> list[ContrastLook]:
        """Decide what look ``index`` (0-based) can about the contrasts still open.

        Args:
            index: the look.
            values: each open contrast's per-seed values at this look (by contrast name).
            contrasts: every primary contrast of the run (those decided earlier are skipped).
            decided: the contrasts decided at earlier looks (name -> ``held``/``not held``); they are not looked at.

        Returns:
            One row per open contrast, in the order of ``contrasts``.
        """
        open_ = [c for c in contrasts if c.name not in decided]
        stats_ = {c.name: paired_t(values[c.name], margin_threshold(c)) for c in open_}
        rejected, levels = self.holm(index, {name: st.p for name, st in stats_.items()})
        last = index == len(self.looks) - 1
        rows = []
        for contrast in open_:
            st = stats_[contrast.name]
            if contrast.name in rejected:
                decision = side(contrast, st.t)
            else:
                decision = UNDECIDED if last else CONTINUE
            p_bound = nominal_level(self.looks, index, levels[contrast.name])
            t_bound = float(stats.t.isf(p_bound / 2, st.n - 1))
            half = t_bound * st.sd / math.sqrt(st.n)
            rows.append(ContrastLook(contrast.name, st.n, st.mean, st.sd, st.t, st.p, levels[contrast.name],
                                     z_bounds(self.looks, levels[contrast.name])[index], p_bound, t_bound,
                                     (st.mean - half, st.mean + half), decision))
        return rows


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


def simulate_false_decisions(plan: SequentialPlan, contrasts: int, reps: int, seed: int = 0,
                             shift: float = 0.0) -> dict[str, Any]:
    """Decision rates of the plan, and of naive "add seeds until the 95 % interval excludes the margin", on
    simulated seeds whose true value lies ``shift`` seed SDs above the margin (0: on it, where any decision is
    false) for each of ``contrasts`` independent contrasts.

    Naive: at each look, each open contrast is decided when its 95 % t interval excludes the margin (no
    spending, no multiplicity). Both stop when every contrast is decided or at the last look.

    Returns:
        For ``sequential`` and ``naive``: ``any_decision`` (the familywise decision rate), ``held``/``not_held``
        (share of contrast decisions of each side, over all contrasts) and ``mean_seeds`` (seeds at the stop).
    """
    rng = np.random.default_rng(seed)
    draws = rng.normal(shift, 1.0, size=(reps, plan.looks[-1], contrasts))
    n = np.asarray(plan.looks)
    means = np.stack([draws[:, :k].mean(axis=1) for k in n], axis=1)  # reps x looks x contrasts
    sds = np.stack([draws[:, :k].std(axis=1, ddof=1) for k in n], axis=1)
    t = means / (sds / np.sqrt(n)[None, :, None])
    p = 2 * stats.t.sf(np.abs(t), (n - 1)[None, :, None])
    rules = {"sequential": lambda k, open_p: plan.holm(k, open_p)[0],
             "naive": lambda k, open_p: {name for name, value in open_p.items() if value <= plan.alpha}}
    out = {}
    for rule, decide in rules.items():
        any_decision = held = not_held = seeds = 0
        for r in range(reps):
            decided: dict[int, float] = {}
            for k in range(len(n)):
                open_p = {j: float(p[r, k, j]) for j in range(contrasts) if j not in decided}
                decided.update({j: t[r, k, j] for j in decide(k, open_p)})
                if len(decided) == contrasts:
                    break
            seeds += int(n[k])
            any_decision += bool(decided)
            held += sum(bool(value > 0) for value in decided.values())
            not_held += sum(bool(value < 0) for value in decided.values())
        out[rule] = {"any_decision": any_decision / reps, "held": held / (reps * contrasts),
                     "not_held": not_held / (reps * contrasts), "mean_seeds": seeds / reps}
    return out
