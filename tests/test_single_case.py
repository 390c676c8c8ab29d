"""A single small case on a CPU runs as a pair (PyTorch's slow batch-of-one 3-D convolution): same output, same
gradients, and the pair really reaches oneDNN."""

from __future__ import annotations

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from pemma_cl.models.backbones import MaskedInputNetwork, build_network
from pemma_cl.models.pemma import PemmaNetwork
from pemma_cl.training.single_case import runs_as_pair, segment


def _case(side: int = 32, batch: int = 1) -> torch.Tensor:
    return torch.randn(batch, 2, side, side, side, generator=torch.Generator().manual_seed(0))


def test_only_a_single_small_cpu_case_runs_as_pair() -> None:
    assert runs_as_pair(_case())
    assert not runs_as_pair(_case(batch=2))
    assert not runs_as_pair(_case(side=48))  # above the paper-sized volumes' rule, a pair only doubles the cost


class ShapeRecorder(nn.Module):
    """Records the batch sizes it is called with; returns its input's first channel per sample."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        assert len(mask) == len(x)
        return x[:, :1] * torch.arange(1, len(x) + 1, dtype=x.dtype)[:, None, None, None, None]


def test_segment_calls_the_model_with_the_case_twice_and_returns_its_own_output() -> None:
    model, x, mask = ShapeRecorder(), _case(), torch.tensor([[True, False]])
    out = segment(model, x, mask)
    assert model.batches == [2]
    assert out.shape == (1, 1, 32, 32, 32)
    assert torch.equal(out, x[:, :1])  # the first of the pair (the second would be doubled)
    segment(model, _case(batch=3), mask.expand(3, 2))
    assert model.batches == [2, 3]


def _networks(micro_preset):
    torch.manual_seed(0)
    plain = MaskedInputNetwork(build_network(micro_preset, in_channels=2, num_classes=3), (0, 1))
    pemma = PemmaNetwork(build_network(micro_preset, in_channels=1, num_classes=3), micro_preset)
    return plain, pemma


def test_pair_gives_the_single_case_output_and_gradients(micro_preset) -> None:
    x = _case()
    for model in _networks(micro_preset):
        for mask in (torch.tensor([[True, True]]), torch.tensor([[False, True]])):
            model.zero_grad()
            single = model(x, mask)
            single.square().mean().backward()
            expected = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
            model.zero_grad()
            paired = segment(model, x, mask)
            paired.square().mean().backward()
            torch.testing.assert_close(paired, single, rtol=1e-4, atol=1e-5)
            got = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
            assert got.keys() == expected.keys()
            for name in expected:
                torch.testing.assert_close(got[name], expected[name], rtol=1e-3, atol=1e-6, msg=name)


def _kernels(run) -> set[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run()
    return {event.key for event in prof.key_averages() if "conv" in event.key}


def test_pytorch_still_sends_a_single_small_case_to_its_slow_kernel() -> None:
    """The reason for the workaround (torch 2.14.1, pinned): if this fails after an upgrade, PyTorch's rule changed
    and ``single_case`` may no longer be needed."""
    conv = nn.Conv3d(8, 8, 3, padding=1)
    with torch.no_grad():
        single = _kernels(lambda: conv(torch.randn(1, 8, 32, 32, 32)))
        pair = _kernels(lambda: conv(torch.randn(2, 8, 32, 32, 32)))
    assert "aten::slow_conv3d_forward" in single and "aten::mkldnn_convolution" not in single
    assert "aten::mkldnn_convolution" in pair and "aten::slow_conv3d_forward" not in pair
