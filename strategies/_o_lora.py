"""O-LoRA's orthogonality penalty (Wang et al., 2023, "Orthogonal Subspace Learning for Language Model Continual
Learning") on PEMMA's per-experience LoRAs: the plugin of ``o-lora``.

While experience t trains, its loss gets ``lambda * sum over LoRA'd linears l and earlier experiences i of
||A_t^l A_i^l^T||_F^2``, A being a LoRA's down-projection [r, d_in] (peft's ``lora_A``): the squared entries of the
overlap matrix O = A_t A_i^T of the paper's Eq. 6, summed. The authors' code sums absolute values instead; this
follows the paper. The paper's second term (an L2 penalty on the new LoRA, lambda_2) is not used: its T5 runs set
it to 0. Earlier LoRAs are frozen and every trained LoRA is summed at inference (:mod:`._lora_sum`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pemma_cl.strategies._lora_sum import SummedLoraPlugin, lora_layers


def squared_overlap(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """||new old^T||_F^2 of two down-projections [r, d_in] (zero when their row spaces are orthogonal)."""
    return (new @ old.T).pow(2).sum()


def overlap(model: nn.Module, new: str, earlier: Sequence[str]) -> torch.Tensor:
    """O-LoRA's penalty before its weight: :func:`squared_overlap` of adapter ``new``'s down-projection with each of
    ``earlier``'s, summed over the LoRA'd linears of ``model``."""
    return sum((squared_overlap(layer.lora_A[new].weight, layer.lora_A[old].weight)
                for _, layer in lora_layers(model) for old in earlier), torch.zeros(()))


class OLoraPlugin(SummedLoraPlugin):
    """A new LoRA per experience (:class:`SummedLoraPlugin`) trained with O-LoRA's penalty.

    Args:
        weight: lambda, the weight of the penalty.
        experience_modalities: per experience of the stream (in order), the modalities of its training data.
        experience_kinds: per experience, its task kind.
    """

    def __init__(self, weight: float, experience_modalities: Sequence[Sequence[str]],
                 experience_kinds: Sequence[str] = ()) -> None:
        super().__init__(experience_modalities, experience_kinds)
        self.weight = weight

    def before_backward(self, strategy, **kwargs) -> None:
        if self.weight > 0 and self.earlier:
            strategy.loss = strategy.loss + self.weight * overlap(strategy.model, self.trained[-1], self.earlier)
