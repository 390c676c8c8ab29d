"""Recompute a stored ``run --decide`` run's looks and decisions with the suite's current rule, from its seeds' files.

    .venv/bin/python benchmarks/replay_decide.py RUN_DIR [--out FILE]

The same plan (looks from the run's ``max_seeds``), the same per-seed values of its stream's primary contrasts
(``pemma_cl.report.contrasts.seed_values``) and the rule of ``pemma_cl.run.decide`` as it is now; the record is
the one a decide run writes into its manifest (``extra.decide``), written to ``RUN_DIR/decide-replay.json`` by
default. Used when the rule changed after a run (docs/decide.md says which).
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
