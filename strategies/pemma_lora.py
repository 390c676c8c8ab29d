"""PEMMA with LoRA: frozen CT base, per-task LoRA on the ViT + per-task PET embedding, fusion, adapters, skip."""

from __future__ import annotations

from pemma_cl.registry import register_strategy


@register_strategy("pemma-lora", "PEMMA: frozen CT base, per-task LoRA adapters + PET embedding/skip (task-aware)")
def build(ctx):
    from pemma_cl.training.pemma_strategy import build_pemma

    return build_pemma(ctx, use_dora=False)
