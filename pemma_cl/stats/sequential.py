"""Group-sequential decisions over seeds (``pemma-bench run --decide``): pre-set looks, O'Brien-Fleming-type
bounds calibrated for the t statistic, each contrast at its own level.

The plan, fixed before the first seed runs (``docs/decide.md``):

* **Looks** at 3, 5, 8, 12, 18, ... seeds, cut at ``--max-seeds`` N (which is always the last look); information
  fraction ``t_k = n_k / N``.
* **Spending**: Lan-DeMets with the O'Brien-Fleming-type function ``a(t) = 2 - 2 Phi(z_{1-a/2} / sqrt(t))``,
  two-sided and symmetric: one bound on ``|t|`` per look, and the two-sided alpha is what is spent (gsDesign and
  rpact spend ``alpha / 2`` per side with the same function, which gives smaller early bounds' p-values).
* **Statistic and bounds** (:data:`T_CALIBRATED`): each contrast's paired t over the seeds run, against its margin,
  and a bound ``b_k`` on ``|t_k|`` per look such that, under the null (the seeds' values i.i.d. normal with their
  mean on the margin), the probability that look k is the first with ``|t_k| > b_k`` is ``a(t_k) - a(t_{k-1})``.
  The t process is pivotal (its law depends neither on the mean nor the SD), so the bounds come from a seeded
  simulation of it (:func:`null_t_paths`, exact up to Monte Carlo error); a look's increment too small for the
  simulation to resolve gets the marginal t quantile, which spends at most it. A look decides when the t's
  two-sided p-value is at most the bound's; equivalently, the repeated confidence interval ``mean +- b_k * sd /
  sqrt(n_k)`` excludes the margin.
* The decide runs stored before these bounds (2026-12-04 and 05) used :data:`Z_MAPPED`: the z bounds of the
  canonical normal law, a t mapped to them by its nominal p-value (Jennison & Turnbull, ch. 11), which spends
  somewhat more than declared with few seeds. Their records are replayed under that convention.
* **Decision**: a crossing on the side the claim wants is ``held``, on the other side ``not held``; neither:
  ``continue``; at the last look, ``undecided``.
* **Multiplicity**: :class:`SequentialPlan` tests its contrasts at ``alpha / (m - r)`` (Holm step-down at each look
  over ``m`` contrasts, ``r`` already decided; Maurer & Bretz 2013). A decide run gives each contrast its own plan,
  at the level of its trial in the alpha ledger (:mod:`pemma_cl.report.ledger`); the stored runs used one plan
  across the declared family.

The actual false-decision rate of the bounds is simulated by :func:`crossing_rates` and of the whole rule by
:func:`simulate_false_decisions` (``benchmarks/sequential_error.py``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
from scipy import optimize, stats

from pemma_cl.core.errors import UserError

#: Familywise two-sided level of a decide run.
ALPHA = 0.05
#: Seed counts of the looks (cut at ``--max-seeds``, which is always the last look).
LOOK_SCHEDULE: tuple[int, ...] = (3, 5, 8, 12, 18, 27, 40, 60)
#: Alpha spent at one look below which its z bound is the marginal one (see :func:`z_bounds`): well above the
#: integral's absolute error (1e-6).
RESOLVABLE_SPENDING = 1e-5
#: Bound conventions: bounds on |t| calibrated by simulation (decide runs from 2026-12-06 on), and z bounds that a
#: t reaches by its nominal p-value (the decide runs stored before).
T_CALIBRATED, Z_MAPPED = "t-calibrated", "z-mapped"
#: Null paths of the t bounds' calibration and their seed (:func:`t_bounds`): at the smallest level in use (about
#: 0.001) the total spent has a Monte Carlo error of about 1.6 %.
CALIBRATION_PATHS = 4_000_000
CALIBRATION_SEED = 20261206
#: Simulated first crossings a look's increment must expect to be calibrated (relative error at most 7 %); below
#: it the look's bound is the marginal t quantile of the increment.
MIN_CROSSINGS = 200
#: Paths simulated at once (memory: a few times this many rows of one float per look).
CHUNK_PATHS = 250_000
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
    """Two-sided p-value at or below which look ``look`` (0-based) decides under :data:`Z_MAPPED`, at local level
    ``alpha``."""
    return float(2 * stats.norm.sf(z_bounds(looks, alpha)[look]))


def null_t_paths(looks: tuple[int, ...], paths: int, seed: int) -> Iterator[np.ndarray]:
    """``|t_k|`` at each look of ``paths`` simulated runs whose seeds' values are i.i.d. standard normal (the null:
    the mean on the margin; t is pivotal, so any mean and SD give the same law), ``CHUNK_PATHS`` paths at a time.

    Each block of seeds between two looks is drawn through its sufficient statistics, exactly: its sum ``N(0, m)``
    and its sum of squares about its own mean ``chi2(m - 1)``; the look's mean and SD follow from the running sums.

    Yields:
        Arrays of shape (paths in the chunk, looks).
    """
    n = np.asarray(looks, dtype=float)
    sizes = np.diff(np.concatenate([[0.0], n]))
    rng = np.random.default_rng(seed)
    for start in range(0, paths, CHUNK_PATHS):
        count = min(CHUNK_PATHS, paths - start)
        sums = rng.standard_normal((count, len(n))) * np.sqrt(sizes)
        within = np.where(sizes > 1, rng.chisquare(np.maximum(sizes - 1, 1), (count, len(n))), 0.0)
        total = np.cumsum(sums, axis=1)
        squares = np.cumsum(within + sums**2 / sizes, axis=1) - total**2 / n
        yield np.abs(total / n) / np.sqrt(squares / ((n - 1) * n))


@functools.lru_cache(maxsize=8)
def _null_tail(looks: tuple[int, ...]) -> np.ndarray:
    """The calibration's paths (:data:`CALIBRATION_PATHS`, :data:`CALIBRATION_SEED`) that could cross a bound at
    some level up to :data:`ALPHA`: those with ``|t_k|`` above the marginal quantile of ``2 a(t_k)`` at some look
    (a bound at look k has ``P(|t_k| > b_k) <= a(t_k)``, so no other path ever crosses one). About a tenth of them."""
    floors = _floors(looks)
    kept = [chunk[(chunk >= floors).any(axis=1)].astype(np.float32)
            for chunk in null_t_paths(looks, CALIBRATION_PATHS, CALIBRATION_SEED)]
    return np.concatenate(kept)


def _floors(looks: tuple[int, ...]) -> np.ndarray:
    """Per look, the |t| below which no bound at a level up to :data:`ALPHA` lies (see :func:`_null_tail`)."""
    return np.array([stats.t.isf(min(1.0, 2 * obf_spending(n / looks[-1], ALPHA)) / 2, n - 1) for n in looks])


@functools.lru_cache(maxsize=256)
def t_bounds(looks: tuple[int, ...], alpha: float) -> tuple[float, ...]:
    """Two-sided bounds ``b_k`` on ``|t_k|`` (the one-sample t of the first ``n_k`` seeds) of the looks ``looks``
    (seed counts) spending ``alpha`` by :func:`obf_spending` (:data:`T_CALIBRATED`).

    Look k's bound is the ``|t_k|`` that :data:`CALIBRATION_PATHS` null paths not stopped earlier exceed with
    frequency ``a(t_k) - a(t_{k-1})`` (rounded down to whole paths). The first look, and a look whose increment
    expects fewer than :data:`MIN_CROSSINGS` crossings, gets the marginal quantile ``P(|T_{n_k-1}| > b_k) = a(t_k)
    - a(t_{k-1})``, exact at the first look and spending at most the increment at the others.

    Raises:
        UserError: If ``alpha`` is not in (0, :data:`ALPHA`].
    """
    if not 0 < alpha <= ALPHA:
        raise UserError(f"a decide level must lie in (0, {ALPHA}], got {alpha}")
    fractions = np.asarray(looks, dtype=float) / looks[-1]
    spent = np.array([0.0] + [obf_spending(t, alpha) for t in fractions])
    tail, floors = _null_tail(looks), _floors(looks)
    alive = np.ones(len(tail), dtype=bool)
    bounds = []
    for k, n in enumerate(looks):
        increment = spent[k + 1] - spent[k]
        crossings = int(increment * CALIBRATION_PATHS)
        if k == 0 or crossings < MIN_CROSSINGS:
            bound = float(stats.t.isf(increment / 2, n - 1))
        else:
            values = tail[alive, k]
            bound = float(np.partition(values, len(values) - crossings - 1)[len(values) - crossings - 1])
            if bound < floors[k]:  # cannot happen for alpha <= ALPHA (see _null_tail); a wrong bound must not pass
                raise RuntimeError(f"t bound {bound} of look {k + 1} below the calibration's floor {floors[k]}")
        bounds.append(bound)
        alive &= tail[:, k] <= bound
    return tuple(bounds)


def crossing_rates(looks: tuple[int, ...], bounds: Sequence[Sequence[float]], paths: int,
                   seed: int) -> list[tuple[float, float]]:
    """For each set of bounds (one per look), the share of ``paths`` simulated null runs (:func:`null_t_paths`,
    ``seed``; the same runs for every set) in which ``|t_k|`` exceeds the bound at some look: the bounds' actual
    false-decision rate, and its Monte Carlo standard error."""
    limits = [np.asarray(b, dtype=float) for b in bounds]
    crossed = np.zeros(len(limits), dtype=np.int64)
    for chunk in null_t_paths(looks, paths, seed):
        crossed += [int((chunk > limit).any(axis=1).sum()) for limit in limits]
    return [(float(c / paths), math.sqrt(c / paths * (1 - c / paths) / paths)) for c in crossed]


def look_bounds(looks: tuple[int, ...], alpha: float, convention: str = T_CALIBRATED) -> tuple[float, ...]:
    """The looks' bounds on ``|t|`` (degrees of freedom ``n_k - 1``) under ``convention``."""
    if convention == T_CALIBRATED:
        return t_bounds(looks, alpha)
    if convention == Z_MAPPED:
        return tuple(float(stats.t.isf(nominal_level(looks, k, alpha) / 2, n - 1)) for k, n in enumerate(looks))
    raise UserError(f"bound convention: expected {T_CALIBRATED} or {Z_MAPPED}, got {convention!r}")


