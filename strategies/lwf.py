"""LwF (Li & Hoiem, 2016) for segmentation on PEMMA's architecture from the CT base: full fine-tuning plus
voxel-wise distillation of the previous experience's model (see :mod:`pemma_cl.training.plugins.distillation`)."""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.strategy_api.registry import register_strategy


@dataclass(frozen=True)
class LwFOptions:
    """LwF's options (defaults: Li & Hoiem's T = 2 and loss weight 1).

    Attributes:
        temperature: softening temperature of both models' class distributions.
        weight: weight of the distillation term beside the segmentation loss.
    """

    temperature: float = 2.0
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"temperature: expected a number > 0, got {self.temperature}")
        if self.weight < 0:
            raise ValueError(f"weight: expected a number >= 0, got {self.weight}")


@register_strategy("lwf", "LwF: PEMMA architecture, all parameters trained, distilling the previous model's "
                          "per-voxel soft output under the student's modality mask",
                   family="distillation", options=LwFOptions)
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.distillation import SegmentationLwFPlugin

    return build_on_ct_base(ctx, [SegmentationLwFPlugin(ctx.options.temperature, ctx.options.weight)])
