"""Where a training step's time goes: PyTorch's profiler over the timed steps of ``pemma-bench profile``.

Each strategy is built and trained exactly as :func:`pemma_cl.measure.profile.profile_strategies` does it, with
``torch.profiler`` recording the training iterations after the first (warm-up). Per strategy it writes the wall time
of a profiled step; the leaf ATen operators it dispatches (those that call no other) and the compute operators
(the same once views, allocations and host reads, :data:`NO_KERNEL`, are set aside: each launches about one kernel
on a GPU), both the same at every preset, the layers being the same; the GPU kernels launched per step and their
summed time (kernel time well under the wall time means the step waits on the CPU, for instance on launching many
small kernels); and the profiler's table of the costliest operators. The profiler slows the steps it records: the
times of ``pemma-bench profile`` are the ones to quote::

    python benchmarks/kernel_profile.py --preset paper --device cuda --strategy full-finetune \\
        --strategy pemma-lora --out results/kernels.json --table results/kernels.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from avalanche.core import SupervisedPlugin
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from pemma_cl.core.precision import PRECISIONS
from pemma_cl.measure.profile import profile_strategies
from pemma_cl.models.presets import get_preset
from pemma_cl.strategy_api.registry import StrategyEntry, load_registry

#: Operators (and kernels) listed per strategy.
TOP = 20
#: ATen operators that launch no kernel of their own (views, allocations, metadata, host reads), and wrappers whose
#: work, if any, is a child operator (``to``: ``copy_``).
NO_KERNEL = frozenset(f"aten::{name}" for name in (
    "empty", "empty_strided", "empty_like", "view", "_unsafe_view", "as_strided", "as_strided_", "_reshape_alias",
    "reshape", "t", "transpose", "permute", "expand", "expand_as", "slice", "select", "unsqueeze", "squeeze",
    "alias", "detach", "resolve_conj", "resolve_neg", "resize_", "_local_scalar_dense", "item", "is_nonzero",
    "lift_fresh", "result_type", "split", "split_with_sizes", "chunk", "unbind", "narrow", "flatten", "view_as",
    "to", "_to_copy", "contiguous",
))


class KernelProfile(SupervisedPlugin):
    """Records every training iteration after the first with ``torch.profiler``."""

    def __init__(self) -> None:
        super().__init__()
        self.iterations = 0
        self.profiler: profile | None = None

    def before_training_iteration(self, strategy, **kwargs) -> None:
        self.iterations += 1
        if self.iterations == 2:
            activities = [ProfilerActivity.CPU]
            if strategy.device.type == "cuda":
                activities.append(ProfilerActivity.CUDA)
            self.profiler = profile(activities=activities)
            self.profiler.__enter__()

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.profiler is not None:
            if strategy.device.type == "cuda":
                torch.cuda.synchronize(strategy.device)
            self.profiler.__exit__(None, None, None)


def profiled(entry: StrategyEntry, plugin: KernelProfile) -> StrategyEntry:
    """``entry`` built as usual, with ``plugin`` added after its own plugins."""
    def build(ctx):
        strategy = entry.build(ctx)
        strategy.plugins.append(plugin)
        return strategy

    return StrategyEntry(name=entry.name, description=entry.description, build=build, source=entry.source,
                         family=entry.family, options=entry.options, task_kinds=entry.task_kinds)


def _computes(event) -> bool:
    """Whether ``event`` is an ATen operator that may launch a kernel (not one of :data:`NO_KERNEL`)."""
    return event.name.startswith("aten::") and event.name not in NO_KERNEL and event.device_type == DeviceType.CPU


def summarise(plugin: KernelProfile, steps: int, step_ms: float) -> tuple[dict, str]:
    """The per-step kernel counts and times of ``plugin``'s recording of ``steps`` steps, and its operator table."""
    assert plugin.profiler is not None, "the strategy trained fewer than two iterations"
    events = plugin.profiler.events()
    kernels = [event for event in events if event.device_type == DeviceType.CUDA]
    operators = [event for event in events if event.name.startswith("aten::") and event.device_type == DeviceType.CPU
                 and not any(child.name.startswith("aten::") for child in event.cpu_children)]
    computing = [event for event in events if _computes(event) and not any(map(_computes, event.cpu_children))]
    averages = plugin.profiler.key_averages()
    sort_by = "self_device_time_total" if kernels else "self_cpu_time_total"
    summary = {
        "profiled_steps": steps, "profiled_step_ms": step_ms,
        "leaf_operators_per_step": len(operators) / steps,
        "compute_operators_per_step": len(computing) / steps,
        "kernels_per_step": len(kernels) / steps,
        "kernel_ms_per_step": sum(event.device_time_total for event in kernels) / 1000 / steps,
        "top_kernels": [
            {"name": row.key, "calls_per_step": row.count / steps,
             "ms_per_step": row.self_device_time_total / 1000 / steps}
            for row in sorted((row for row in averages if row.device_type == DeviceType.CUDA),
                              key=lambda row: row.self_device_time_total, reverse=True)[:TOP]
        ],
    }
    return summary, averages.table(sort_by=sort_by, row_limit=TOP, max_name_column_width=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny", help="tiny, paper or micro")
    parser.add_argument("--device", default="cuda", help="cuda or cpu")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--strategy", action="append", required=True, help="strategy to profile; repeatable")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (after one warm-up step)")
    parser.add_argument("--out", type=Path, required=True, help="JSON file of the per-step summaries")
    parser.add_argument("--table", type=Path, required=True, help="text file of the operator tables")
    args = parser.parse_args()
    registry = load_registry()
    plugins = {name: KernelProfile() for name in args.strategy}
    entries = [profiled(registry.get(name), plugins[name]) for name in args.strategy]
    rows = profile_strategies(entries, get_preset(args.preset), torch.device(args.device), args.steps,
                              precision=args.precision)
    summaries, tables = {}, []
    for row in rows:
        summary, table = summarise(plugins[row["strategy"]], row["steps"], row["train_step_ms"])
        summaries[row["strategy"]] = summary
        tables.append(f"== {row['strategy']} ({args.preset}, {args.device}, {args.precision}): "
                      f"{summary['leaf_operators_per_step']:.0f} leaf and "
                      f"{summary['compute_operators_per_step']:.0f} compute operators, "
                      f"{summary['kernels_per_step']:.0f} kernels and {summary['kernel_ms_per_step']:.1f} ms of "
                      f"kernel time per step, {row['train_step_ms']:.1f} ms wall (profiled)\n{table}")
        print(tables[-1].splitlines()[0])
    for path in (args.out, args.table):
        path.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"preset": args.preset, "device": args.device, "precision": args.precision,
                                    "strategies": summaries}, indent=1) + "\n", encoding="utf-8")
    args.table.write_text("\n\n".join(tables) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
