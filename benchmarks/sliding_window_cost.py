"""What evaluating whole volumes costs: sliding-window inference on non-cubic volumes against today's single-cube
evaluation, per voxel.

Both go through the suite's own evaluation loop (:class:`pemma_cl.training.template.SegmentationTemplate`, every case
under the three input settings, mini-batches of :data:`~pemma_cl.training.context.EVAL_BATCH_SIZE`) with an untrained
early-fusion network of the preset (UNETR at ``tiny``), on cases built here:

* ``cube``: volumes equal to the patch (``img_size`` cubed, the built-in cohort's), one forward pass per mini-batch;
* ``whole``: volumes of ``--shape`` (default 96x56x72, a torso at 4 mm), MONAI's sliding window at the patch with
  overlap 0.5, as the template runs it: the windows of a case in mini-batches of the evaluation's size;
* ``whole-1``: the same with mini-batches of one (each window then runs as a pair on a CPU,
  :mod:`pemma_cl.training.single_case`): the template's first way, kept as the comparison for its choice.

Evaluation time does not depend on what the network predicts, so the network is not trained; the metrics' own work
(Dice, HD95) is left out. It prints a table and writes JSON (per configuration: seconds per case and input setting,
microseconds per voxel, network calls per case, their ratio to the cube's), with the machine's load before and
after. Run it with one thread on a shared machine::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/sliding_window_cost.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from avalanche.benchmarks import benchmark_from_datasets, with_task_labels
from avalanche.training.plugins import EvaluationPlugin

from pemma_cl.core.files import write_atomically
from pemma_cl.data.dataset import avalanche_dataset
from pemma_cl.data.patches import WHOLE
from pemma_cl.data.records import MODALITIES, CaseRecord
from pemma_cl.data.sources import SYNTHETIC_DESCRIPTION
from pemma_cl.models.backbones import MaskedInputNetwork, build_network
from pemma_cl.models.presets import get_preset
from pemma_cl.training.context import EVAL_BATCH_SIZE
from pemma_cl.training.template import INPUT_SETTINGS, SegmentationTemplate, make_optimizer

DEFAULT_OUT = Path("results/benchmarks/sliding_window_cost.json")


def cases(shape: tuple[int, int, int], n: int, seed: int) -> list[CaseRecord]:
    """``n`` cases of ``shape``: CT and PET noise around soft tissue and a lesion-like block of label 1."""
    rng = np.random.default_rng(seed)
    made = []
    for i in range(n):
        label = np.zeros(shape, dtype=np.uint8)
        label[tuple(slice(s // 2 - 3, s // 2 + 3) for s in shape)] = 1
        ct = rng.normal(40.0, 30.0, shape).astype(np.float32)
        pet = (rng.gamma(2.0, 0.5, shape) + 8.0 * label).astype(np.float32)
        made.append(CaseRecord(f"case{i:03d}", "A", ct=ct, pet=pet, label=label, spacing=(4.0, 4.0, 4.0)))
    return made


class CallCounter(torch.nn.Module):
    """The network, counting its calls (one per mini-batch, or per mini-batch of sliding windows)."""

    def __init__(self, network: torch.nn.Module) -> None:
        super().__init__()
        self.network, self.calls = network, 0

    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.network(x, modality_mask)


def evaluation(model: CallCounter, volumes: list[CaseRecord], patch: int, batch: int, device: torch.device):
    """``timed()``: the wall seconds and network calls of one evaluation of ``volumes`` by the template, in
    mini-batches of ``batch``."""
    data = avalanche_dataset(volumes, MODALITIES, 1, patch=patch, sampling=WHOLE)
    stream = with_task_labels(benchmark_from_datasets(train=[data], test=[data])).test_stream
    strategy = SegmentationTemplate(model=model, optimizer=make_optimizer(model.parameters(), 1e-3), roi_size=patch,
                                    train_mb_size=2, eval_mb_size=batch, device=device,
                                    evaluator=EvaluationPlugin(loggers=[]))

    def timed() -> tuple[float, int]:
        model.calls = 0
        start = time.perf_counter()
        strategy.eval(stream)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, model.calls

    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--shape", type=int, nargs=3, default=(96, 56, 72), metavar=("D", "H", "W"))
    parser.add_argument("--cubes", type=int, default=EVAL_BATCH_SIZE, help="cube cases evaluated")
    parser.add_argument("--volumes", type=int, default=2, help="whole volumes evaluated")
    parser.add_argument("--repeats", type=int, default=3, help="timed evaluations of each configuration, interleaved")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    args = parser.parse_args()
    preset, device = get_preset(args.preset), torch.device(args.device)
    patch, shape = preset.img_size, tuple(args.shape)
    torch.manual_seed(args.seed)
    network = MaskedInputNetwork(build_network(preset, len(MODALITIES), SYNTHETIC_DESCRIPTION.num_classes), tuple(range(len(MODALITIES))))
    model = CallCounter(network)
    configs = {"cube": ((patch,) * 3, args.cubes, EVAL_BATCH_SIZE), "whole": (shape, args.volumes, EVAL_BATCH_SIZE),
               "whole-1": (shape, args.volumes, 1)}
    runs = {name: evaluation(model, cases(size, n, args.seed), patch, batch, device)
            for name, (size, n, batch) in configs.items()}
    load_before = os.getloadavg()
    for timed in runs.values():
        timed()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in configs}
    calls: dict[str, int] = {}
    for _ in range(args.repeats):  # interleaved, so that a change of the machine's load falls on every configuration
        for name, timed in runs.items():
            seconds, calls[name] = timed()
            times[name].append(seconds)
    load_after = os.getloadavg()
    rows = []
    for name, (size, n, batch) in configs.items():
        passes = n * len(INPUT_SETTINGS)
        per_pass = statistics.median(times[name]) / passes
        rows.append({"config": name, "shape": list(size), "cases": n, "batch": batch,
                     "input_settings": len(INPUT_SETTINGS), "seconds": times[name],
                     "seconds_per_case_setting": per_pass, "us_per_voxel": per_pass / int(np.prod(size)) * 1e6,
                     "network_calls_per_case_setting": calls[name] / passes})
    for row in rows:
        row["per_voxel_vs_cube"] = row["us_per_voxel"] / rows[0]["us_per_voxel"]
    result = {"preset": preset.name, "backbone": preset.backbone, "patch": patch, "overlap": 0.5,
              "device": str(device), "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
              "cpu": platform.processor() or platform.machine(), "load_average_before": load_before,
              "load_average_after": load_after, "torch": torch.__version__, "rows": rows}
    print(f"{args.preset} ({preset.backbone}), patch {patch}^3, {device}, {torch.get_num_threads()} thread(s), "
          f"load {load_before[0]:.2f} -> {load_after[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'config':<7} {'shape':>10} {'cases':>5} {'batch':>5} {'s/case/setting':>14} {'us/voxel':>9} "
          f"{'calls/case':>10} {'x cube/voxel':>12}")
    for row in rows:
        print(f"{row['config']:<7} {'x'.join(map(str, row['shape'])):>10} {row['cases']:>5} {row['batch']:>5} "
              f"{row['seconds_per_case_setting']:>14.4f} {row['us_per_voxel']:>9.3f} "
              f"{row['network_calls_per_case_setting']:>10.2f} {row['per_voxel_vs_cube']:>12.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    write_atomically(args.out, lambda file: file.write(text.encode()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
