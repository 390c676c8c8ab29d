"""Experience replay on PEMMA's architecture from the CT base: full fine-tuning with a buffer of whole earlier
cases mixed into every mini-batch (see :class:`pemma_cl.training.plugins.rehearsal.CaseReplayPlugin`)."""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.strategy_api.registry import register_strategy


@dataclass(frozen=True)
class ReplayOptions:
    """Replay's options.

    Attributes:
        budget: cases the buffer holds in all, split evenly over the experiences seen.
        batch_size_mem: buffer cases added to each training mini-batch (beside the preset's batch of new cases).
    """

    budget: int = 16
    batch_size_mem: int = 2

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"budget: expected a positive number of cases, got {self.budget}")
        if self.batch_size_mem < 1:
            raise ValueError(f"batch_size_mem: expected a positive number of cases, got {self.batch_size_mem}")


@register_strategy("replay", "Replay: PEMMA architecture, all parameters trained, a per-experience reservoir of "
                             "whole earlier cases (budget in cases) sampled into every mini-batch",
                   family="rehearsal", options=ReplayOptions)
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.rehearsal import CaseReplayPlugin

    return build_on_ct_base(ctx, [CaseReplayPlugin(ctx.options.budget, ctx.options.batch_size_mem)])