@functools.lru_cache(maxsize=1024)
def p_bound(looks: tuple[int, ...], look: int, alpha: float, convention: str = T_CALIBRATED) -> float:
    """Two-sided p-value (t law, ``n_k - 1`` degrees of freedom) at or below which look ``look`` (0-based) decides
    at local level ``alpha`` under ``convention``."""
    if convention == Z_MAPPED:
        return nominal_level(looks, look, alpha)
    return float(2 * stats.t.sf(look_bounds(looks, alpha, convention)[look], looks[look] - 1))


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


def on_claims_side(direction: str, distance: float) -> bool:
    """Whether a value ``distance`` beyond its margin threshold (value minus :func:`margin_threshold`) lies on the
    side a claim of ``direction`` wants: above it (non-inferior) or below it (below)."""
    return distance > 0 if direction == NON_INFERIOR else distance < 0


def side(contrast: Contrast, t: float) -> str:
    """``held`` when ``t`` lies on the side the contrast's claim wants, else ``not held``."""
    return HELD if on_claims_side(contrast.direction, t) else NOT_HELD


@dataclass(frozen=True)
class ContrastLook:
    """One contrast at one look: its statistic, the bound it was held to and the decision (``z_bound``: the normal
    quantile of ``p_bound``, the z bound itself under :data:`Z_MAPPED`)."""

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
    """Looks (seed counts), level and bound convention of a decide run's contrasts; :meth:`look` applies the
    stopping rule.

    ``untested``: contrasts of Holm's family that the plan cannot test (the stored runs counted every declared
    contrast, other streams' among them): they count as never rejected (p = 1), so they keep the local levels of the
    others at ``alpha / (open + untested)``. ``bounds``: :data:`T_CALIBRATED` or :data:`Z_MAPPED`.
    """

    looks: tuple[int, ...]
    alpha: float = ALPHA
    untested: int = 0
    bounds: str = T_CALIBRATED

    @classmethod
    def for_max_seeds(cls, max_seeds: int, alpha: float = ALPHA, untested: int = 0,
                      bounds: str = T_CALIBRATED) -> SequentialPlan:
        return cls(look_schedule(max_seeds), alpha, untested, bounds)

    def p_bound(self, index: int, alpha: float) -> float:
        """The two-sided p-value at or below which look ``index`` decides at local level ``alpha``."""
        return p_bound(self.looks, index, alpha, self.bounds)

    def holm(self, index: int, pvalues: Mapping[str, float]) -> tuple[set[str], dict[str, float]]:
        """Holm's step-down at look ``index`` over the open contrasts' p-values: the contrasts it decides, and the
        local level each is tested at (``alpha / (m - r)`` with r decided, earlier looks included, i.e. alpha over
        the contrasts still open and the :attr:`untested` ones)."""
        left = len(pvalues) + self.untested
        levels: dict[str, float] = {}
        rejected: set[str] = set()
        for name in sorted(pvalues, key=pvalues.__getitem__):
            levels[name] = self.alpha / left
            if pvalues[name] > self.p_bound(index, levels[name]):
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
            level = levels[contrast.name]
            bound_p = self.p_bound(index, level)
            t_bound = float(stats.t.isf(bound_p / 2, st.n - 1))
            half = t_bound * st.sd / math.sqrt(st.n)
            z_bound = (z_bounds(self.looks, level)[index] if self.bounds == Z_MAPPED
                       else float(stats.norm.isf(bound_p / 2)))
            rows.append(ContrastLook(contrast.name, st.n, st.mean, st.sd, st.t, st.p, level, z_bound, bound_p, t_bound,
                                     (st.mean - half, st.mean + half), decision))
        return rows


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
