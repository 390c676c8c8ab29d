"""MONAI Swin UNETR (Hatamizadeh et al.; the backbone of the authors' released PEMMA code): a Swin transformer on
2³ patches with four stages, and a convolutional decoder fed by every stage. ``encode`` and ``decode`` mirror
``monai.networks.nets.SwinUNETR.forward`` and ``SwinTransformer.forward`` (MONAI 1.6.1, ``use_v2=False``), which
offer no hook to replace the patch embedding's output.

Group norm instead of MONAI's default instance norm: at a 32³ crop the deepest stage is one voxel, where instance
norm fails in training (measured with MONAI 1.6.1).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from monai.networks.nets import SwinUNETR
from torch import nn

from pemma_cl.models.backbones.base import Backbone
from pemma_cl.models.presets import Preset

#: Normalisation of the convolutional blocks (feature sizes are multiples of 12, so 3 groups divide every stage).
NORM = ("group", {"num_groups": 3})


class SwinUnetrBackbone(Backbone):
    """Swin UNETR of the preset's feature size (MONAI's depths 2, 2, 2, 2, heads 3, 6, 12, 24, window 7)."""

    name = "swin-unetr"
    network_class = SwinUNETR
    # Attention (qkv, proj) and MLP linears of the Swin blocks; not the patch merging's reduction, and not the patch
    # embedding's Conv3d ``proj``, which peft's plain name "proj" would also catch.
    lora_targets = r".*base\.swinViT\.layers[1-4]\.0\.blocks\.\d+\.(attn\.(qkv|proj)|mlp\.linear[12])"
    decoder_head = ("base.decoder1", "base.out")
    # MONAI 1.6.1's SwinTransformer calls Tensor.item() on its drop-path schedule while it is built.
    builds_on_meta = False

    def build(self, preset: Preset, in_channels: int, num_classes: int) -> SwinUNETR:
        return SwinUNETR(in_channels=in_channels, out_channels=num_classes, feature_size=preset.feature_size,
                         norm_name=NORM, spatial_dims=3)

    def patch_embedding(self, net: SwinUNETR) -> nn.Module:
        return net.swinViT.patch_embed

    def new_patch_embedding(self, net: SwinUNETR, preset: Preset) -> nn.Module:
        """A copy of the network's patch embedding for one input channel, every parameter drawn anew."""
        embedding = copy.deepcopy(net.swinViT.patch_embed)
        old = embedding.proj
        embedding.proj = nn.Conv3d(1, old.out_channels, kernel_size=old.kernel_size, stride=old.stride)
        for module in embedding.modules():
            if module is not embedding.proj and hasattr(module, "reset_parameters"):
                module.reset_parameters()
        return embedding

    def embed(self, embedding: nn.Module, image: torch.Tensor) -> tuple[torch.Tensor, Any]:
        grid = embedding(image)  # [B, C, d, h, w]
        return grid.flatten(2).transpose(1, 2), tuple(grid.shape[2:])

    def token_width(self, net: SwinUNETR) -> int:
        return net.swinViT.embed_dim

    def encode(self, net: SwinUNETR, tokens: torch.Tensor, grid: Any) -> tuple[torch.Tensor, Any]:
        vit = net.swinViT
        x = tokens.transpose(1, 2).reshape(len(tokens), tokens.shape[-1], *grid)
        x = vit.pos_drop(x)
        hidden_states = [vit.proj_out(x, net.normalize)]
        for layer in (vit.layers1, vit.layers2, vit.layers3, vit.layers4):
            x = layer[0](x.contiguous())
            hidden_states.append(vit.proj_out(x, net.normalize))
        return hidden_states[4].flatten(2).transpose(1, 2), hidden_states

    def head_width(self, net: SwinUNETR) -> int:
        return 16 * net.swinViT.embed_dim

    def first_skip(self, net: SwinUNETR, image: torch.Tensor) -> torch.Tensor:
        return net.encoder1(image)

    def skip_channels(self, net: SwinUNETR) -> int:
        return net.swinViT.embed_dim

    def decode(self, net: SwinUNETR, first_skip: torch.Tensor, features: Any) -> torch.Tensor:
        hidden_states = features
        enc1 = net.encoder2(hidden_states[0])
        enc2 = net.encoder3(hidden_states[1])
        enc3 = net.encoder4(hidden_states[2])
        dec4 = net.encoder10(hidden_states[4])
        dec3 = net.decoder5(dec4, hidden_states[3])
        dec2 = net.decoder4(dec3, enc3)
        dec1 = net.decoder3(dec2, enc2)
        dec0 = net.decoder2(dec1, enc1)
        return net.out(net.decoder1(dec0, first_skip))
