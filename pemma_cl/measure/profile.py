"""What a training step and an evaluation cost, per strategy, like for like (``pemma-bench profile``).

Every strategy is built exactly as a run builds it (its registered build function, the run's Avalanche template and
optimiser) on an untrained base of the preset: weights do not change the cost of a step, and nothing is trained
first. It then trains one experience of synthetic CT+PET cases for ``steps + 1`` mini-batches through Avalanche's
loop and evaluates a few cases under the three input settings:

* ``train_step_ms``: median wall time of a full training iteration (forward, loss, backward, optimiser step, the
  strategy's plugins), the first one left out (warm-up);
* ``eval_ms_per_case``: evaluation wall time per case and input setting;
* ``peak_memory_bytes``: peak CUDA memory allocated while training (None on a CPU, where the process's memory is
  shared by every strategy it built and says nothing about one);
* ``trainable_params`` and ``trainable_pct``: as in a run's cost columns;
* ``forward_gflop``, ``backward_gflop`` and their sum ``train_step_gflop``: the arithmetic of one training step on
  a CT+PET mini-batch, counted by PyTorch's ``FlopCounterMode`` (matrix products, convolutions and attention;
  normalisations and activations, which move memory more than they compute, are not counted): the same on every
  machine and at every precision, unlike the times;
* ``step_vs_full_finetune`` and ``gflop_vs_full_finetune``: ``train_step_ms`` and ``train_step_gflop`` over full
  fine-tuning's, when it is profiled too;
* ``threads``: torch's intra-op threads the times were measured with (the caller sets them).

One experience only: what a continual baseline adds from the second experience on (EWC's and MAS's penalty,
LwF's teacher forward pass, replay's buffer cases in every mini-batch) is not in these steps; a run's ``Train s``
column has it.
"""

from __future__ import annotations

import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from pemma_cl.core.precision import FP32
from pemma_cl.data.sources import SYNTHETIC_DESCRIPTION
from pemma_cl.data.synthetic.cohort import generate_cohort
from pemma_cl.evaluation.cost import parameter_budget
from pemma_cl.models.backbones import build_network
from pemma_cl.models.presets import Preset
from pemma_cl.run.unit import seed_everything
from pemma_cl.strategy_api.options import instantiate
from pemma_cl.strategy_api.registry import StrategyEntry
from pemma_cl.streams.build import StreamData, build_stream
from pemma_cl.streams.spec import ExperienceSpec, PretrainSpec, StreamSpec
from pemma_cl.training.bases import BASE_KINDS
from pemma_cl.training.context import BuildContext
from pemma_cl.training.single_case import segment

__all__ = ["profile_strategies"]

#: The centre the synthetic profiling cases are drawn from (the cohort's largest).
CENTRE = "CHUM"
#: Cases each strategy evaluates.
EVAL_CASES = 2
#: The strategy every step time is compared with.
REFERENCE = "full-finetune"


class UntrainedBases:
    """Stands in for :class:`~pemma_cl.training.bases.SharedBases`: a freshly initialised network of each kind, with
    the synthetic cohort's outputs."""

    def __init__(self, preset: Preset) -> None:
        self.preset = preset

    def get(self, kind: str) -> nn.Module:
        return build_network(self.preset, len(BASE_KINDS[kind]), SYNTHETIC_DESCRIPTION.num_classes)


class StepTimer(SupervisedPlugin):
    """Wall time of every training iteration (synchronised with the GPU when there is one)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self._started = 0.0

    @staticmethod
    def now(strategy) -> float:
        """``time.perf_counter()`` once the strategy's device has finished its queued work."""
        if strategy.device.type == "cuda":
            torch.cuda.synchronize(strategy.device)
        return time.perf_counter()

    def before_training_iteration(self, strategy, **kwargs) -> None:
        self._started = self.now(strategy)

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self.seconds.append(self.now(strategy) - self._started)


