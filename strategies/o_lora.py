"""O-LoRA (Wang et al., 2023): a new LoRA per experience on PEMMA's frozen CT base, trained with a penalty on the
overlap of its down-projection with every earlier LoRA's (lambda * sum ||A_new A_old^T||_F^2); earlier LoRAs frozen;
the sum of every LoRA at inference, with no task label (task-agnostic).

PEMMA's PET parts (PET embedding, token fusion, missing-modality adapters, PET skip) are one set continued through
the stream, as in ``pemma-lora-shared``, so the comparison is about the LoRA rule. Option ``lambda=0.5`` is the
paper's lambda_1 (its T5 runs), not tuned here. Details: :mod:`pemma_cl.strategies._o_lora`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pemma_cl.strategy_api.registry import register_strategy


@dataclass(frozen=True)
class OLoraOptions:
    """O-LoRA's options.

    Attributes:
        lambda_: weight of the orthogonality penalty (option ``lambda``); the paper's lambda_1 = 0.5.
    """

    lambda_: float = 0.5

    def __post_init__(self) -> None:
        if self.lambda_ < 0:
            raise ValueError(f"lambda: expected a number >= 0, got {self.lambda_}")


@register_strategy("o-lora", "O-LoRA: frozen CT base with PEMMA's PET parts, a new LoRA per experience kept "
                             "orthogonal to the earlier (frozen) ones by a penalty, all LoRAs summed at inference "
                             "(task-agnostic)", family="PEMMA", options=OLoraOptions)
def build(ctx):
    from pemma_cl.strategies._lora_sum import build_summed_lora
    from pemma_cl.strategies._o_lora import OLoraPlugin

    return build_summed_lora(ctx, OLoraPlugin(ctx.options.lambda_, ctx.experience_modalities, ctx.experience_kinds))
