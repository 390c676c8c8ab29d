"""Networks: PEMMA starts exactly at the CT base, masks really hide modalities, the paper's parameter budget."""

from __future__ import annotations

import pytest
import torch

from pemma_cl.data.description import DatasetDescription
from pemma_cl.data.hecktor.layout import HEAD_AND_NECK_STRUCTURES
from pemma_cl.models.backbones import MaskedInputNetwork, build_network
from pemma_cl.models.pemma import PEMMA_MODULES, PemmaNetwork
from pemma_cl.models.presets import PRESETS

MICRO = PRESETS["micro"]
#: The built-in cohort's outputs: background, GTVp, GTVn.
NUM_CLASSES = DatasetDescription("head-and-neck", HEAD_AND_NECK_STRUCTURES).num_classes
SIDE = MICRO.img_size
CT, PET, CTPET = (True, False), (False, True), (True, True)


def masks(*rows: tuple[bool, bool]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.bool)


@pytest.fixture(scope="module")
def ct_base() -> torch.nn.Module:
    torch.manual_seed(1)
    return build_network(MICRO, in_channels=1, num_classes=NUM_CLASSES).eval()


@pytest.fixture(scope="module")
def pemma(ct_base) -> PemmaNetwork:
    torch.manual_seed(2)
    return PemmaNetwork(ct_base, MICRO).eval()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    """Two samples with non-zero CT and PET, so that ignoring PET is not trivially true."""
    generator = torch.Generator().manual_seed(3)
    return torch.rand(2, 2, SIDE, SIDE, SIDE, generator=generator) + 0.5


@pytest.fixture(scope="module")
def perturbed_pemma(ct_base) -> PemmaNetwork:
    """A PEMMA model whose added modules are no longer at their (identity / zero) initialisation."""
    torch.manual_seed(4)
    model = PemmaNetwork(ct_base, MICRO).eval()
    with torch.no_grad():
        for name in PEMMA_MODULES:
            for p in getattr(model, name).parameters():
                p.add_(0.05 * torch.randn_like(p))
    return model


@torch.no_grad()
@pytest.mark.parametrize("rows", [(CT, CT), (CTPET, CTPET), (CTPET, CT)], ids=["ct", "ctpet", "mixed"])
def test_pemma_at_init_is_exactly_the_ct_base(pemma, ct_base, x, rows) -> None:
    expected = ct_base(x[:, :1])
    out = pemma(x, masks(*rows))
    assert out.shape == (2, NUM_CLASSES, SIDE, SIDE, SIDE)
    assert torch.equal(out, expected), f"max abs diff {(out - expected).abs().max().item()}"


@torch.no_grad()
def test_pemma_pet_only_differs_from_ct_input(pemma, x) -> None:
    assert not torch.equal(pemma(x, masks(PET, PET)), pemma(x, masks(CT, CT)))


@torch.no_grad()
def test_pemma_rejects_a_sample_without_any_modality(pemma, x) -> None:
    with pytest.raises(ValueError, match="at least one modality"):
        pemma(x, masks(CTPET, (False, False)))


@torch.no_grad()
def test_pemma_missing_modality_values_do_not_matter(perturbed_pemma, x) -> None:
    other = x.clone()
    other[:, 1] = torch.rand_like(other[:, 1]) * 5  # new PET
    assert torch.equal(perturbed_pemma(x, masks(CT, CT)), perturbed_pemma(other, masks(CT, CT)))
    # ...but once PET is given (and the PEMMA modules are trained), it changes the output.
    assert not torch.allclose(perturbed_pemma(x, masks(CTPET, CTPET)), perturbed_pemma(other, masks(CTPET, CTPET)))
    other = x.clone()
    other[:, 0] = torch.rand_like(other[:, 0]) * 5  # new CT
    assert torch.equal(perturbed_pemma(x, masks(PET, PET)), perturbed_pemma(other, masks(PET, PET)))