def _stream(preset: Preset, steps: int, seed: int) -> StreamData:
    """One CT+PET experience of ``batch_size * (steps + 1)`` training cases and :data:`EVAL_CASES` evaluated ones."""
    n_train = preset.batch_size * (steps + 1)
    # Five cases, repeated as often as needed: the cost of a step does not depend on which case it sees.
    cases = generate_cohort(seed=seed, shape=(preset.img_size,) * 3, case_scale=0.01, centres=(CENTRE,))
    cases = cases * -(-(n_train + EVAL_CASES) // len(cases))
    spec = StreamSpec(name="profile", description="profiling", pretrain=PretrainSpec((CENTRE,), ("ct",)),
                      experiences=(ExperienceSpec("profile", (CENTRE,), ("ct", "pet"), 1),), path=Path("profile"))
    return build_stream(spec, cases[:n_train], cases[n_train:n_train + EVAL_CASES])


def step_gflop(strategy, batch: list[torch.Tensor]) -> tuple[float, float]:
    """GFLOP of the forward pass and of the backward pass of one training step of ``strategy``'s model on ``batch``
    (a collated mini-batch: image, label, modality mask, ...), with the parameters it trained left trainable; the
    gradients it leaves are cleared."""
    x, y, mask = (tensor.to(strategy.device) for tensor in batch[:3])
    with FlopCounterMode(display=False) as counter:
        output = segment(strategy.model, x, mask.bool())
        forward = counter.get_total_flops()
        strategy._criterion(output, y).backward()
    strategy.model.zero_grad(set_to_none=True)
    return forward / 1e9, (counter.get_total_flops() - forward) / 1e9


def profile_strategies(entries: list[StrategyEntry], preset: Preset, device: torch.device, steps: int,
                       seed: int = 0, precision: str = FP32) -> list[dict[str, Any]]:
    """One row per strategy (see the module docstring), in the order of ``entries``, each built with ``precision``
    (one of :data:`~pemma_cl.core.precision.PRECISIONS`)."""
    warnings.filterwarnings("ignore", message="No loggers specified")  # nothing here is a metric
    stream = _stream(preset, steps, seed)
    training = stream.benchmark.train_stream[0].dataset
    full_batch = training.collate_fn([training[i] for i in range(preset.batch_size)])  # CT+PET, nothing dropped
    rows = []
    for entry in entries:
        seed_everything(seed)
        timer = StepTimer()
        ctx = BuildContext(name=entry.name, preset=preset, device=device, seed=seed, epochs=1, task_labels=[1],
                           experience_modalities=[("ct", "pet")], bases=UntrainedBases(preset),  # type: ignore[arg-type]
                           description=SYNTHETIC_DESCRIPTION, make_evaluator=lambda: EvaluationPlugin(loggers=[]),
                           run_plugins=[timer],
                           options=instantiate(entry.name, entry.options, {}),
                           stream_training_data=[exp.dataset for exp in stream.benchmark.train_stream],
                           precision=precision)
        strategy = entry.build(ctx)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        strategy.train(stream.benchmark.train_stream[0])
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
        forward_gflop, backward_gflop = step_gflop(strategy, full_batch)
        budget = parameter_budget(strategy.model)
        started = timer.now(strategy)
        strategy.eval(stream.benchmark.test_stream)
        evaluated = EVAL_CASES * len(strategy.eval_settings)
        rows.append({
            "strategy": entry.name, "preset": preset.name, "device": str(device), "precision": precision,
            "threads": torch.get_num_threads(),
            "steps": len(timer.seconds) - 1,
            "train_step_ms": 1000 * statistics.median(timer.seconds[1:]),
            "eval_ms_per_case": 1000 * (timer.now(strategy) - started) / evaluated,
            "peak_memory_bytes": peak, "trainable_params": budget["trainable"],
            "trainable_pct": 100 * budget["trainable"] / budget["total"],
            "forward_gflop": forward_gflop, "backward_gflop": backward_gflop,
            "train_step_gflop": forward_gflop + backward_gflop,
        })
        del strategy
    reference = next((row for row in rows if row["strategy"] == REFERENCE), None)
    for row in rows:
        row["step_vs_full_finetune"] = (None if reference is None
                                        else row["train_step_ms"] / reference["train_step_ms"])
        row["gflop_vs_full_finetune"] = (None if reference is None
                                         else row["train_step_gflop"] / reference["train_step_gflop"])
    return rows
