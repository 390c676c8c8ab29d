"""Why does PEMMA trail full fine-tuning? A measured ablation on validation cases (never on test cases).

Runs PEMMA variants (what it may train, how it is initialised, its learning rate, its budget) beside full
fine-tuning and early fusion of the same network on the same budget, all reporting the validation cases
(``eval_on="val"``: they train on the training cases only), prints a table and writes it as JSON::

    .venv/bin/python benchmarks/ablate_pemma.py                                  # built-in cohort, centers
    .venv/bin/python benchmarks/ablate_pemma.py --data hecktor:/tmp/s7 --out results/ablation-s7.json
    .venv/bin/python benchmarks/ablate_pemma.py --only pemma-lora --only full-finetune

Each variant is a strategy built through the same plugin API a user's strategy uses, so it runs the exact
code path of ``pemma-bench run``. The README's ablation table comes from this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: a strategy under a budget.

    Attributes:
        name: row label.
        strategy: ``pemma-lora``, ``pemma-lora-shared``, ``pemma-dora``, ``full-finetune`` or ``early-fusion``.
        preset: fields of the ``tiny`` preset to change (``pretrain_epochs``, ``adapter_lr``, ``lora_rank`` ...).
        design: fields of :class:`pemma_cl.models.pemma.PemmaDesign` to change.
        what: one line on what the row changes.
    """

    name: str
    strategy: str
    what: str
    preset: dict[str, Any] = field(default_factory=dict)
    design: dict[str, Any] = field(default_factory=dict)


VARIANTS: tuple[Variant, ...] = (
    Variant("full-finetune", "full-finetune", "reference: every parameter of the same network, same budget"),
    Variant("early-fusion", "early-fusion", "reference: 2-channel UNETR from the CT base, every parameter"),
    Variant("pemma-lora", "pemma-lora", "the default (per-task LoRA, frozen base and decoder)"),
    Variant("pemma-lora-shared", "pemma-lora-shared", "the authors' protocol: one adapter set, task-agnostic"),
    Variant("pemma-dora", "pemma-dora", "DoRA in place of LoRA"),
    Variant("base-former", "pemma-lora", "CT base of the former default: 20 epochs at lr 2e-3 (now 40 at 4e-3)",
            preset={"pretrain_epochs": 20, "pretrain_lr": 2e-3}),
    Variant("full-ft-base-former", "full-finetune", "full fine-tuning from that former base",
            preset={"pretrain_epochs": 20, "pretrain_lr": 2e-3}),
    Variant("base-40-lr-2e-3", "pemma-lora", "CT base 40 epochs at lr 2e-3", preset={"pretrain_lr": 2e-3}),
    Variant("base-30", "pemma-lora", "CT base 30 epochs at lr 4e-3", preset={"pretrain_epochs": 30}),
    Variant("pet-embed-ct-copy", "pemma-lora", "PET patch embedding initialised as a copy of the CT one (authors')",
            design={"pet_embed_init": "ct-copy"}),
    Variant("lora-rank-16", "pemma-lora", "LoRA rank 16 instead of 4", preset={"lora_rank": 16}),
    Variant("adapter-lr-3e-3", "pemma-lora", "adapter learning rate 3e-3 instead of 1e-2", preset={"adapter_lr": 3e-3}),
    Variant("adapter-lr-3e-2", "pemma-lora", "adapter learning rate 3e-2 instead of 1e-2", preset={"adapter_lr": 3e-2}),
    Variant("epochs-10", "pemma-lora", "10 epochs per experience instead of the preset's", preset={"epochs": 10}),
    Variant("full-ft-epochs-10", "full-finetune", "full fine-tuning, 10 epochs per experience", preset={"epochs": 10}),
    Variant("decoder-head", "pemma-lora", "beyond the paper: each adapter set also trains its own copy of the "
            "last decoder stage and output convolution", design={"decoder_head": True}),
    # The reference strategies' own learning rate (results/reference/tiny-lr-val; the preset's default is 1e-3).
    *(Variant(f"{prefix}-lr-{lr}", strategy, f"{label} at learning rate {lr} instead of the preset's 1e-3",
              preset={"lr": float(lr)})
      for strategy, prefix, label in (("full-finetune", "full-ft", "full fine-tuning"),
                                      ("early-fusion", "early-fusion", "early fusion"))
      for lr in ("2e-3", "5e-4", "4e-3")),
)