@torch.no_grad()
def test_pemma_samples_are_independent_of_each_other_mask(perturbed_pemma, x) -> None:
    """Each sample follows its own mask row: a mixed batch equals the per-setting batches row by row."""
    mixed = perturbed_pemma(x, masks(CTPET, PET))
    assert torch.allclose(mixed[0], perturbed_pemma(x, masks(CTPET, CTPET))[0], atol=1e-5)
    assert torch.allclose(mixed[1], perturbed_pemma(x, masks(PET, PET))[1], atol=1e-5)


@torch.no_grad()
def test_masked_input_unetr_zeroes_missing_modality(x) -> None:
    torch.manual_seed(5)
    fusion = MaskedInputNetwork(build_network(MICRO, in_channels=2, num_classes=NUM_CLASSES), channels=(0, 1)).eval()
    zero_pet = x.clone()
    zero_pet[:, 1] = 0
    missing = fusion(x, masks(CT, CT))
    assert missing.shape == (2, NUM_CLASSES, SIDE, SIDE, SIDE)
    assert torch.equal(missing, fusion(zero_pet, masks(CTPET, CTPET)))
    assert not torch.allclose(missing, fusion(x, masks(CTPET, CTPET)))  # the mask really matters
    zero_ct = x.clone()
    zero_ct[:, 0] = 0
    assert torch.equal(fusion(x, masks(PET, PET)), fusion(zero_ct, masks(CTPET, CTPET)))


@torch.no_grad()
@pytest.mark.parametrize("structures", [{1: "lesion"}, {1: "GTVp", 2: "GTVn"}, {1: "liver", 2: "tumour", 3: "node"}],
                         ids=["one", "two", "three"])
def test_networks_have_one_output_per_structure_and_background(x, structures) -> None:
    """Every network the suite builds (plain, masked, PEMMA on it) outputs background plus the data's structures."""
    classes = DatasetDescription("data", structures).num_classes
    assert classes == len(structures) + 1
    torch.manual_seed(6)
    base = build_network(MICRO, in_channels=1, num_classes=classes).eval()
    fusion = MaskedInputNetwork(build_network(MICRO, in_channels=2, num_classes=classes), channels=(0, 1)).eval()
    for out in (base(x[:, :1]), fusion(x), PemmaNetwork(base, MICRO).eval()(x, masks(CTPET, PET))):
        assert out.shape == (2, len(structures) + 1, SIDE, SIDE, SIDE)


@torch.no_grad()
def test_masked_input_ct_base_ignores_pet(ct_base, x) -> None:
    model = MaskedInputNetwork(ct_base, channels=(0,))
    other = x.clone()
    other[:, 1] = 0
    out = model(x, masks(CTPET, CTPET))
    assert torch.equal(out, ct_base(x[:, :1]))
    assert torch.equal(out, model(other, masks(CT, CT)))


@pytest.mark.parametrize("use_dora", [False, True], ids=["lora", "dora"])
def test_paper_preset_trains_6_to_10_percent(use_dora: bool) -> None:
    from pemma_cl.evaluation.cost import parameter_budget
    from pemma_cl.models.adapters import wrap_with_adapters

    paper = PRESETS["paper"]
    # Parameter counts depend on shapes only: build on the meta device (no memory, no initialisation cost).
    with torch.device("meta"):
        base = build_network(paper, in_channels=1, num_classes=NUM_CLASSES)
        base_count = sum(p.numel() for p in base.parameters())
        model = wrap_with_adapters(PemmaNetwork(base, paper), paper, use_dora=use_dora, first_adapter="task1")
    budget = parameter_budget(model)
    share = budget["trainable"] / budget["total"]
    assert 0.06 <= share <= 0.10, f"trainable share {share:.2%}"
    assert budget["shared"] == base_count
    assert budget["total"] == budget["shared"] + budget["trainable"]
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(("lora_" in n or "modules_to_save.task1" in n) for n in trainable), trainable[:5]
    # Every PEMMA module has a trainable per-task copy, and the ViT has LoRA (or DoRA) matrices.
    for module in PEMMA_MODULES:
        assert any(f"{module}.modules_to_save.task1." in n for n in trainable), module
    assert any("lora_B.task1" in n for n in trainable)
    assert any("lora_magnitude_vector.task1" in n for n in trainable) == use_dora
