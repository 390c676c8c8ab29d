"""Choose the ``tiny`` preset's prognosis learning-rate scale on validation cases (never on test cases).

Runs the ``modalities`` stream with ``eval_on=val`` for each candidate ``prognosis_lr_scale`` and strategy, and
prints (and writes as JSON) the C-index right after each prognosis task. How the README's choice (0.1) was made::

    .venv/bin/python benchmarks/tune_prognosis_lr.py \
        --out results/reference/modalities-tuning/prognosis_lr_scale_val.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from pemma_cl.models.presets import get_preset
from pemma_cl.run.config import RunConfig
from pemma_cl.run.unit import prepare_run, run_strategy
from pemma_cl.strategy_api.registry import load_registry
from pemma_cl.streams.spec import load_stream

SCALES = (0.1, 1.0)
STRATEGIES = ("pemma-lora", "full-finetune")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = RunConfig(stream=load_stream("modalities"), strategies=STRATEGIES, eval_on="val",
                       results_dir=Path("results"), device="cpu")
    registry, results = load_registry(), {}
    for scale in SCALES:
        inputs = prepare_run(config, args.seed, dataclasses.replace(get_preset("tiny"), prognosis_lr_scale=scale))
        for name in STRATEGIES:
            started = time.perf_counter()
            unit = run_strategy(registry.get(name), inputs.stream, inputs.ctx_settings)
            results[f"{name} scale {scale}"] = {row["eval_experience_name"]: round(row["cindex"], 3)
                                                for row in unit.prognosis
                                                if row["trained_through"] == row["eval_experience"]}
            print(f"{name:15s} scale {scale:<4} {results[f'{name} scale {scale}']} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
