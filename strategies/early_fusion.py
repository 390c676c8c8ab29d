"""Early fusion: a 2-channel CT+PET UNETR pre-trained with PET, then fine-tuned on each experience in turn.

Trained on complete CT+PET pairs only (no modality dropout), as early fusion is used in practice: under
CT-only or PET-only input the missing channel is zeros, which is exactly the weakness PEMMA addresses.
"""

from __future__ import annotations

from pemma_cl.registry import register_strategy


@register_strategy("early-fusion", "2-channel CT+PET UNETR pre-trained with PET, all parameters trained sequentially")
def build(ctx):
    from pemma_cl.models.backbones import MaskedInputUNETR

    return ctx.make_strategy(MaskedInputUNETR(ctx.bases.get("fusion"), channels=(0, 1)), modality_dropout=0.0)
