"""PEMMA with DoRA (weight-decomposed LoRA) in place of LoRA, one adapter set per task; otherwise as pemma-lora."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("pemma-dora", "PEMMA: frozen CT base, one DoRA adapter set per task, picked by task label "
                                 "(task-aware; zero forgetting by construction)", family="PEMMA",
                   task_kinds=("segmentation", "prognosis"), frozen_earlier_tasks=True)
def build(ctx):
    from pemma_cl.training.pemma_strategy import build_pemma

    return build_pemma(ctx, use_dora=True, shared=False)
