"""Early fusion: a 2-channel (CT, PET) network from the fusion base, fine-tuned on each experience in turn.

The fusion base gets only the modalities the stream's pre-training declares: after CT-only pre-training it is
the CT base with zero PET-input weights, and it first learns PET in the stream (see
:mod:`pemma_cl.training.bases`). Trained on the complete inputs of each experience (no modality dropout), as
early fusion is used in practice: a missing channel is zeros, at training (an experience without PET) and at
test time (CT-only or PET-only input), which is exactly the weakness PEMMA addresses.
"""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("early-fusion", "2-channel CT+PET network from the fusion base (CT base + zero PET weights after "
                                   "CT-only pre-training), all parameters trained sequentially", family="reference",
                   task_kinds=("segmentation", "prognosis"))
def build(ctx):
    from pemma_cl.models.backbones import MaskedInputNetwork
    from pemma_cl.training.bases import BASE_KINDS

    model = MaskedInputNetwork(ctx.bases.get("fusion"), channels=BASE_KINDS["fusion"], ehr_size=ctx.ehr_size)
    return ctx.make_strategy(model, modality_dropout=0.0)
