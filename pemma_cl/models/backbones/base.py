"""What a segmentation backbone gives PEMMA and the suite: one subclass of :class:`Backbone` per network family.

PEMMA (:mod:`pemma_cl.models.pemma`) is written once against this interface: it embeds CT and PET with two patch
embeddings, mixes the tokens, runs the backbone's frozen encoder on them, adds a PET pathway to the backbone's first
(full-resolution) skip and decodes with the backbone's frozen decoder. Adding a backbone is one file: a subclass
registered in :data:`pemma_cl.models.backbones.BACKBONES`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pemma_cl.data.records import MODALITIES
from pemma_cl.models.presets import Preset


def all_present(x: torch.Tensor, modality_mask: torch.Tensor | None) -> torch.Tensor:
    """The modality mask, or "every modality present" when None.

    Avalanche's own plugins (EWC's importances, LwF's distillation) call ``model(x)`` with no mask.
    """
    if modality_mask is None:
        return torch.ones(len(x), len(MODALITIES), dtype=torch.bool, device=x.device)
    return modality_mask


class Backbone:
    """A network family (MONAI UNETR, Swin UNETR) seen through the parts PEMMA needs.

    Attributes:
        name: the ``--backbone`` name.
        network_class: the MONAI class its networks are instances of.
        lora_targets: peft ``target_modules`` regex of the linears LoRA/DoRA adapts, as named inside a PEMMA model
            (the backbone network is its ``base``); a regex, because peft's plain-name matching also catches
            same-named layers elsewhere (a Swin patch embedding's ``proj``).
        decoder_head: full names (inside a PEMMA model) of the last decoder stage and output convolution.
        builds_on_meta: whether a network can be built on PyTorch's meta device (shapes only, no memory).
    """

    name: str
    network_class: type[nn.Module]
    lora_targets: str
    decoder_head: tuple[str, ...]
    builds_on_meta: bool = True

    def build(self, preset: Preset, in_channels: int, num_classes: int) -> nn.Module:
        """A new network of the preset's size with ``in_channels`` input channels and ``num_classes`` outputs
        (background plus one per structure of the data:
        :attr:`~pemma_cl.data.description.DatasetDescription.num_classes`)."""
        raise NotImplementedError

    def patch_embedding(self, net: nn.Module) -> nn.Module:
        """The network's own patch embedding (CT's, in a CT base)."""
        raise NotImplementedError

    def new_patch_embedding(self, net: nn.Module, preset: Preset) -> nn.Module:
        """A randomly initialised one-channel patch embedding shaped like :meth:`patch_embedding` (PET's)."""
        raise NotImplementedError

    def embed(self, embedding: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Tokens ``[B, N, C]`` of ``image`` through ``embedding``, and what :meth:`encode` needs to use them (the
        token grid)."""
        raise NotImplementedError

    def token_width(self, net: nn.Module) -> int:
        """C, the width of :meth:`embed`'s tokens."""
        raise NotImplementedError

    def encode(self, net: nn.Module, tokens: torch.Tensor, grid: Any) -> tuple[torch.Tensor, Any]:
        """The encoder after the patch embedding: ``(deepest tokens [B, N', C'] for a survival head, features for
        :meth:`decode`)``."""
        raise NotImplementedError

    def head_width(self, net: nn.Module) -> int:
        """C', the width of :meth:`encode`'s deepest tokens."""
        raise NotImplementedError

    def first_skip(self, net: nn.Module, image: torch.Tensor) -> torch.Tensor:
        """The full-resolution skip the decoder's last stage joins (from the image itself)."""
        raise NotImplementedError

    def skip_channels(self, net: nn.Module) -> int:
        """Channels of :meth:`first_skip`."""
        raise NotImplementedError

    def decode(self, net: nn.Module, first_skip: torch.Tensor, features: Any) -> torch.Tensor:
        """Logits ``[B, num_classes, D, H, W]`` from the first skip and :meth:`encode`'s features."""
        raise NotImplementedError

    def forward_tokens(self, net: nn.Module, image: torch.Tensor) -> torch.Tensor:
        """The deepest encoder tokens of ``image`` through the network's own patch embedding."""
        tokens, grid = self.embed(self.patch_embedding(net), image)
        return self.encode(net, tokens, grid)[0]
