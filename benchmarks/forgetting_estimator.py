"""Which forgetting estimator can decide "no forgetting": cross-fitted max-based against the drop from the just-trained
state, on simulated seeds whose true forgetting sits exactly on the 0.03 margin, for several shapes of forgetting.

Each simulated seed is a run of the ``centers`` stream's shape: 7 experiences, so 6 earlier ones, experience ``j``
scored after every step ``j .. 6`` on its tracked cases (10 or 25). A tracked case's score at a step is its
experience's true mean at that step, plus the case's own level (cancels in every estimator: both read differences
over one set of cases), plus independent noise of SD :data:`CASE_NOISE_SD` (what retraining does to one case); the
seed's final state adds a seed effect ``v ~ N(0, SEED_SD^2)`` to every experience (seeds forget more or less). The
scores of each cross-fitting half enter only through their mean (the aggregated Dice of cases of equal size), so a
half is simulated by its mean: exact in law, and fast. The true mean of experience ``j`` at step ``l`` is
``a + k s(u)``, ``u = (l - j) / (6 - j)``, ``s`` the shape (:data:`SHAPES`), ``s(0) = 0``:

* ``flat``: ``s = 0`` (nothing forgotten: truth 0);
* ``drop at the end``: 0, then -1 at the last step;
* ``drop right after training``: -1 from the step after training on (the shape the stored mean trajectories show);
* ``linear decline``: ``-u``;
* ``rise then fall``: up to ``+1/2`` at ``u = 1/2``, then down to -1 at the last step (linear in between).

Two truths: the **drop** from the just-trained state (``s(0) - s(1)``, what :func:`~pemma_cl.evaluation.cl_metrics.
drop_forgetting` estimates) and the **peak** drop (the largest score after training minus the last, what
cross-fitted max-based forgetting estimates). They agree except for ``rise then fall``, simulated twice: its drop on
the margin (``k = 0.03``; its peak drop is then larger) and its peak drop on the margin (its drop is then below it,
where a "held" is a right answer for the drop's question). Every other shape has ``k = 0.03``: both truths on the
margin, where any "held" is false.

Each trial is a decide run of the declared kind: up to :data:`MAX_SEEDS` seeds, looks and bounds of
:class:`~pemma_cl.stats.sequential.SequentialPlan` at the contrast's local level :data:`LEVEL` (5 % over the six
contrasts declared when the forgetting contrast was decided), the seeds' values tested against the margin; a
"held" is a crossing below it, "not held" above it. The nominal false-"held" rate is ``LEVEL / 2`` (one side of the
two-sided level)::

    .venv/bin/python benchmarks/forgetting_estimator.py              # the table of docs/statistics.md, 1-2 minutes
    .venv/bin/python benchmarks/forgetting_estimator.py --trials 2000 --out /tmp/f.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy import stats

from pemma_cl.core.files import write_atomically
from pemma_cl.evaluation.cl_metrics import held_out_drop
from pemma_cl.stats.sequential import SequentialPlan

#: Experiences of the simulated stream (``centers``: 7 centres).
EXPERIENCES = 7
#: SD of a tracked case's score from step to step: the within-case residual SD of a structure's per-case Dice in
#: ``results/reference/centers-decide-forgetting`` (27 seeds, CT and CT+PET, tracked cases, each case's and each
#: step's mean removed): 0.101.
CASE_NOISE_SD = 0.10
#: SD of the seed effect on the final state: with the case noise, a seed-to-seed SD of the drop of about 0.027 at
#: 10 cases (the stored CT contrast's: 0.023, its case-level share 0.013).
SEED_SD = 0.02
MARGIN = 0.03
#: The local two-sided level of the decided forgetting contrast (5 % over the six contrasts declared then).
LEVEL = 0.05 / 6
MAX_SEEDS = 40
CASES = (10, 25)
TRIALS = 40_000
#: Trials simulated at once (memory).
CHUNK = 2_000
OUT = Path("results/benchmarks/forgetting_estimator.json")


def _rise_then_fall(u: np.ndarray) -> np.ndarray:
    return np.where(u <= 0.5, u, 0.5 - 3.0 * (u - 0.5))


SHAPES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "flat": lambda u: np.zeros_like(u),
    "drop at the end": lambda u: np.where(u < 1, 0.0, -1.0),
    "drop right after training": lambda u: np.where(u > 0, -1.0, 0.0),
    "linear decline": lambda u: -u,
    "rise then fall": _rise_then_fall,
}
#: The simulated cases: (label, shape, which truth sits on the margin).
CELLS: tuple[tuple[str, str, str], ...] = (
    ("flat (truth 0)", "flat", "none"),
    ("drop at the end", "drop at the end", "drop"),
    ("drop right after training, then flat", "drop right after training", "drop"),
    ("linear decline", "linear decline", "drop"),
    ("rise then fall, drop on the margin", "rise then fall", "drop"),
    ("rise then fall, peak drop on the margin", "rise then fall", "peak"),
)


def profiles(shape: str) -> list[np.ndarray]:
    """The shape's ``s`` at the steps of each earlier experience (``j = 0 .. EXPERIENCES - 2``)."""
    last = EXPERIENCES - 1
    return [SHAPES[shape](np.arange(last - j + 1) / (last - j)) for j in range(last)]


