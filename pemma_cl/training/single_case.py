"""Calling a segmentation network on a mini-batch, with a CPU workaround for mini-batches of one small case.

PyTorch (2.14) sends a 3-D convolution whose batch is one to its native ``slow_conv3d`` kernel instead of oneDNN's
when ``batch x channels x depth x height`` is at most 20,480 (``ConvParams::use_mkldnn``, a rule tuned on 2-D images).
At 32³ every full-resolution layer of the tiny UNETR (8-16 channels) falls under it and runs 8-15x slower: 18.5 ms
against 2.2 ms per case for 8 channels on one thread, and the whole network's forward pass 137 ms against 23 ms. A
batch of one happens in every run: a one-case test experience, the last mini-batch of an odd-sized experience, a
sliding window. Such a batch is run as a pair (the case twice) and the first output kept. Every layer of the suite's
networks treats the samples of a batch independently (instance and layer norms, attention within a sample), so the
output is the case's own up to float rounding; in training the copy's output takes no part in the loss, so its share
of every gradient is exactly zero. Larger volumes are left alone: at the ``paper`` preset's 96³ the full-resolution
layers are above the rule, and a pair took 3.6 s against 1.4-1.7 s for one case.
"""

from __future__ import annotations

import torch
from torch import nn

#: Largest volume (voxels) of a single case that is run as a pair on a CPU (the ``tiny`` and ``micro`` presets' 32³).
PAIRED_MAX_VOXELS = 32 ** 3


def runs_as_pair(x: torch.Tensor) -> bool:
    """Whether ``segment`` runs the mini-batch ``x`` [B, C, D, H, W] as a pair (see the module docstring)."""
    return x.device.type == "cpu" and len(x) == 1 and x[0, 0].numel() <= PAIRED_MAX_VOXELS


def segment(model: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``model(x, mask)``, a single small case on a CPU run as a pair and its own output returned."""
    if not runs_as_pair(x):
        return model(x, mask)
    return model(torch.cat((x, x)), torch.cat((mask, mask)))[:1]
