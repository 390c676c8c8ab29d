"""Builds a PEMMA strategy (frozen CT base + per-task LoRA or DoRA adapter sets)."""

from __future__ import annotations

from pemma_cl.models.adapters import wrap_with_adapters
from pemma_cl.models.pemma import PemmaUNETR
from pemma_cl.training.context import BuildContext
from pemma_cl.training.task_adapters import TaskAdapterPlugin
from pemma_cl.training.template import SegmentationTemplate


def build_pemma(ctx: BuildContext, use_dora: bool) -> SegmentationTemplate:
    """PEMMA on the shared CT base: one peft adapter set per task, chosen by task label at evaluation."""
    model = wrap_with_adapters(PemmaUNETR(ctx.bases.get("ct"), ctx.preset), ctx.preset, use_dora=use_dora,
                               first_task=ctx.task_labels[0])
    return ctx.make_strategy(model, plugins=[TaskAdapterPlugin()], lr=ctx.preset.adapter_lr)
