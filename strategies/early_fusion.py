"""Early fusion: a 2-channel CT+PET UNETR pre-trained with PET, then fine-tuned on each experience in turn."""

from __future__ import annotations

from pemma_cl.registry import register_strategy


@register_strategy("early-fusion", "2-channel CT+PET UNETR pre-trained with PET, all parameters trained sequentially")
def build(ctx):
    from pemma_cl.models.backbones import MaskedInputUNETR

    return ctx.make_strategy(MaskedInputUNETR(ctx.bases.get("fusion"), channels=(0, 1)))
