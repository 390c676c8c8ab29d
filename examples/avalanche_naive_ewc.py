"""Avalanche's own Naive and EWC on the suite's ``centers`` stream, scored and summarised as ``pemma-bench run`` does.

    python examples/avalanche_naive_ewc.py --preset tiny --seed 0          # --stream names another stream

Both start from the shared CT base with a zeroed PET input channel (the ``fusion`` base early fusion starts from) and
train with the suite's DiceCE loss, AdamW and the preset's budget; the scorer evaluates each under CT, PET and CT+PET.
"""

from __future__ import annotations

import argparse

import pandas as pd
from avalanche.training import EWC, Naive
from avalanche.training.plugins import EvaluationPlugin

import pemma_cl


def train(bm: pemma_cl.Scenario, name: str) -> tuple[list[dict], pd.DataFrame]:
    """Train one Avalanche strategy through the stream, evaluating before and after each experience."""
    scorer = bm.scorer(name)
    model = bm.base("fusion")
    common = {"model": model, "optimizer": pemma_cl.make_optimizer(model.parameters(), bm.preset.lr),
              "criterion": pemma_cl.segmentation_loss(), "train_mb_size": bm.preset.batch_size,
              "train_epochs": bm.preset.epochs, "eval_mb_size": 4, "device": bm.device,
              "evaluator": EvaluationPlugin(scorer)}
    strategy = EWC(ewc_lambda=1.0, **common) if name == "ewc" else Naive(**common)
    strategy.eval(bm.scored_after(-1))
    for i, experience in enumerate(bm.train_stream):
        strategy.train(experience)
        strategy.eval(bm.scored_after(i))  # the states the metrics need, as pemma-bench run scores them
    return scorer.rows, scorer.cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", default="centers", help="a built-in stream's name or a stream file")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results-dir", default="results", help="where the shared bases are cached")
    args = parser.parse_args()
    bm = pemma_cl.scenario(args.stream, seed=args.seed, preset=args.preset, results_dir=args.results_dir)
    results = [train(bm, name) for name in ("naive", "ewc")]
    summary = pemma_cl.summarize([row for rows, _ in results for row in rows],
                                 cases=pd.concat([cases for _, cases in results], ignore_index=True))
    columns = ("final_dice", "forgetting", "bwt")
    table = pd.DataFrame([{"strategy": name, "input": inp, **{k: values[k] for k in columns}}
                          for name, entry in summary.items() for inp, values in entry["inputs"].items()])
    print(table.to_string(index=False, float_format="{:.3f}".format))


if __name__ == "__main__":
    main()
