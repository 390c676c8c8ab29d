"""Named model + training presets: ``tiny`` (CPU default), ``paper`` (PEMMA's settings), ``micro`` (tests), per
backbone: :data:`PRESETS` are UNETR's; another backbone's preset is UNETR's with that backbone's changes
(:data:`BACKBONE_CHANGES`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from pemma_cl.core.errors import UserError


@dataclass(frozen=True)
class Preset:
    """Network size and training budget used by every strategy of a run.

    Args:
        name: preset name.
        img_size: cubic crop side in voxels (UNETR's patch is 16, so a multiple of 16).
        hidden_size, mlp_dim, num_heads, feature_size: MONAI UNETR settings (12 ViT layers, fixed by MONAI).
        adapter_bottleneck: width of the missing-modality adapters' bottleneck.
        lora_rank: rank r of LoRA/DoRA (alpha = 2r).
        batch_size: training mini-batch size.
        lr: AdamW learning rate of strategies that train whole networks through the stream.
        adapter_lr: AdamW learning rate of PEMMA's small per-task parts (adapters train from scratch on
            little data; a higher rate than full fine-tuning is usual for LoRA).
        pretrain_lr: AdamW learning rate of the shared base pre-training (from scratch, a higher rate than
            fine-tuning converges in fewer epochs).
        pretrain_epochs: epochs of the shared base pre-training.
        epochs: epochs per training experience (segmentation).
        prognosis_batch_size: training mini-batch size of prognosis experiences (the Cox partial likelihood ranks
            each relapse within its mini-batch; only the encoder runs, so large batches are cheap).
        prognosis_epochs: epochs per prognosis experience.
        prognosis_lr_scale: factor on each strategy's learning rate during prognosis experiences.
        backbone: the network family (``unetr`` or ``swin-unetr``, see :mod:`pemma_cl.models.backbones`).
        lora_dropout: dropout on the LoRA/DoRA branch's input.
    """

    name: str
    img_size: int
    hidden_size: int
    mlp_dim: int
    num_heads: int
    feature_size: int
    adapter_bottleneck: int
    lora_rank: int
    batch_size: int
    lr: float
    adapter_lr: float
    pretrain_lr: float
    pretrain_epochs: int
    epochs: int
    prognosis_batch_size: int = 64
    prognosis_epochs: int = 6
    prognosis_lr_scale: float = 0.1
    backbone: str = "unetr"
    lora_dropout: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


#: ``tiny``'s budget was chosen on validation cases (``run --stream centers --eval-on val``, seeds 0 and 1,
#: results/reference/tiny-budget-val): 4 epochs per experience gave the Dice of 5 (mean over strategies and inputs
#: within 0.03 either way) in 20 % less training; a 25-epoch base lost 0.03-0.11 CT+PET Dice, so it keeps 40. Its
#: whole-network rate ``lr`` 1e-3 had the best mean CT+PET validation Dice of full fine-tuning and early fusion over
#: 5e-4, 1e-3, 2e-3 (the former default) and 4e-3 (seeds 0-2, results/reference/tiny-lr-val; not separated from 2e-3).
PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", img_size=32, hidden_size=96, mlp_dim=192, num_heads=4, feature_size=8,
                   adapter_bottleneck=16, lora_rank=4, batch_size=2, lr=1e-3, adapter_lr=1e-2,
                   pretrain_lr=4e-3, pretrain_epochs=40, epochs=4),
    "paper": Preset("paper", img_size=96, hidden_size=768, mlp_dim=3072, num_heads=12, feature_size=16,
                    adapter_bottleneck=64, lora_rank=16, batch_size=2, lr=1e-4, adapter_lr=1e-3,
                    pretrain_lr=1e-4, pretrain_epochs=300, epochs=100),
    "micro": Preset("micro", img_size=32, hidden_size=32, mlp_dim=64, num_heads=2, feature_size=4,
                    adapter_bottleneck=8, lora_rank=2, batch_size=2, lr=1e-3, adapter_lr=1e-2,
                    pretrain_lr=1e-3, pretrain_epochs=1, epochs=1, prognosis_batch_size=8, prognosis_epochs=1),
}

#: What a preset's numbers cannot be read as, said wherever its results are printed.
PRESET_CAUTIONS: dict[str, str] = {
    "micro": ("preset micro is for tests and first tries (a 32-wide network, one epoch): its numbers say nothing "
              "about any method; use tiny or paper for results"),
}


#: Backbones the suite builds (``--backbone``).
BACKBONE_NAMES: tuple[str, ...] = ("unetr", "swin-unetr")
#: Per backbone other than UNETR and preset, what differs from UNETR's preset. Swin UNETR's feature size is a
#: multiple of 12 (MONAI); ``tiny``'s 12 is its smallest, about 2 s per step on this CPU at 32³ (about 10x
#: UNETR-tiny), so its pre-training is shorter; ``paper`` follows the authors' code (feature 48, LoRA rank 8,
#: LoRA dropout 0.1).
BACKBONE_CHANGES: dict[str, dict[str, dict]] = {
    "swin-unetr": {
        "tiny": {"feature_size": 12, "pretrain_epochs": 12, "epochs": 3},
        "paper": {"feature_size": 48, "lora_rank": 8, "lora_dropout": 0.1},
        "micro": {"feature_size": 12},
    },
}


def get_preset(name: str, backbone: str = "unetr") -> Preset:
    """Look a preset up by name and backbone, with a one-line error listing the valid names."""
    if name not in PRESETS:
        raise UserError(f"unknown preset '{name}'; valid presets: {', '.join(PRESETS)}")
    if backbone not in BACKBONE_NAMES:
        raise UserError(f"unknown backbone '{backbone}'; valid backbones: {', '.join(BACKBONE_NAMES)}")
    return replace(PRESETS[name], backbone=backbone, **BACKBONE_CHANGES.get(backbone, {}).get(name, {}))
