"""MONAI UNETR (Hatamizadeh et al.): a ViT encoder on 16³ patches and a convolutional decoder fed by ViT blocks 3, 6,
9 and 12 (MONAI 1.6.1). ``encode`` and ``decode`` mirror ``monai.networks.nets.UNETR.forward``, which offers no hook
to replace its token path."""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.blocks import PatchEmbeddingBlock
from monai.networks.nets import UNETR
from torch import nn

from pemma_cl.models.backbones.base import Backbone
from pemma_cl.models.presets import Preset


class UnetrBackbone(Backbone):
    """UNETR with 12 ViT layers (fixed by MONAI) of the preset's hidden size, MLP width, heads and feature size."""

    name = "unetr"
    network_class = UNETR
    # UNETR's only nn.Linear layers are in its ViT: attention qkv/out projection and the MLP.
    lora_targets = r".*base\.vit\.blocks\.\d+\.(attn\.(qkv|out_proj)|mlp\.linear[12])"
    decoder_head = ("base.decoder2", "base.out")

    def build(self, preset: Preset, in_channels: int, num_classes: int) -> UNETR:
        return UNETR(in_channels=in_channels, out_channels=num_classes, img_size=(preset.img_size,) * 3,
                     feature_size=preset.feature_size, hidden_size=preset.hidden_size, mlp_dim=preset.mlp_dim,
                     num_heads=preset.num_heads)

    def patch_embedding(self, net: UNETR) -> nn.Module:
        return net.vit.patch_embedding

    def new_patch_embedding(self, net: UNETR, preset: Preset) -> nn.Module:
        return PatchEmbeddingBlock(in_channels=1, img_size=(preset.img_size,) * 3, patch_size=net.patch_size,
                                   hidden_size=preset.hidden_size, num_heads=preset.num_heads, proj_type="conv")

    def embed(self, embedding: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, Any]:
        return embedding(image), None

    def token_width(self, net: UNETR) -> int:
        return net.hidden_size

    def encode(self, net: UNETR, tokens: torch.Tensor, grid: Any) -> tuple[torch.Tensor, Any]:
        hidden_states = []
        for block in net.vit.blocks:
            tokens = block(tokens)
            hidden_states.append(tokens)
        normed = net.vit.norm(tokens)
        return normed, (hidden_states, normed)

    def head_width(self, net: UNETR) -> int:
        return net.hidden_size

    def first_skip(self, net: UNETR, image: torch.Tensor) -> torch.Tensor:
        return net.encoder1(image)

    def skip_channels(self, net: UNETR) -> int:
        return net.encoder1.layer.conv1.conv.out_channels

    def decode(self, net: UNETR, first_skip: torch.Tensor, features: Any) -> torch.Tensor:
        hidden_states, normed = features
        enc2 = net.encoder2(net.proj_feat(hidden_states[3]))
        enc3 = net.encoder3(net.proj_feat(hidden_states[6]))
        enc4 = net.encoder4(net.proj_feat(hidden_states[9]))
        dec3 = net.decoder5(net.proj_feat(normed), enc4)
        dec2 = net.decoder4(dec3, enc3)
        dec1 = net.decoder3(dec2, enc2)
        return net.out(net.decoder2(dec1, first_skip))
