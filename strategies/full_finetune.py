"""Full fine-tuning: PEMMA's architecture on the CT base, every parameter trained on each experience in turn."""

from __future__ import annotations

from pemma_cl.registry import register_strategy


@register_strategy("full-finetune", "PEMMA architecture, all parameters trained sequentially (no CL protection)")
def build(ctx):
    from pemma_cl.models.pemma import PemmaUNETR

    return ctx.make_strategy(PemmaUNETR(ctx.bases.get("ct"), ctx.preset))
