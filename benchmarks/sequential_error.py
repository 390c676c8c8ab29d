"""How often ``run --decide`` decides wrongly, against naive "add seeds until the interval excludes the margin".

Simulates seeds whose true contrast value sits on the margin (any decision is false) or some seed SDs past it
(power), for one to three primary contrasts, with the looks of ``--max-seeds`` (default 12: 3, 5, 8, 12), and
prints (and writes as JSON) each rule's familywise decision rate and mean seeds at the stop::

    .venv/bin/python benchmarks/sequential_error.py --reps 20000 --out results/reference/sequential-error.json

Every draw comes from ``--seed``; the numbers do not depend on the machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pemma_cl.evaluation.sequential import SequentialPlan, simulate_false_decisions
from pemma_cl.run.config import DEFAULT_MAX_SEEDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20000, help="simulated decide runs per setting")
    parser.add_argument("--max-seeds", type=int, default=DEFAULT_MAX_SEEDS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="JSON file to write")
    args = parser.parse_args()
    plan = SequentialPlan.for_max_seeds(args.max_seeds)
    settings = [(m, 0.0) for m in (1, 2, 3)] + [(1, shift) for shift in (0.5, 1.0, 1.5)]
    rows = []
    print(f"looks {plan.looks}, alpha {plan.alpha}, {args.reps} runs each")
    print(f"{'contrasts':>9} {'shift/SD':>8} | {'rule':>10} {'any decision':>12} {'held':>6} {'not held':>8} "
          f"{'mean seeds':>10}")
    for contrasts, shift in settings:
        rates = simulate_false_decisions(plan, contrasts, args.reps, seed=args.seed, shift=shift)
        for rule, r in rates.items():
            rows.append({"contrasts": contrasts, "shift_sd": shift, "rule": rule, **r})
            print(f"{contrasts:>9} {shift:>8.1f} | {rule:>10} {r['any_decision']:>12.4f} {r['held']:>6.3f} "
                  f"{r['not_held']:>8.3f} {r['mean_seeds']:>10.2f}", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"looks": list(plan.looks), "alpha": plan.alpha, "reps": args.reps,
                                        "seed": args.seed, "rows": rows}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
