"""Builds a PEMMA strategy: the frozen CT base with LoRA or DoRA adapter sets, per task or shared."""

from __future__ import annotations

from collections.abc import Sequence

from avalanche.core import SupervisedPlugin

from pemma_cl.models.adapters import SHARED_ADAPTER, adapter_name, wrap_with_adapters
from pemma_cl.models.pemma import PemmaDesign, PemmaNetwork
from pemma_cl.training.context import BuildContext
from pemma_cl.training.plugins.adapters import SharedAdapterPlugin, TaskAdapterPlugin
from pemma_cl.training.template import SegmentationTemplate


def build_pemma(ctx: BuildContext, use_dora: bool, shared: bool, design: PemmaDesign = PemmaDesign(),
                plugins: Sequence[SupervisedPlugin] = ()) -> SegmentationTemplate:
    """PEMMA on the shared CT base.

    Args:
        ctx: the run's build context.
        use_dora: DoRA instead of LoRA.
        shared: one adapter set continued through the stream, task-agnostic (the authors' protocol); else one
            set per task, chosen by task label at evaluation.
        design: choices the paper leaves open.
        plugins: further plugins of the strategy (after the adapter plugin).
    """
    first = SHARED_ADAPTER if shared else adapter_name(ctx.task_labels[0])
    pemma = PemmaNetwork(ctx.bases.get("ct"), ctx.preset, design, ehr_size=ctx.ehr_size)
    model = wrap_with_adapters(pemma, ctx.preset, use_dora=use_dora, first_adapter=first, design=design)
    plugin = (SharedAdapterPlugin if shared else TaskAdapterPlugin)(ctx.experience_modalities, ctx.experience_kinds)
    return ctx.make_strategy(model, plugins=[plugin, *plugins], lr=ctx.preset.adapter_lr)
