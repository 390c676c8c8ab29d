"""MONAI UNETR backbones and the thin wrapper that gives them the suite's ``(x, modality_mask)`` call."""

from __future__ import annotations

import torch
from monai.networks.nets import UNETR
from torch import nn

from pemma_cl.models.presets import Preset
from pemma_cl.models.survival import survival_head

#: Output classes: background, GTVp, GTVn.
NUM_CLASSES = 3


def build_unetr(preset: Preset, in_channels: int) -> UNETR:
    """A MONAI UNETR of the preset's size (12 ViT layers and patch 16 are fixed by MONAI)."""
    return UNETR(
        in_channels=in_channels,
        out_channels=NUM_CLASSES,
        img_size=(preset.img_size,) * 3,
        feature_size=preset.feature_size,
        hidden_size=preset.hidden_size,
        mlp_dim=preset.mlp_dim,
        num_heads=preset.num_heads,
    )


def all_present(x: torch.Tensor, modality_mask: torch.Tensor | None) -> torch.Tensor:
    """The modality mask, or "every modality present" when None.

    Avalanche's own plugins (EWC's importances, LwF's distillation) call ``model(x)`` with no mask.
    """
    if modality_mask is None:
        return torch.ones(len(x), 2, dtype=torch.bool, device=x.device)
    return modality_mask


class MaskedInputUNETR(nn.Module):
    """A plain UNETR fed the modalities it was built for; missing modalities are zeroed.

    Used for the CT-only base (``channels=(0,)``) and for early fusion (``channels=(0, 1)``).

    Args:
        unetr: the wrapped network; its ``in_channels`` must equal ``len(channels)``.
        channels: which input channels (0 CT, 1 PET) the network sees.
        prognosis: also carry a survival head on the ViT's tokens (a stream with prognosis experiences).
    """

    def __init__(self, unetr: UNETR, channels: tuple[int, ...], prognosis: bool = False) -> None:
        super().__init__()
        self.unetr = unetr
        self.channels = list(channels)
        if prognosis:
            self.survival_head = survival_head(unetr.hidden_size)

    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor | None = None,
                ehr: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x [B, 2, D, H, W] (CT, PET); modality_mask [B, 2] bool, False = modality missing (None: all present);
        ehr [B, EHR_SIZE]: given for prognosis.

        Returns segmentation logits [B, 3, D, H, W], or with ``ehr`` the risk [B] (the encoder alone runs).
        """
        present = all_present(x, modality_mask).to(x.dtype)[:, :, None, None, None]
        inputs = (x * present)[:, self.channels]
        if ehr is None:
            return self.unetr(inputs)
        return self.survival_head(self.unetr.vit(inputs)[0], ehr)
