"""InfLoRA (Liang & Li, CVPR 2024): a new LoRA per experience on PEMMA's frozen CT base whose down-projection A is
designed before the experience trains, from the layer inputs of its training data, inside the orthogonal complement
of the earlier experiences' input subspaces, and then kept fixed; only the up-projection B trains. Earlier LoRAs are
frozen; the sum of every LoRA at inference, with no task label (task-agnostic).

After each experience, the inputs of every LoRA'd linear on its training data extend an orthonormal basis M of the
earlier input subspaces with the top directions that bring the captured share of their energy to the threshold
(GPM's criterion, which InfLoRA uses). Option ``threshold=0.95`` is the first experience's threshold of the
authors' CIFAR-100 and DomainNet configurations; as in their code it rises linearly toward 1 over the stream's
experiences. Not tuned here. PEMMA's PET parts are one set continued through the stream, as in
``pemma-lora-shared``. Details and the deviations from the authors' code: :mod:`pemma_cl.strategies._inflora`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.strategy_api.registry import register_strategy


@dataclass(frozen=True)
class InfLoraOptions:
    """InfLoRA's options.

    Attributes:
        threshold: share of an experience's input energy (per LoRA'd linear) that the basis of earlier inputs must
            capture after the first experience; later experiences' thresholds rise linearly toward 1.
    """

    threshold: float = 0.95

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold: expected a number in (0, 1], got {self.threshold}")


@register_strategy("inflora", "InfLoRA: frozen CT base with PEMMA's PET parts, a new LoRA per experience whose fixed "
                              "down-projection avoids the earlier experiences' input subspaces (from activations), "
                              "all LoRAs summed at inference (task-agnostic)", family="PEMMA", options=InfLoraOptions)
def build(ctx):
    from pemma_cl.strategies._inflora import InfLoraPlugin
    from pemma_cl.strategies._lora_sum import build_summed_lora

    return build_summed_lora(ctx, InfLoraPlugin(ctx.options.threshold, ctx.experience_modalities,
                                                ctx.experience_kinds))