def _build(variant: Variant) -> Callable:
    """The build function of a variant (what ``register_strategy`` would receive)."""

    def build(ctx):
        from pemma_cl.models.backbones import MaskedInputNetwork
        from pemma_cl.models.pemma import PemmaDesign, PemmaNetwork
        from pemma_cl.training.pemma_strategy import build_pemma

        if variant.strategy == "full-finetune":
            return ctx.make_strategy(PemmaNetwork(ctx.bases.get("ct"), ctx.preset))
        if variant.strategy == "early-fusion":
            return ctx.make_strategy(MaskedInputNetwork(ctx.bases.get("fusion"), channels=(0, 1)), modality_dropout=0.0)
        return build_pemma(ctx, use_dora="dora" in variant.strategy, shared=variant.strategy.endswith("-shared"),
                           design=PemmaDesign(**variant.design))

    return build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synthetic", help="'synthetic' or 'hecktor:DIR' (prepared for size 32)")
    parser.add_argument("--stream", default="centers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", action="append", help="run only these variants (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("results/ablation.json"))
    args = parser.parse_args()

    import pandas as pd

    from pemma_cl.models.presets import get_preset
    from pemma_cl.report.summary import METRIC_COLUMNS, summarize
    from pemma_cl.run.config import RunConfig
    from pemma_cl.run.unit import prepare_run, run_strategy
    from pemma_cl.strategy_api.registry import StrategyEntry
    from pemma_cl.streams.spec import load_stream

    variants = [v for v in VARIANTS if not args.only or v.name in args.only]
    config = RunConfig(stream=load_stream(args.stream), strategies=("ablation",), seeds=(args.seed,), data=args.data,
                       eval_on="val")
    results = []
    for variant in variants:
        preset = dataclasses.replace(get_preset("tiny"), **variant.preset)
        inputs = prepare_run(config, args.seed, preset)
        started = time.perf_counter()
        unit = run_strategy(StrategyEntry(variant.name, variant.what, _build(variant), "ablation"),
                            inputs.stream, inputs.ctx_settings)
        summary = summarize(pd.DataFrame(unit.rows, columns=METRIC_COLUMNS), {})[variant.name]["inputs"]
        results.append({"name": variant.name, "strategy": variant.strategy, "what": variant.what,
                        "preset": variant.preset, "design": variant.design, "wall_seconds": time.perf_counter() - started,
                        "train_seconds": unit.costs["train_seconds"],
                        **{f"final_dice_{s}": summary[s]["final_dice"] for s in ("ct", "pet", "ctpet")},
                        "forgetting_ctpet": summary["ctpet"]["forgetting"]})
        print(f"{variant.name:20} CT+PET {results[-1]['final_dice_ctpet']:.3f}", flush=True)
    reference = next((r["final_dice_ctpet"] for r in results if r["name"] == "full-finetune"), None)
    print(f"\nvalidation cases, stream {args.stream}, data {args.data}, seed {args.seed}")
    print(f"{'variant':20} {'CT':>6} {'PET':>6} {'CT+PET':>7} {'vs full-ft':>10} {'train s':>8}  what")
    for r in results:
        gap = "" if reference is None else f"{r['final_dice_ctpet'] - reference:+.3f}"
        print(f"{r['name']:20} {r['final_dice_ct']:6.3f} {r['final_dice_pet']:6.3f} {r['final_dice_ctpet']:7.3f} "
              f"{gap:>10} {r['train_seconds']:8.0f}  {r['what']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"data": args.data, "stream": args.stream, "seed": args.seed, "eval_on": "val",
                                    "results": results}, indent=2) + "\n", encoding="utf-8")
    print(args.out)


if __name__ == "__main__":
    main()
