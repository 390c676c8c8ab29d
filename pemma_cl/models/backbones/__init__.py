"""Segmentation backbones (one module each), the registry of them, and the plain masked-input network wrapper.

A network's backbone is found from its class (:func:`backbone_of`), so the models built on a network (PEMMA, the
masked-input wrapper, peft's adapters) need no backbone argument; a preset names the backbone its networks are
built with (:func:`build_network`).
"""

from __future__ import annotations

import torch
from torch import nn

from pemma_cl.models.backbones.base import Backbone, all_present
from pemma_cl.models.backbones.swin_unetr import SwinUnetrBackbone
from pemma_cl.models.backbones.unetr import UnetrBackbone
from pemma_cl.models.presets import Preset
from pemma_cl.models.survival import survival_head

__all__ = ["BACKBONES", "Backbone", "MaskedInputNetwork", "all_present", "backbone_of",
           "build_network", "get_backbone"]

#: Every backbone by its ``--backbone`` name.
BACKBONES: dict[str, Backbone] = {b.name: b for b in (UnetrBackbone(), SwinUnetrBackbone())}


def get_backbone(name: str) -> Backbone:
    """The backbone called ``name`` (a key of :data:`BACKBONES`)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def backbone_of(net: nn.Module) -> Backbone:
    """The backbone ``net`` is a network of."""
    for backbone in BACKBONES.values():
        if isinstance(net, backbone.network_class):
            return backbone
    raise TypeError(f"{type(net).__name__} is not a network of a known backbone ({', '.join(BACKBONES)})")


def build_network(preset: Preset, in_channels: int, num_classes: int) -> nn.Module:
    """A new network of the preset's backbone and size with ``in_channels`` inputs and ``num_classes`` outputs
    (background plus one per structure: :attr:`~pemma_cl.data.description.DatasetDescription.num_classes`)."""
    return get_backbone(preset.backbone).build(preset, in_channels, num_classes)


class MaskedInputNetwork(nn.Module):
    """A plain backbone network fed the modalities it was built for; missing modalities are zeroed.

    Used for the CT-only base (``channels=(0,)``) and for early fusion (``channels=(0, 1)``).

    Args:
        network: the wrapped network; its input channels must equal ``len(channels)``.
        channels: which input channels (0 CT, 1 PET) the network sees.
        ehr_size: carry a survival head on the encoder's deepest tokens reading an EHR vector of this length (a
            stream with prognosis experiences); None: no survival head.
    """

    def __init__(self, network: nn.Module, channels: tuple[int, ...], ehr_size: int | None = None) -> None:
        super().__init__()
        self.network = network
        self.channels = list(channels)
        self.backbone = backbone_of(network)
        if ehr_size is not None:
            self.survival_head = survival_head(self.backbone.head_width(network), ehr_size)

    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor | None = None,
                ehr: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x [B, 2, D, H, W] (CT, PET); modality_mask [B, 2] bool, False = modality missing (None: all present);
        ehr [B, ehr_size]: given for prognosis.

        Returns segmentation logits [B, num_classes, D, H, W], or with ``ehr`` the risk [B] (the encoder alone runs).
        """
        present = all_present(x, modality_mask).to(x.dtype)[:, :, None, None, None]
        inputs = (x * present)[:, self.channels]
        if ehr is None:
            return self.network(inputs)
        return self.survival_head(self.backbone.forward_tokens(self.network, inputs), ehr)
