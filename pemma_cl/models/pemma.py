"""PEMMA: a CT-pretrained segmentation network (UNETR or Swin UNETR) upgraded to accept PET (and either modality alone).

What is added beside the CT base (Saeed et al., Fig. 1-2):

* ``pet_embed``: a PET patch embedding (MONAI ``PatchEmbeddingBlock``) beside the CT one;
* ``token_fusion``: a linear projection of the concatenated CT and PET tokens back to the width the
  frozen ViT expects;
* ``missing_pet_adapter`` / ``missing_ct_adapter``: map a single modality's tokens to the two-modality
  shape when the other modality is missing, so CT-only, PET-only and CT+PET inputs all work;
* ``pet_skip``: a PET encoder block whose output joins the CT skip feeding the first decoder stage.

Every added part is initialised so that, before training, a CT(+PET) input gives exactly the CT base's
output (identity CT half of the projection, zero PET half, zero last layer in adapters and skip): a new task
starts from the base, not from noise. LoRA/DoRA on the transformer is applied on top by
:mod:`pemma_cl.models.adapters`. Choices the paper leaves open, or that the ablation varies, are a
:class:`PemmaDesign`. Written once against :class:`pemma_cl.models.backbones.Backbone`: the base network's backbone
supplies the patch embedding, the encoder after it, the first skip and the decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.blocks import UnetrBasicBlock
from torch import nn

from pemma_cl.data.records import MODALITIES
from pemma_cl.models.backbones import all_present, backbone_of
from pemma_cl.models.presets import Preset
from pemma_cl.models.survival import survival_head

#: Names of the PEMMA modules trained per task (peft keeps one copy per adapter via ``modules_to_save``).
PEMMA_MODULES: tuple[str, ...] = ("pet_embed", "token_fusion", "missing_pet_adapter", "missing_ct_adapter", "pet_skip")
#: The prognosis head of a model built for a stream with prognosis experiences (also one copy per adapter set).
SURVIVAL_HEAD = "survival_head"
#: Initialisations of the PET patch embedding: MONAI's random one, or a copy of the CT base's (the authors').
PET_EMBED_INITS: tuple[str, ...] = ("random", "ct-copy")


@dataclass(frozen=True)
class PemmaDesign:
    """PEMMA's design choices that the paper leaves open; the defaults are the suite's measured choices.

    Attributes:
        pet_embed_init: one of :data:`PET_EMBED_INITS`.
        decoder_head: also give each adapter set its own copy of the base's last decoder stage and output
            convolution (beyond the paper, which freezes the whole decoder; an ablation, see docs/results/ablation.md).
    """

    pet_embed_init: str = "random"
    decoder_head: bool = False

    def __post_init__(self) -> None:
        if self.pet_embed_init not in PET_EMBED_INITS:
            raise ValueError(f"pet_embed_init must be one of {PET_EMBED_INITS}, got {self.pet_embed_init!r}")


class MissingModalityAdapter(nn.Module):
    """Maps one modality's tokens [B, N, h] to the two-modality token shape [B, N, 2h].

    The present modality's tokens go to their own slot; a bottleneck MLP (zero-initialised output)
    learns what to put in place of the missing one.

    Args:
        hidden_size: token width h.
        bottleneck: width of the bottleneck.
        present_slot: 0 when CT is present (PET missing), 1 when PET is present (CT missing).
    """

    def __init__(self, hidden_size: int, bottleneck: int, present_slot: int) -> None:
        super().__init__()
        self.present_slot = present_slot
        self.down = nn.Linear(hidden_size, bottleneck)
        self.up = nn.Linear(bottleneck, len(MODALITIES) * hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        empty = torch.zeros_like(tokens)
        slots = (tokens, empty) if self.present_slot == 0 else (empty, tokens)
        return torch.cat(slots, dim=-1) + self.up(nn.functional.gelu(self.down(tokens)))


class PemmaNetwork(nn.Module):
    """The CT base network with PEMMA's PET path; called as ``model(x, modality_mask)``.

    Args:
        base: the CT-pretrained network (one input channel) of a known backbone; its modules are used as they are.
        preset: the preset the base was built with (sizes of the added modules).
        design: choices the paper leaves open.
        ehr_size: carry a survival head on the encoder's deepest tokens (:mod:`pemma_cl.models.survival`) reading
            an EHR vector of this length; None: no survival head.
    """

    def __init__(self, base: nn.Module, preset: Preset, design: PemmaDesign = PemmaDesign(),
                 ehr_size: int | None = None) -> None:
        super().__init__()
        self.base = base
        self.backbone = backbone_of(base)
        width = self.backbone.token_width(base)
        self.pet_embed = self.backbone.new_patch_embedding(base, preset)
        if design.pet_embed_init == "ct-copy":
            self.pet_embed.load_state_dict(self.backbone.patch_embedding(base).state_dict())
        self.token_fusion = nn.Linear(len(MODALITIES) * width, width)
        with torch.no_grad():
            self.token_fusion.weight.zero_()
            self.token_fusion.weight[:, :width].copy_(torch.eye(width))
            self.token_fusion.bias.zero_()
        self.missing_pet_adapter = MissingModalityAdapter(width, preset.adapter_bottleneck, present_slot=0)
        self.missing_ct_adapter = MissingModalityAdapter(width, preset.adapter_bottleneck, present_slot=1)
        channels = self.backbone.skip_channels(base)
        skip_out = nn.Conv3d(channels, channels, kernel_size=1)
        nn.init.zeros_(skip_out.weight)
        nn.init.zeros_(skip_out.bias)
        self.pet_skip = nn.Sequential(
            UnetrBasicBlock(spatial_dims=3, in_channels=1, out_channels=channels,
                            kernel_size=3, stride=1, norm_name="instance", res_block=True),
            skip_out,
        )
        if ehr_size is not None:
            setattr(self, SURVIVAL_HEAD, survival_head(self.backbone.head_width(base), ehr_size))

    def _tokens(self, ct: torch.Tensor, pet: torch.Tensor, has_ct: torch.Tensor, has_pet: torch.Tensor):
        """Input tokens for the frozen encoder, per sample by which modalities are present, and their grid.

        Each path (CT+PET, CT only, PET only) is computed only for the samples that take it.
        """
        ct_tokens, grid = self.backbone.embed(self.backbone.patch_embedding(self.base), ct)
        pet_tokens, _ = self.backbone.embed(self.pet_embed, pet)
        tokens = None
        paths = (
            (has_ct & has_pet, lambda i: torch.cat((ct_tokens[i], pet_tokens[i]), dim=-1)),
            (has_ct & ~has_pet, lambda i: self.missing_pet_adapter(ct_tokens[i])),
            (~has_ct & has_pet, lambda i: self.missing_ct_adapter(pet_tokens[i])),
        )
        for chosen, two_modality_tokens in paths:
            if chosen.any():
                fused = self.token_fusion(two_modality_tokens(chosen))
                if tokens is None:  # in the fusion's dtype, which autocast may make bfloat16
                    tokens = fused.new_empty(ct_tokens.shape)
                tokens[chosen] = fused
        return tokens, grid

    def _first_skip(self, ct: torch.Tensor, pet: torch.Tensor, has_ct: torch.Tensor, has_pet: torch.Tensor) -> torch.Tensor:
        """The full-resolution skip: the frozen CT encoder block plus the PET skip pathway, each where present."""
        skip = 0
        blocks = ((has_ct, lambda image: self.backbone.first_skip(self.base, image), ct), (has_pet, self.pet_skip, pet))
        for present, block, image in blocks:
            if present.any():
                skip = skip + block(image) * present.to(image.dtype)[:, None, None, None, None]
        return skip

    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor | None = None,
                ehr: torch.Tensor | None = None) -> torch.Tensor:
        """Args: x [B, 2, D, H, W] (CT, PET); modality_mask [B, 2] bool, False = modality missing (None: all present);
        ehr [B, ehr_size]: given for prognosis.

        Returns logits [B, num_classes, D, H, W] (the base's outputs), or with ``ehr`` the risk [B] (the encoder alone
        runs).
        """
        modality_mask = all_present(x, modality_mask)
        if not bool(modality_mask.any(dim=1).all()):
            raise ValueError("every sample needs at least one modality (modality_mask row all False)")
        ct, pet = x[:, :1], x[:, 1:2]
        has_ct, has_pet = modality_mask[:, 0].bool(), modality_mask[:, 1].bool()
        deepest, features = self.backbone.encode(self.base, *self._tokens(ct, pet, has_ct, has_pet))
        if ehr is not None:
            return self.survival_head(deepest, ehr)
        return self.backbone.decode(self.base, self._first_skip(ct, pet, has_ct, has_pet), features)
