"""How far ``pemma-bench plan``'s seed counts can be trusted: its counts from simulated pilots on known truth.

Seeds' values are drawn from a normal law whose mean lies ``distance`` standard deviations past the boundary; a
pilot of 3, 5 or 16 of them is planned as ``plan`` does (80 % power at Holm's strictest level, 5 % / 6 for the
six declared contrasts). For each setting it prints (and writes as JSON) the truly needed count, how often the
plan's count and its pessimistic end reach it, the power a fixed-sample test of the plan's count really has
(non-central t), and how often the pilot's range has no bound::

    .venv/bin/python benchmarks/plan_accuracy.py --reps 20000 --out results/reference/plan-accuracy.json

Every draw comes from ``--seed``; the numbers do not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import stats

from pemma_cl.stats.sequential import ALPHA
from pemma_cl.report.plan import POWER, decide_counts, range_ends

PILOTS = (3, 5, 16)
DISTANCES = (0.25, 0.5, 1.0)


def true_power(seeds: np.ndarray, distance: float, alpha: float) -> np.ndarray:
    """Power of a two-sided fixed-sample t-test of ``seeds`` values at level ``alpha``, the truth ``distance`` SDs
    past the boundary (0 where ``seeds`` is 0: no count)."""
    n = np.maximum(seeds, 2)
    critical = stats.t.ppf(1 - alpha / 2, n - 1)
    shift = distance * np.sqrt(n)
    power = stats.nct.sf(critical, n - 1, shift) + stats.nct.cdf(-critical, n - 1, shift)
    return np.where(seeds > 0, power, np.nan)


def simulate(pilot: int, distance: float, alpha: float, reps: int, rng: np.random.Generator) -> dict:
    """The plan's counts over ``reps`` pilots of ``pilot`` seeds, against the count the truth needs."""
    values = rng.normal(distance, 1.0, size=(reps, pilot))
    mean, sd = values.mean(axis=1), values.std(axis=1, ddof=1)
    point = decide_counts(sd / np.abs(mean), alpha)
    far, low_sd, near, high_sd = range_ends(values, 0.0)
    unbounded = near <= 0
    pessimistic = np.where(unbounded, 0, decide_counts(high_sd / np.where(unbounded, 1.0, near), alpha))
    optimistic = decide_counts(low_sd / far, alpha)
    needed = int(decide_counts(1.0 / distance, alpha))
    reaches = lambda counts: (counts == 0) | (counts >= needed)  # 0: more than the search range, or no bound
    power = true_power(point, distance, alpha)
    return {"pilot": pilot, "distance_sd": distance, "needed": needed,
            "point_median": float(np.median(np.where(point > 0, point, np.inf))),
            "point_reaches": float(np.mean(reaches(point))),
            "point_power_median": float(np.nanmedian(power)),
            "point_power_below_half": float(np.nanmean(power < 0.5)),
            "pessimistic_reaches": float(np.mean(reaches(pessimistic))),
            "unbounded": float(np.mean(unbounded)),
            "range_covers": float(np.mean((optimistic <= needed) & reaches(pessimistic)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20000, help="simulated pilots per setting")
    parser.add_argument("--contrasts", type=int, default=6, help="declared primary contrasts (Holm's family)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args()
    alpha = ALPHA / args.contrasts
    rng = np.random.default_rng(args.seed)
    print(f"alpha {alpha:.4f}, power {POWER:.0%}, {args.reps} pilots each")
    print(f"{'pilot':>5} {'dist/SD':>7} {'needed':>6} | {'plan median':>11} {'reaches':>7} {'power median':>12} "
          f"{'power<0.5':>9} | {'pessimistic reaches':>19} {'no bound':>8} {'range covers':>12}")
    rows = []
    for pilot in PILOTS:
        for distance in DISTANCES:
            r = simulate(pilot, distance, alpha, args.reps, rng)
            rows.append(r)
            print(f"{pilot:>5} {distance:>7.2f} {r['needed']:>6} | {r['point_median']:>11.0f} "
                  f"{r['point_reaches']:>7.3f} {r['point_power_median']:>12.3f} {r['point_power_below_half']:>9.3f} | "
                  f"{r['pessimistic_reaches']:>19.3f} {r['unbounded']:>8.3f} {r['range_covers']:>12.3f}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"alpha": alpha, "power": POWER, "reps": args.reps, "seed": args.seed,
                                        "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
