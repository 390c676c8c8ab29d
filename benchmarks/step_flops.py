"""Where PEMMA's training-step arithmetic goes: GFLOP of one step with parts of PEMMA frozen, against full fine-tuning.

PEMMA's backward pass skips the frozen base's weight gradients but must carry every activation's gradient back to
the PET embedding at the network's input. This script measures how much of a step that leaves, by freezing what
else PEMMA trains (its LoRA matrices, its full-resolution PET skip pathway, or both; the PET embedding, token fusion
and missing-modality adapters always train), and prints (and writes as JSON) each variant's forward, backward and
step GFLOP and the step's ratio to full fine-tuning's. The frozen variants are measurements, not strategies::

    .venv/bin/python benchmarks/step_flops.py --preset tiny --out results/reference/step-flops-tiny.json

Counted by :func:`pemma_cl.measure.profile.profile_strategies` (PyTorch's ``FlopCounterMode``), so the same on any machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from avalanche.core import SupervisedPlugin

from pemma_cl.measure.profile import REFERENCE, profile_strategies
from pemma_cl.models.presets import get_preset
from pemma_cl.strategy_api.registry import StrategyEntry, load_registry

#: Variant name -> substrings of the parameter names it freezes in pemma-lora.
FROZEN: dict[str, tuple[str, ...]] = {
    "pemma-lora": (),
    "pemma-lora, LoRA frozen": ("lora_",),
    "pemma-lora, PET skip frozen": ("pet_skip",),
    "pemma-lora, LoRA and PET skip frozen": ("lora_", "pet_skip"),
}


class Freeze(SupervisedPlugin):
    """After the adapter plugin has chosen what trains on an experience, freeze the parameters named by ``parts``."""

    def __init__(self, parts: tuple[str, ...]) -> None:
        super().__init__()
        self.parts = parts

    def before_training_exp(self, strategy, **kwargs) -> None:
        for name, parameter in strategy.model.named_parameters():
            if any(part in name for part in self.parts):
                parameter.requires_grad_(False)


def frozen_variant(entry: StrategyEntry, name: str, parts: tuple[str, ...]) -> StrategyEntry:
    """``entry`` built as usual, with :class:`Freeze` added after its own plugins."""
    def build(ctx):
        strategy = entry.build(ctx)
        strategy.plugins.append(Freeze(parts))
        return strategy

    return StrategyEntry(name=name, description=name, build=build, source=entry.source, family=entry.family)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="tiny or paper (paper: a few minutes on a CPU)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    args = parser.parse_args()
    registry = load_registry()
    entries = [registry.get(REFERENCE)] + [frozen_variant(registry.get("pemma-lora"), name, parts)
                                           for name, parts in FROZEN.items()]
    rows = profile_strategies(entries, get_preset(args.preset), torch.device("cpu"), steps=1)
    keys = ("forward_gflop", "backward_gflop", "train_step_gflop", "gflop_vs_full_finetune", "trainable_params")
    table = [{"variant": row["strategy"], **{key: row[key] for key in keys}} for row in rows]
    print(f"{'variant':40s} {'forward':>9s} {'backward':>9s} {'step':>9s} {'vs full-FT':>11s} {'trainable':>11s}")
    for row in table:
        print(f"{row['variant']:40s} {row['forward_gflop']:9.2f} {row['backward_gflop']:9.2f} "
              f"{row['train_step_gflop']:9.2f} {row['gflop_vs_full_finetune']:10.3f}x {row['trainable_params']:11,}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"preset": args.preset, "rows": table}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
