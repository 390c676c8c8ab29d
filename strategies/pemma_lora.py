"""PEMMA with LoRA, one adapter set per task: frozen CT base, per-task LoRA on the ViT + PET embedding, fusion,
missing-modality adapters and PET skip; evaluated task-aware (zero forgetting by construction)."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("pemma-lora", "PEMMA: frozen CT base, one LoRA adapter set per task, picked by task label "
                                 "(task-aware; zero forgetting by construction)", family="PEMMA",
                   task_kinds=("segmentation", "prognosis"), frozen_earlier_tasks=True)
def build(ctx):
    from pemma_cl.training.pemma_strategy import build_pemma

    return build_pemma(ctx, use_dora=False, shared=False)
