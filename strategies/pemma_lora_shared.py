"""PEMMA with LoRA as the authors ran it: one adapter set, trained at the first experience and continued through
every later one, evaluated without task labels; its forgetting is measured, not guaranteed."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("pemma-lora-shared", "PEMMA, authors' protocol: frozen CT base, one LoRA adapter set continued "
                                        "through the stream (task-agnostic)", family="PEMMA",
                   task_kinds=("segmentation", "prognosis"))
def build(ctx):
    from pemma_cl.training.pemma_strategy import build_pemma

    return build_pemma(ctx, use_dora=False, shared=True)
