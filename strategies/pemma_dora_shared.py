"""PEMMA with DoRA as the authors ran it: one adapter set continued through the stream, task-agnostic."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("pemma-dora-shared", "PEMMA, authors' protocol: frozen CT base, one DoRA adapter set continued "
                                        "through the stream (task-agnostic)", family="PEMMA",
                   task_kinds=("segmentation", "prognosis"))
def build(ctx):
    from pemma_cl.training.pemma_strategy import build_pemma

    return build_pemma(ctx, use_dora=True, shared=True)
