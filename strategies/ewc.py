"""EWC (Kirkpatrick et al., 2017) on PEMMA's architecture from the CT base: full fine-tuning plus a quadratic pull
of every parameter towards its value after each earlier experience, weighted by its Fisher importance.

The Fisher is the squared gradient of the training loss (DiceCE) under the modality masks training draws, so
the missing-modality paths are protected too (see :mod:`pemma_cl.training.plugins.importance`).
"""

from __future__ import annotations

from pemma_cl.strategies._ewc_options import EWCOptions
from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("ewc", "EWC: PEMMA architecture, all parameters trained, pulled towards earlier experiences' "
                          "weights by a Fisher penalty computed under the training modality masks",
                   family="regularisation", options=EWCOptions)
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.importance import SegmentationEWCPlugin

    options = ctx.options
    return build_on_ct_base(ctx, [SegmentationEWCPlugin(options.lambda_, options.mode, options.decay)])
