"""EWC's options, shared by the ``ewc`` baseline and ``pemma-lora-ewc`` (a module of its own, so that one strategy
file never imports another: importing a strategy module registers it)."""

from __future__ import annotations

from dataclasses import dataclass

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
