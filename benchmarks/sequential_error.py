"""The actual error of ``run --decide``'s bounds at the suite's levels, and of its rule against naive seed-adding.

Two simulations, both on seeds whose values are i.i.d. normal with their mean on the margin (every decision false),
written together as JSON (default ``results/benchmarks/sequential_error.json``)::

    .venv/bin/python benchmarks/sequential_error.py

* **levels**: for each look schedule (``--max-seeds`` 12, 16, 27, 40, 60: the default, the stored decide runs' and the
  planned ones') and each level in use (the whole 5 %, 5 % over the family sizes in use, the alpha ledger's trial
  levels), the share of ``--paths`` simulated runs whose t crosses a look's bound, under the t-calibrated bounds
  and the z-mapped bounds the stored runs used, with its Monte Carlo standard error. The paths come from
  ``--seed``, independent of the bounds' calibration (``CALIBRATION_SEED`` of ``pemma_cl.stats.sequential``).
* **rules**: one to three contrasts on the margin (and one some seed SDs past it), looks of 12 seeds: the familywise
  decision rate of the decide rule (Holm across the contrasts, t-calibrated bounds) and of naive "decide when the
  95 % interval excludes the margin", ``--reps`` runs each (seed ``--rules-seed``).

Every draw is seeded; the numbers do not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pemma_cl.core.files import write_atomically
from pemma_cl.stats.sequential import (
    ALPHA,
    CALIBRATION_PATHS,
    CALIBRATION_SEED,
    T_CALIBRATED,
    Z_MAPPED,
    SequentialPlan,
    crossing_rates,
    look_bounds,
    look_schedule,
    simulate_false_decisions,
)
from pemma_cl.report.ledger import load_ledger

#: Look schedules simulated (by --max-seeds) and family sizes whose Holm/Bonferroni level is simulated.
MAX_SEEDS = (12, 16, 27, 40, 60)
FAMILY_SIZES = (6, 7, 9)


def levels_in_use() -> list[float]:
    """The whole alpha, alpha over each family size, and every level the alpha ledger gives a trial."""
    ledger = {round(trial.alpha, 8) for trial in load_ledger().trials}
    return sorted({ALPHA, *(round(ALPHA / m, 8) for m in FAMILY_SIZES), *ledger}, reverse=True)


def bound_rows(paths: int, seed: int) -> list[dict]:
    """The actual crossing rate of each schedule's bounds at each level under both conventions."""
    rows = []
    for max_seeds in MAX_SEEDS:
        looks = look_schedule(max_seeds)
        settings = [(alpha, convention) for alpha in levels_in_use() for convention in (T_CALIBRATED, Z_MAPPED)]
        rates = crossing_rates(looks, [look_bounds(looks, alpha, convention) for alpha, convention in settings],
                               paths, seed)
        for (alpha, convention), (rate, se) in zip(settings, rates):
            rows.append({"max_seeds": max_seeds, "looks": list(looks), "bounds": convention, "nominal": alpha,
                         "actual": rate, "mc_se": se, "excess_in_se": (rate - alpha) / se})
            print(f"{max_seeds:>3} seeds  {convention:>12}  nominal {alpha:.5f}  actual {rate:.5f} ± {se:.5f}",
                  flush=True)
    return rows


def rule_rows(reps: int, seed: int) -> list[dict]:
    """The decide rule against naive seed-adding (docs/decide.md's error table)."""
    plan = SequentialPlan.for_max_seeds(12)
    rows = []
    for contrasts, shift in [(m, 0.0) for m in (1, 2, 3)] + [(1, shift) for shift in (0.5, 1.0, 1.5)]:
        for rule, r in simulate_false_decisions(plan, contrasts, reps, seed=seed, shift=shift).items():
            rows.append({"contrasts": contrasts, "shift_sd": shift, "rule": rule, **r})
            print(f"{contrasts} contrast(s), shift {shift} SD, {rule}: any decision {r['any_decision']:.4f}, "
                  f"mean seeds {r['mean_seeds']:.2f}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=2_000_000, help="simulated null runs per look schedule")
    parser.add_argument("--seed", type=int, default=1, help="seed of the levels' paths (not the calibration's)")
    parser.add_argument("--reps", type=int, default=20000, help="simulated decide runs per setting of the rules")
    parser.add_argument("--rules-seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/sequential_error.json"))
    args = parser.parse_args()
    if args.seed == CALIBRATION_SEED:
        parser.error(f"--seed: must differ from the calibration's seed {CALIBRATION_SEED}")
    started = time.perf_counter()
    record = {"benchmark": "sequential_error", "alpha": ALPHA, "calibration_paths": CALIBRATION_PATHS,
              "calibration_seed": CALIBRATION_SEED, "paths": args.paths, "seed": args.seed,
              "levels": bound_rows(args.paths, args.seed),
              "rules": {"looks": list(look_schedule(12)), "reps": args.reps, "seed": args.rules_seed,
                        "bounds": T_CALIBRATED, "rows": rule_rows(args.reps, args.rules_seed)}}
    record["wall_s"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out, lambda f: f.write((json.dumps(record, indent=1) + "\n").encode("utf-8")))
    print(f"{args.out} ({record['wall_s']} s)")


if __name__ == "__main__":
    main()
