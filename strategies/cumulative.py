"""Cumulative: PEMMA's architecture from the CT base, each experience trained on every case seen so far."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("cumulative", "Cumulative: PEMMA architecture, all parameters trained, each experience on the "
                                 "training data of every experience so far (keeps all past data)",
                   family="rehearsal")
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.rehearsal import CumulativeDataPlugin

    return build_on_ct_base(ctx, [CumulativeDataPlugin()])
