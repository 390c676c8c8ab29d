"""PEMMA on the Swin UNETR backbone: the same guarantees as on UNETR, through the backbone interface."""

from __future__ import annotations

import pytest
import torch

from pemma_cl.models.adapters import adapter_name, add_task_adapter, train_only, wrap_with_adapters
from pemma_cl.models.backbones import MaskedInputNetwork, backbone_of, build_network, get_backbone
from pemma_cl.models.pemma import PEMMA_MODULES, PemmaNetwork
from pemma_cl.models.presets import get_preset
from pemma_cl.models.update_rule import trainable_pemma_modules

MICRO = get_preset("micro", "swin-unetr")
BOTH, CT_ONLY, PET_ONLY = (torch.tensor([m] * 2) for m in ([True, True], [True, False], [False, True]))


@pytest.fixture(scope="module")
def swin_base():
    torch.manual_seed(0)
    return build_network(MICRO, in_channels=1, num_classes=3).eval()


def test_the_preset_builds_swin_unetr_and_its_backbone_is_found_from_the_network(swin_base) -> None:
    assert MICRO.backbone == "swin-unetr" and MICRO.feature_size == 12  # a multiple of 12, as MONAI requires
    assert type(swin_base).__name__ == "SwinUNETR" and backbone_of(swin_base) is get_backbone("swin-unetr")
    assert get_preset("micro") == get_preset("micro", "unetr") and get_preset("micro").backbone == "unetr"


def test_pemma_on_swin_reproduces_the_ct_base_bit_for_bit_before_training(swin_base) -> None:
    x = torch.rand(2, 2, 32, 32, 32, generator=torch.Generator().manual_seed(1))
    pemma = PemmaNetwork(swin_base, MICRO, ehr_size=6).eval()
    with torch.no_grad():
        expected = swin_base(x[:, :1])
        assert torch.equal(pemma(x, BOTH), expected)  # the PET half of the token fusion and the PET skip start at 0
        assert torch.equal(pemma(x, CT_ONLY), expected)  # the missing-PET adapter starts as the identity
        assert torch.equal(MaskedInputNetwork(swin_base, (0,))(x, BOTH), expected)
        assert pemma(x, PET_ONLY).shape == expected.shape
        assert pemma(x, BOTH, ehr=torch.zeros(2, 6)).shape == (2,)  # the risk from the deepest Swin stage


def test_lora_on_swin_hits_exactly_the_attention_and_mlp_linears(swin_base) -> None:
    model = wrap_with_adapters(PemmaNetwork(swin_base, MICRO), MICRO, use_dora=False, first_adapter=adapter_name(1))
    adapted = [name for name, module in model.named_modules() if hasattr(module, "lora_A") and "lora_" not in name]
    # 4 stages x 2 blocks x (qkv, proj, linear1, linear2); not the patch embedding's Conv3d "proj", not the patch
    # merging's "reduction", nothing in the decoder.
    assert len(adapted) == 32
    assert {name.rsplit(".", 2)[-2] + "." + name.rsplit(".", 1)[-1] for name in adapted} == \
        {"attn.qkv", "attn.proj", "mlp.linear1", "mlp.linear2"}
    assert not any("patch_embed" in n or "downsample" in n or "decoder" in n for n in adapted)


def _step(model, x: torch.Tensor, mask: torch.Tensor) -> None:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(x, mask).float().mean().backward()
    optimizer.step()
    optimizer.zero_grad()


def test_swin_task_adapters_are_isolated_and_a_ct_only_update_leaves_the_pet_path_bit_identical(swin_base) -> None:
    x = torch.rand(2, 2, 32, 32, 32, generator=torch.Generator().manual_seed(2))
    model = wrap_with_adapters(PemmaNetwork(swin_base, MICRO), MICRO, use_dora=False, first_adapter=adapter_name(1))
    model.train()
    train_only(model, trainable_pemma_modules(("ct", "pet")))
    _step(model, x, BOTH)
    after_task1 = {n: p.detach().clone() for n, p in model.named_parameters()}
    add_task_adapter(model, 2, warm_start_from=1)
    train_only(model, trainable_pemma_modules(("ct",)))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _step(model, x * torch.tensor([1.0, 0.0])[None, :, None, None, None], CT_ONLY)
    after = dict(model.named_parameters())
    for name, value in after_task1.items():
        if "task1" in name or ("lora_" not in name and "modules_to_save" not in name):
            assert torch.equal(value, after[name]), name  # task 1's set and the frozen base
    pet_path = [n for n in after if "task2" in n and any(f"{m}." in n for m in PEMMA_MODULES if m != "missing_pet_adapter")]
    assert pet_path and all(torch.equal(before[n], after[n]) for n in pet_path)
    moved = [n for n in after if "task2" in n and not torch.equal(before[n], after[n])]
    assert any("lora_" in n for n in moved) and any("missing_pet_adapter" in n for n in moved)


def test_trainable_share_on_swin_at_the_paper_preset_counted_without_training() -> None:
    from pemma_cl.evaluation.cost import pemma_parameter_counts

    paper = get_preset("paper", "swin-unetr")
    counts = pemma_parameter_counts(paper, use_dora=False, n_tasks=1)
    # LoRA of rank r on a block of width d: qkv r(d + 3d), proj r(2d), linear1 and linear2 r(d + 4d) each = 16 r d;
    # two blocks per stage of widths 48, 96, 192, 384.
    assert counts["lora"] == 2 * 16 * paper.lora_rank * (48 + 96 + 192 + 384) == 184_320
    assert counts["trainable"] == counts["lora"] + counts["pet_path"]
    assert counts["pct_served"] == pytest.approx(100 * counts["trainable"] / (counts["base"] + counts["trainable"]))
    assert counts["pct_served"] < 1.0  # far below the paper's ~8% (see docs/results/parameters.md)
