"""A-GEM (Chaudhry et al., 2019) on PEMMA's architecture from the CT base: full fine-tuning whose gradient is
projected whenever it would raise the loss on an episodic memory of earlier cases
(see :class:`pemma_cl.training.plugins.rehearsal.SegmentationAGEMPlugin`)."""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.strategy_api.registry import register_strategy


@dataclass(frozen=True)
class AGEMOptions:
    """A-GEM's options.

    Attributes:
        patterns_per_experience: cases of each experience kept in the episodic memory.
        sample_size: memory cases in each reference batch (one extra forward and backward pass per step).
    """

    patterns_per_experience: int = 4
    sample_size: int = 2

    def __post_init__(self) -> None:
        if self.patterns_per_experience < 1:
            raise ValueError(f"patterns_per_experience: expected a positive number of cases, got {self.patterns_per_experience}")
        if self.sample_size < 1:
            raise ValueError(f"sample_size: expected a positive number of cases, got {self.sample_size}")


@register_strategy("agem", "A-GEM: PEMMA architecture, all parameters trained, gradients projected so as not to "
                           "raise the loss on an episodic memory of earlier cases", family="rehearsal",
                   options=AGEMOptions)
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.rehearsal import SegmentationAGEMPlugin

    return build_on_ct_base(ctx, [SegmentationAGEMPlugin(ctx.options.patterns_per_experience, ctx.options.sample_size)])
