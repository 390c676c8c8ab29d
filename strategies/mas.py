"""MAS (Aljundi et al., 2018) on PEMMA's architecture from the CT base: full fine-tuning plus a quadratic pull
towards earlier weights, weighted by how much each parameter moves the output (no labels needed).

Importance is the gradient magnitude of the output's squared L2 norm (over classes, averaged over voxels) under
the modality masks training draws (see :mod:`pemma_cl.training.plugins.importance`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.strategy_api.registry import register_strategy


@dataclass(frozen=True)
class MASOptions:
    """MAS's options.

    Attributes:
        lambda_: weight of the penalty (option ``lambda``).
        alpha: share of the earlier importance kept when a new experience's is merged in.
    """

    lambda_: float = 1.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        if self.lambda_ < 0:
            raise ValueError(f"lambda: expected a number >= 0, got {self.lambda_}")
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha: expected a number in [0, 1], got {self.alpha}")


@register_strategy("mas", "MAS: PEMMA architecture, all parameters trained, pulled towards earlier weights by "
                          "output-sensitivity importance computed under the training modality masks",
                   family="regularisation", options=MASOptions)
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.importance import SegmentationMASPlugin

    return build_on_ct_base(ctx, [SegmentationMASPlugin(ctx.options.lambda_, ctx.options.alpha)])
