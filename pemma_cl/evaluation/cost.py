"""What a strategy costs: trainable and stored parameters, bytes per task, training time, peak memory."""

from __future__ import annotations

import time

import torch
from avalanche.core import SupervisedPlugin
from torch import nn


#: Name fragments of peft's per-task parameters (adapter weights, per-adapter and pristine module copies).
PER_TASK_MARKERS = ("lora_", "modules_to_save", "original_module")


def parameter_budget(model: nn.Module) -> dict[str, int]:
    """Parameter counts of a model as it is now (with the active task's adapter trainable).

    Returns:
        ``trainable`` and ``trainable_bytes`` (what the active task trains and stores), ``shared`` (frozen
        parameters every task uses, i.e. not another task's adapter copy) and ``total`` = shared + trainable,
        the size of the model that serves one task.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    shared = [p for name, p in model.named_parameters()
              if not p.requires_grad and not any(marker in name for marker in PER_TASK_MARKERS)]
    n_trainable, n_shared = sum(p.numel() for p in trainable), sum(p.numel() for p in shared)
    return {"trainable": n_trainable, "trainable_bytes": sum(p.numel() * p.element_size() for p in trainable),
            "shared": n_shared, "total": n_trainable + n_shared}


class CostPlugin(SupervisedPlugin):
    """Measures training cost while a strategy runs.

    Parameters are counted at each training epoch (after plugins have added and activated a new adapter),
    see :func:`parameter_budget`; ``bytes_per_task`` is what one task adds to storage (its trainable
    parameters) and ``total_params`` is the model that serves one task (shared + one task's trainable).
    """

    def __init__(self) -> None:
        super().__init__()
        self.train_seconds = 0.0
        self.trainable_params = 0
        self.bytes_per_task = 0
        self.shared_params = 0
        self.peak_memory_bytes: int | None = None
        self._started = 0.0

    def before_training_epoch(self, strategy, **kwargs) -> None:
        budget = parameter_budget(strategy.model)
        self.trainable_params = max(self.trainable_params, budget["trainable"])
        self.bytes_per_task = max(self.bytes_per_task, budget["trainable_bytes"])
        self.shared_params = budget["shared"]

    def before_training_exp(self, strategy, **kwargs) -> None:
        if torch.cuda.is_available() and strategy.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(strategy.device)
        self._started = time.perf_counter()

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.train_seconds += time.perf_counter() - self._started
        if torch.cuda.is_available() and strategy.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(strategy.device)
            self.peak_memory_bytes = max(self.peak_memory_bytes or 0, peak)

    def as_dict(self) -> dict:
        total = self.shared_params + self.trainable_params
        return {
            "trainable_params": self.trainable_params,
            "total_params": total,
            "trainable_pct": 100.0 * self.trainable_params / total if total else None,
            "bytes_per_task": self.bytes_per_task,
            "train_seconds": round(self.train_seconds, 2),
            "peak_memory_bytes": self.peak_memory_bytes,
        }
