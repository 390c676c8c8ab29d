"""benchmarks/kernel_profile.py: the profiler records exactly the timed training steps (micro preset, CPU)."""

from __future__ import annotations

import torch

from pemma_cl.benchmarks.kernel_profile import KernelProfile, profiled, summarise
from pemma_cl.measure.profile import profile_strategies
from pemma_cl.models.presets import get_preset
from pemma_cl.strategy_api.registry import load_registry


def test_the_profiler_records_the_timed_steps_and_not_the_warm_up() -> None:
    plugin = KernelProfile()
    entry = profiled(load_registry().get("pemma-lora"), plugin)
    [row] = profile_strategies([entry], get_preset("micro"), torch.device("cpu"), steps=2)
    names = [event.name for event in plugin.profiler.events()]
    assert sum(name.startswith("Optimizer.step#") for name in names) == row["steps"] == 2  # of 3 iterations
    summary, table = summarise(plugin, row["steps"], row["train_step_ms"])
    assert summary["profiled_steps"] == 2 and summary["profiled_step_ms"] == row["train_step_ms"]
    # A CPU runs no kernels; the operators it dispatched are counted and tabled.
    assert summary["kernels_per_step"] == summary["kernel_ms_per_step"] == 0 and summary["top_kernels"] == []
    assert summary["leaf_operators_per_step"] > summary["compute_operators_per_step"] > 100 and "aten::" in table