def truths(shape: str, scale: float) -> tuple[float, float]:
    """The (drop, peak drop) truths of the shape at scale ``k``, averaged over the earlier experiences."""
    curves = [scale * s for s in profiles(shape)]
    return (float(np.mean([c[0] - c[-1] for c in curves])), float(np.mean([c.max() - c[-1] for c in curves])))


def scale_for(shape: str, on_margin: str) -> float:
    """The ``k`` that puts the named truth on the margin (``none``: 0.03, the flat shape's truths being 0)."""
    if on_margin == "none":
        return MARGIN
    drop, peak = truths(shape, 1.0)
    return MARGIN / (drop if on_margin == "drop" else peak)


def seed_estimates(rng: np.random.Generator, shape: str, scale: float, cases: int, seeds: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Each of ``seeds`` simulated seeds' cross-fitted and drop estimates (averaged over the earlier experiences).

    Halves as :func:`~pemma_cl.evaluation.cl_metrics.crossfit_forgetting` deals them (``ceil(n/2)`` and
    ``floor(n/2)`` cases); the cross-fitted reading is :func:`~pemma_cl.evaluation.cl_metrics.held_out_drop`, the
    estimator's own.
    """
    sizes = np.array([(cases + 1) // 2, cases // 2])
    seed_effect = rng.normal(0.0, SEED_SD, seeds)
    crossfit, drop = np.zeros(seeds), np.zeros(seeds)
    for curve in profiles(shape):
        mean = scale * curve
        halves = mean + rng.normal(0.0, 1.0, (2, seeds, len(curve))) * (CASE_NOISE_SD / np.sqrt(sizes))[:, None, None]
        halves[:, :, -1] -= seed_effect
        crossfit += (held_out_drop(halves[0], halves[1]) + held_out_drop(halves[1], halves[0])) / 2
        pooled = (sizes[:, None, None] * halves).sum(axis=0) / cases
        drop += pooled[:, 0] - pooled[:, -1]
    count = len(profiles(shape))
    return crossfit / count, drop / count


def decisions(values: np.ndarray, plan: SequentialPlan) -> dict[str, np.ndarray]:
    """Each trial's decision (rows of ``values``: its seeds' values in order) by the plan's looks and bounds:
    ``held`` (first crossing below the margin), ``not_held`` (above), neither (undecided)."""
    n = np.asarray(plan.looks)
    bounds = np.array([plan.p_bound(k, plan.alpha) for k in range(len(n))])
    sums, squares = np.cumsum(values, axis=1)[:, n - 1], np.cumsum(values ** 2, axis=1)[:, n - 1]
    mean = sums / n
    sd = np.sqrt(np.maximum(squares - n * mean ** 2, 0.0) / (n - 1))
    t = (mean - MARGIN) / (sd / np.sqrt(n))
    crossed = 2 * stats.t.sf(np.abs(t), n - 1) <= bounds
    first = np.where(crossed.any(axis=1), crossed.argmax(axis=1), -1)
    side = t[np.arange(len(t)), np.maximum(first, 0)]
    return {"held": (first >= 0) & (side < 0), "not_held": (first >= 0) & (side > 0)}


def simulate(trials: int = TRIALS, seed: int = 0) -> dict:
    """Every cell at both case counts: truths, each estimator's mean and bias, and its decision rates."""
    plan = SequentialPlan.for_max_seeds(MAX_SEEDS, alpha=LEVEL)
    rows = []
    for cell, (label, shape, on_margin) in enumerate(CELLS):
        scale = scale_for(shape, on_margin)
        truth_drop, truth_peak = truths(shape, scale)
        for cases in CASES:
            rng = np.random.default_rng([seed, cell, cases])
            totals = {name: {"sum": 0.0, "squares": 0.0, "held": 0, "not_held": 0} for name in ("crossfit", "drop")}
            for start in range(0, trials, CHUNK):
                count = min(CHUNK, trials - start)
                both = seed_estimates(rng, shape, scale, cases, count * MAX_SEEDS)
                for name, values in zip(("crossfit", "drop"), both):
                    total = totals[name]
                    total["sum"] += float(values.sum())
                    total["squares"] += float((values ** 2).sum())
                    for side, hit in decisions(values.reshape(count, MAX_SEEDS), plan).items():
                        total[side] += int(hit.sum())
            estimators = {}
            for name, total in totals.items():
                draws = trials * MAX_SEEDS
                mean = total["sum"] / draws
                sd = math.sqrt(max(total["squares"] / draws - mean ** 2, 0.0) * draws / (draws - 1))
                truth = truth_drop if name == "drop" else truth_peak
                held, not_held = total["held"] / trials, total["not_held"] / trials
                estimators[name] = {
                    "mean": mean, "seed_sd": sd, "truth": truth, "bias": mean - truth,
                    "bias_se": sd / math.sqrt(draws), "held": held, "held_se": math.sqrt(held * (1 - held) / trials),
                    "not_held": not_held, "not_held_se": math.sqrt(not_held * (1 - not_held) / trials),
                    "truth_on_margin": bool(on_margin != "none" and math.isclose(truth, MARGIN)),
                }
            rows.append({"cell": label, "shape": shape, "cases": cases, "scale": scale, "truth_drop": truth_drop,
                         "truth_peak": truth_peak, "estimators": estimators})
    return {
        "what": "forgetting estimators on simulated seeds, true forgetting on the 0.03 margin (benchmarks/"
                "forgetting_estimator.py)",
        "experiences": EXPERIENCES, "case_noise_sd": CASE_NOISE_SD, "seed_sd": SEED_SD, "margin": MARGIN,
        "level": LEVEL, "nominal_false_held": LEVEL / 2, "max_seeds": MAX_SEEDS, "looks": list(plan.looks),
        "bounds": plan.bounds, "p_bounds": [plan.p_bound(k, plan.alpha) for k in range(len(plan.looks))],
        "trials": trials, "seeds_per_trial": MAX_SEEDS, "seed": seed,
        "estimators": {"crossfit": "cross-fitted max-based forgetting (truth: the peak drop)",
                       "drop": "drop from the just-trained state, forgetting_drop (truth: the drop)"},
        "rows": rows,
    }


