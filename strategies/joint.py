"""Joint training, the offline upper bound: PEMMA's architecture from the CT base, all parameters trained once on
every experience's training data. Not a continual method (see :mod:`pemma_cl.core.protocol`)."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("joint", "Joint (offline upper bound, not continual): PEMMA architecture, all parameters "
                            "trained once on every experience's training data", family="reference")
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.offline import JointTrainingPlugin

    return build_on_ct_base(ctx, [JointTrainingPlugin(ctx.stream_training_data)])
