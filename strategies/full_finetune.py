"""Full fine-tuning: PEMMA's architecture on the CT base, every parameter trained on each experience in turn."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("full-finetune", "PEMMA architecture, all parameters trained sequentially (no CL protection; "
                                    "Avalanche's naive)", family="reference",
                   task_kinds=("segmentation", "prognosis"))
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base

    return build_on_ct_base(ctx)
