"""PEMMA with DoRA (weight-decomposed LoRA) in place of LoRA; everything else as pemma-lora."""

from __future__ import annotations

from pemma_cl.registry import register_strategy


@register_strategy("pemma-dora", "PEMMA: frozen CT base, per-task DoRA adapters + PET embedding/skip (task-aware)")
def build(ctx):
    from pemma_cl.training.pemma_strategy import build_pemma

    return build_pemma(ctx, use_dora=True)
