"""Recompute a stored ``run --decide`` run's looks and decisions from its seeds' files, under the rule its record names.

    .venv/bin/python benchmarks/replay_decide.py RUN_DIR [--out FILE]

The same plan (looks from the run's ``max_seeds``), the same per-seed values of its stream's primary contrasts
(``pemma_cl.report.contrasts.seed_values``) and the rule of its manifest's record (``extra.decide``: its ledger
levels, or the declared family's Holm, and its bound convention; ``pemma_cl.run.decide.replay_looks``); the record
is written to ``RUN_DIR/decide-replay.json`` by default. ``results/reference/centers-decide/decide-replay.json``
was written by an earlier version under the declared family of six, when the run's own rule had been Holm across its
stream's two contrasts (docs/decide.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pemma_cl.run.config import RunConfig
from pemma_cl.report.decisions import render_decisions
from pemma_cl.run.decide import replay_looks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a published run folder of a decide run")
    parser.add_argument("--out", type=Path, help="JSON file of the record (default: RUN_DIR/decide-replay.json)")
    args = parser.parse_args()
    config = RunConfig.from_dict(json.loads((args.run_dir / "config.json").read_text(encoding="utf-8")))
    record = replay_looks(args.run_dir, config)
    out = args.out or args.run_dir / "decide-replay.json"
    out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(render_decisions(record))
    print(out)


if __name__ == "__main__":
    main()