def table(result: dict) -> str:
    """The result as a markdown table."""
    lines = ["| shape | cases | truth: drop / peak | drop: mean (bias) | drop: held / not held | cross-fitted: mean "
             "(bias) | cross-fitted: held / not held |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in result["rows"]:
        drop, crossfit = row["estimators"]["drop"], row["estimators"]["crossfit"]
        lines.append(f"| {row['cell']} | {row['cases']} | {row['truth_drop']:.3f} / {row['truth_peak']:.3f} | "
                     f"{drop['mean']:.4f} ({drop['bias']:+.4f}) | {drop['held']:.2%} / {drop['not_held']:.2%} | "
                     f"{crossfit['mean']:.4f} ({crossfit['bias']:+.4f}) | {crossfit['held']:.2%} / "
                     f"{crossfit['not_held']:.2%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=TRIALS, help="simulated decide runs per shape and case count")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    started = time.perf_counter()
    result = simulate(args.trials, args.seed)
    result["seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    write_atomically(args.out, lambda file: file.write(text.encode("utf-8")))
    print(table(result))
    print(f"{args.trials} trials of up to {MAX_SEEDS} seeds per row; nominal false-held {LEVEL / 2:.4%}; "
          f"{result['seconds']} s -> {args.out}")


if __name__ == "__main__":
    main()
