"""The shared bases honour the stream's pre-training modalities, and a cached base never outlives its recipe."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from pemma_cl.models.backbones import MaskedInputNetwork
from pemma_cl.training import bases as bases_module
from pemma_cl.training import template
from pemma_cl.training.bases import SharedBases

CT, PET, CTPET = (True, False), (False, True), (True, True)


def make_bases(stream_data, micro_preset, tmp_path, modalities=("ct",), num_classes=3) -> SharedBases:
    return SharedBases(micro_preset, stream_data.pretrain_cases, 0, torch.device("cpu"), cache_dir=tmp_path,
                       data_key="bases-test", num_classes=num_classes, modalities=modalities)


@pytest.fixture
def pet_seen(monkeypatch) -> list[float]:
    """Largest |PET voxel| of every input any base network receives while bases are prepared."""
    seen: list[float] = []
    forward = MaskedInputNetwork.forward

    def spy(self, x, modality_mask=None):
        if self.training:
            seen.append(float((x[:, 1] * modality_mask[:, 1, None, None, None]).abs().max()))
        return forward(self, x, modality_mask)

    monkeypatch.setattr(MaskedInputNetwork, "forward", spy)
    return seen


def test_ct_only_pretraining_never_shows_the_fusion_base_a_pet_voxel(stream_data, micro_preset, tmp_path, pet_seen):
    bases = make_bases(stream_data, micro_preset, tmp_path)
    fusion, ct = bases.get("fusion"), bases.get("ct")
    assert pet_seen and max(pet_seen) == 0.0  # every training batch of every base: no PET
    assert not bases.is_trained("fusion") and bases.cache_path("fusion") is None
    # ...so the fusion base is blind to PET: the CT base's function, whatever PET it is given.
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 32, 32, 32, generator=generator)
    other_pet = x.clone()
    other_pet[:, 1] = torch.rand(2, 32, 32, 32, generator=generator) * 5
    both = torch.tensor([CTPET, CTPET])
    with torch.no_grad():
        out = MaskedInputNetwork(fusion, (0, 1))(x, both)
        assert torch.equal(out, MaskedInputNetwork(fusion, (0, 1))(other_pet, both))
        assert torch.allclose(out, MaskedInputNetwork(ct, (0,))(x, both), atol=1e-6)
    stem = fusion.vit.patch_embedding.patch_embeddings.weight
    assert torch.equal(stem[:, 1], torch.zeros_like(stem[:, 1]))


def test_ct_pet_pretraining_trains_the_fusion_base_on_pet(stream_data, micro_preset, tmp_path, pet_seen):
    bases = make_bases(stream_data, micro_preset, tmp_path, modalities=("ct", "pet"))
    bases.get("fusion")
    assert bases.is_trained("fusion") and bases.cache_path("fusion").exists()
    assert max(pet_seen) > 0
    assert bases.cache_path("fusion") != make_bases(stream_data, micro_preset, tmp_path).cache_path("ct")


def test_the_cache_key_follows_the_recipe(stream_data, micro_preset, tmp_path, monkeypatch):
    path = make_bases(stream_data, micro_preset, tmp_path).cache_path("ct")
    assert path == make_bases(stream_data, micro_preset, tmp_path).cache_path("ct")  # same recipe, same base

    for change in ({"pretrain_epochs": 2}, {"pretrain_lr": 5e-4}, {"batch_size": 1}, {"feature_size": 8},
                   {"hidden_size": 48}):
        assert make_bases(stream_data, replace(micro_preset, **change), tmp_path).cache_path("ct") != path, change
    for change in ({"epochs": 7}, {"lr": 0.5}, {"adapter_lr": 0.5}, {"lora_rank": 8}):  # what a base never sees
        assert make_bases(stream_data, replace(micro_preset, **change), tmp_path).cache_path("ct") == path, change
    other_data = SharedBases(micro_preset, stream_data.pretrain_cases[1:], 0, torch.device("cpu"), tmp_path,
                             "bases-test", 3)
    assert other_data.cache_path("ct") != path
    other_labels = make_bases(stream_data, micro_preset, tmp_path, num_classes=2)  # a data set of one structure
    assert other_labels.cache_path("ct") != path and other_labels.recipe("ct")["network"]["num_classes"] == 2
    monkeypatch.setitem(template.LOSS_KWARGS, "include_background", True)
    assert make_bases(stream_data, micro_preset, tmp_path).cache_path("ct") != path  # the loss changed
    monkeypatch.undo()
    monkeypatch.setattr(bases_module, "_source_digest", lambda modules: "edited code")
    assert make_bases(stream_data, micro_preset, tmp_path).cache_path("ct") != path  # the training code changed


def test_a_changed_recipe_trains_a_new_base(stream_data, micro_preset, tmp_path, monkeypatch):
    first = make_bases(stream_data, micro_preset, tmp_path)
    first_weights, first_path = first.get("ct").state_dict(), first.cache_path("ct")
    monkeypatch.setitem(template.LOSS_KWARGS, "include_background", True)
    second = make_bases(stream_data, micro_preset, tmp_path)
    second_weights = second.get("ct").state_dict()
    assert sorted(tmp_path.glob("base-ct-*.pt")) == sorted([first_path, second.cache_path("ct")])
    assert second.recipe("ct")["loss"]["include_background"] is True
    assert not torch.equal(first_weights["out.conv.conv.weight"], second_weights["out.conv.conv.weight"])
