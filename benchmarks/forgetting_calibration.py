"""Max-based against cross-fitted forgetting on simulated per-case rows whose true forgetting is known.

Every experience ``j`` of a ``steps``-step stream has ``cases`` test cases (in ``centres`` centres); case ``c`` has a
reference of ``V_c`` voxels and a true recall ``p_c`` that stays the same at every step, except at the last step,
where it falls by ``drop`` (a true forgetting); each (step, case) adds its own noise to the recall (what a
re-trained network does to one case) and draws its true positives as ``Binomial(V_c, p)``, with no false positive.
The true forgetting is the aggregated Dice of the expected counts before the last step minus at the last step::

    .venv/bin/python benchmarks/forgetting_calibration.py                 # the table in docs/forgetting.md
    .venv/bin/python benchmarks/forgetting_calibration.py --reps 50 --cases 3 --drop 0.05
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pemma_cl.evaluation.cl_metrics import crossfit_forgetting_mean, forgetting
from pemma_cl.evaluation.per_case import aggregated_dice

#: Spread of the cases' true recall and of each (step, case)'s noise on it.
CASE_SD, STEP_SD = 0.15, 0.10


@dataclass(frozen=True)
class Calibration:
    """Mean and standard deviation over replicates of both estimators, beside the true forgetting."""

    truth: float
    max_mean: float
    max_sd: float
    crossfit_mean: float
    crossfit_sd: float


def simulate_cases(rng: np.random.Generator, steps: int, cases: int, centres: int, drop: float
                   ) -> tuple[pd.DataFrame, float]:
    """One replicate's per-case rows (one strategy, seed and input; structure GTVp) and its true forgetting."""
    rows, truth = [], []
    for j in range(steps):
        volume = rng.integers(50, 400, cases)
        recall = np.clip(rng.normal(0.7, CASE_SD, cases), 0.05, 0.95)
        final = np.clip(recall - drop, 0.0, 1.0)
        truth.append(_expected_dice(volume, recall) - _expected_dice(volume, final))
        for step in range(j, steps):
            noisy = np.clip((final if step == steps - 1 else recall) + rng.normal(0.0, STEP_SD, cases), 0.0, 1.0)
            tp = rng.binomial(volume, noisy)
            rows += [{"trained_through": step, "eval_experience": j, "centre": f"C{c % centres}",
                      "case_id": f"E{j}-{c:03d}", "structure": "GTVp", "tp": t, "fp": 0, "fn": v - t}
                     for c, (t, v) in enumerate(zip(tp, volume))]
    return pd.DataFrame(rows), float(np.mean(truth[:-1]))


def _expected_dice(volume: np.ndarray, recall: np.ndarray) -> float:
    """Aggregated Dice of the expected counts (tp = V p, fn = V (1 - p), no false positive)."""
    tp = float((volume * recall).sum())
    return 2 * tp / (tp + float(volume.sum()))


def r_of(cases: pd.DataFrame, steps: int) -> np.ndarray:
    """The results matrix of the rows (aggregated Dice over each experience's cases; NaN where not scored)."""
    R = np.full((steps, steps), np.nan)
    for (step, j), group in cases.groupby(["trained_through", "eval_experience"]):
        R[int(step), int(j)] = aggregated_dice(group)
    return R


def calibrate(reps: int, steps: int, cases: int, centres: int, drop: float, seed: int = 0) -> Calibration:
    """Both estimators over ``reps`` replicates (each replicate and its halves seeded from ``seed``)."""
    rng = np.random.default_rng(seed)
    truths, old, new = [], [], []
    for rep in range(reps):
        rows, truth = simulate_cases(rng, steps, cases, centres, drop)
        truths.append(truth)
        old.append(forgetting(r_of(rows, steps)))
        new.append(crossfit_forgetting_mean(rows, seed=rep))
    return Calibration(float(np.mean(truths)), float(np.mean(old)), float(np.std(old, ddof=1)),
                       float(np.mean(new)), float(np.std(new, ddof=1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="replicates per row (default 200)")
    parser.add_argument("--steps", type=int, default=7, help="experiences of the stream (default 7, as centers)")
    parser.add_argument("--centres", type=int, default=1, help="centres per experience (default 1)")
    parser.add_argument("--cases", type=int, action="append", help="test cases per experience (default 3 and 25)")
    parser.add_argument("--drop", type=float, action="append", help="drop of the true recall (default 0 and 0.1)")
    args = parser.parse_args()
    print("| cases / experience | true forgetting | max-based (mean ± SD) | cross-fitted (mean ± SD) |")
    print("| ---: | ---: | ---: | ---: |")
    for cases in args.cases or [3, 25]:
        for drop in args.drop or [0.0, 0.1]:
            c = calibrate(args.reps, args.steps, cases, args.centres, drop)
            print(f"| {cases} | {c.truth:.3f} | {c.max_mean:.3f} ± {c.max_sd:.3f} | "
                  f"{c.crossfit_mean:.3f} ± {c.crossfit_sd:.3f} |")


if __name__ == "__main__":
    main()
