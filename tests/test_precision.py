"""``--precision bf16``: the strategies' forward passes run under bfloat16 autocast; weights and outputs stay fp32."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from pemma_cl.core.errors import UserError
from pemma_cl.core.precision import BF16, FP32
from pemma_cl.models.backbones import build_network
from pemma_cl.models.pemma import PemmaNetwork
from pemma_cl.run.unit import check_precision, run_strategy
from pemma_cl.training.bases import SharedBases


class OutputDtypes:
    """Forward hooks on every convolution and linear layer of a model, recording their output dtypes."""

    def __init__(self, model: nn.Module) -> None:
        self.seen: set[torch.dtype] = set()
        for module in model.modules():
            if isinstance(module, (nn.Conv3d, nn.ConvTranspose3d, nn.Linear)):
                module.register_forward_hook(lambda _module, _args, output: self.seen.add(output.dtype))


def test_bf16_runs_a_pemma_strategy_in_bfloat16_with_fp32_weights(stream_data, ctx_settings, registered_entries):
    built, hooks, outputs = [], [], set()

    def build(ctx):
        strategy = registered_entries["pemma-lora"].build(ctx)
        hooks.append(OutputDtypes(strategy.model))
        forward = strategy.forward

        def recorded_forward():
            output = forward()
            outputs.add(output.dtype)
            return output

        strategy.forward = recorded_forward
        built.append(strategy)
        return strategy

    unit = run_strategy(replace(registered_entries["pemma-lora"], build=build), stream_data,
                        {**ctx_settings, "precision": BF16})
    assert hooks[0].seen == {torch.bfloat16}  # every convolution and linear layer, in training and evaluation
    assert outputs == {torch.float32}  # what the loss and the Dice metric receive
    assert all(parameter.dtype == torch.float32 for parameter in built[0].model.parameters())
    trained = [row for row in unit.rows if row["trained_through"] >= 0]
    assert trained and all(0.0 <= row["dice"] <= 1.0 for row in trained if row["dice"] == row["dice"])


def test_fp32_leaves_every_layer_in_fp32(stream_data, ctx_settings, registered_entries):
    hooks: list[OutputDtypes] = []

    def build(ctx):
        strategy = registered_entries["early-fusion"].build(ctx)
        hooks.append(OutputDtypes(strategy.model))
        return strategy

    run_strategy(replace(registered_entries["early-fusion"], build=build), stream_data, ctx_settings)
    assert hooks[0].seen == {torch.float32}


def test_pemma_mixes_modality_paths_in_one_batch_under_autocast(micro_preset):
    torch.manual_seed(0)
    network = PemmaNetwork(build_network(micro_preset, in_channels=1, num_classes=3), micro_preset)
    x = torch.randn(3, 2, 32, 32, 32)
    mask = torch.tensor([[True, True], [True, False], [False, True]])  # CT+PET, CT only, PET only
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = network(x, mask)
    assert output.shape == (3, 3, 32, 32, 32) and output.dtype == torch.bfloat16
    assert all(parameter.dtype == torch.float32 for parameter in network.parameters())


def test_a_base_is_cached_per_precision(stream_data, micro_preset, tmp_path):
    def bases(precision: str) -> SharedBases:
        return SharedBases(micro_preset, stream_data.pretrain_cases, 0, torch.device("cpu"), cache_dir=tmp_path,
                           data_key="test", num_classes=3, precision=precision)

    assert bases(FP32).recipe("ct")["precision"] == FP32 and bases(BF16).recipe("ct")["precision"] == BF16
    assert bases(FP32).cache_path("ct") != bases(BF16).cache_path("ct")


def test_bf16_is_refused_on_a_gpu_without_bfloat16_and_flagged_on_a_cpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Old GPU")
    with pytest.raises(UserError, match=r"^--precision bf16: Old GPU has no bfloat16 support; use --precision fp32$"):
        check_precision(BF16, torch.device("cuda"))
    check_precision(FP32, torch.device("cuda"))  # fp32 asks nothing of the device
    check_precision(BF16, torch.device("cpu"))
    assert capsys.readouterr().err.startswith("--precision bf16 on a CPU changes the numbers without making training")
