"""EWC (Kirkpatrick et al., 2017) on PEMMA's architecture from the CT base: full fine-tuning plus a quadratic pull
of every parameter towards its value after each earlier experience, weighted by its Fisher importance.

The Fisher is the squared gradient of the training loss (DiceCE) under the modality masks training draws, so
the missing-modality paths are protected too (see :mod:`pemma_cl.training.plugins.importance`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.strategy_api.registry import register_strategy

EWC_MODES = ("separate", "online")


@dataclass(frozen=True)
class EWCOptions:
    """EWC's options.

    Attributes:
        lambda_: weight of the penalty (option ``lambda``).
        mode: ``separate`` (one penalty per earlier experience, Kirkpatrick et al.) or ``online`` (one running
            penalty, Schwarz et al., 2018).
        decay: how much of the earlier importance the online mode keeps at each experience.
    """

    lambda_: float = 1000.0
    mode: str = "separate"
    decay: float = 1.0

    def __post_init__(self) -> None:
        if self.lambda_ < 0:
            raise ValueError(f"lambda: expected a number >= 0, got {self.lambda_}")
        if self.mode not in EWC_MODES:
            raise ValueError(f"mode: expected one of {', '.join(EWC_MODES)}, got {self.mode!r}")
        if not 0 < self.decay <= 1:
            raise ValueError(f"decay: expected a number in (0, 1], got {self.decay}")


@register_strategy("ewc", "EWC: PEMMA architecture, all parameters trained, pulled towards earlier experiences' "
                          "weights by a Fisher penalty computed under the training modality masks",
                   family="regularisation", options=EWCOptions)
def build(ctx):
    from pemma_cl.training.baselines import build_on_ct_base
    from pemma_cl.training.plugins.importance import SegmentationEWCPlugin

    options = ctx.options
    return build_on_ct_base(ctx, [SegmentationEWCPlugin(options.lambda_, options.mode, options.decay)])
