"""What a strategy costs: trainable and stored parameters, bytes per task, memory of the past, training time,
peak memory.

A plugin that keeps something beyond the model to remember the past (a replay buffer, importance and anchor
weights, a teacher copy, the data it retrains on) says how much with a ``stored_bytes() -> int`` method; the run
reports the sum as ``past_bytes``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from avalanche.core import SupervisedPlugin
from torch import nn

from pemma_cl.data.hecktor.layout import HEAD_AND_NECK_STRUCTURES
from pemma_cl.models.presets import Preset

#: The paper's network outputs: background plus HECKTOR 2022's structures (GTVp, GTVn).
PAPER_NUM_CLASSES = 1 + len(HEAD_AND_NECK_STRUCTURES)

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

    def as_dict(self, model: nn.Module | None = None, plugins: Sequence[object] = ()) -> dict:
        """The costs; with the strategy's ``model`` and ``plugins`` at the end of the stream, also what it stores.

        ``stored_params`` counts every parameter the model holds (shared base, every task's adapter set and
        peft's pristine copies of the modules it saves per adapter: what peft's ``print_trainable_parameters``
        counts, the authors' denominator), and ``trainable_pct_stored`` is one task's trainable parameters over it.
        ``past_bytes`` is what the plugins keep beyond the model to remember the past (see the module docstring).
        """
        total = self.shared_params + self.trainable_params
        stored = None if model is None else sum(p.numel() for p in model.parameters())
        return {
            "trainable_params": self.trainable_params,
            "total_params": total,
            "trainable_pct": 100.0 * self.trainable_params / total if total else None,
            "stored_params": stored,
            "trainable_pct_stored": 100.0 * self.trainable_params / stored if stored else None,
            "bytes_per_task": self.bytes_per_task,
            "past_bytes": sum(p.stored_bytes() for p in plugins if hasattr(p, "stored_bytes")),
            "train_seconds": round(self.train_seconds, 2),
            "peak_memory_bytes": self.peak_memory_bytes,
        }


def pemma_parameter_counts(preset: Preset, use_dora: bool, n_tasks: int,
                           num_classes: int = PAPER_NUM_CLASSES) -> dict[str, int | float]:
    """PEMMA's parameter counts at a preset, without training (built on the meta device, shapes only, where the
    backbone allows; else on the CPU without drawing from the global random generator).

    Args:
        preset: network size.
        use_dora: DoRA instead of LoRA.
        n_tasks: tasks of the stream; the per-task protocol stores one adapter set per task.
        num_classes: the network's outputs (background plus one per structure); default: the paper's.

    Returns:
        ``base`` (frozen CT base), ``lora`` (one set's LoRA/DoRA on the transformer), ``pet_path`` (one set's PEMMA
        modules: PET embedding, token fusion, missing-modality adapters, PET skip), ``trainable`` (lora +
        pet_path: what one task trains), ``served`` (base + trainable: what serves one task), ``stored_shared``
        and ``stored_per_task`` (every parameter held by the model after the stream with one shared set or
        with ``n_tasks`` sets; peft also keeps pristine copies of the PEMMA modules, counted here as peft's
        ``print_trainable_parameters`` counts them), and the shares in percent: ``pct_served``,
        ``pct_stored_shared`` (the authors' count), ``pct_stored_per_task``.
    """
    from pemma_cl.models.adapters import adapter_name, add_task_adapter, wrap_with_adapters
    from pemma_cl.models.backbones import build_network, get_backbone
    from pemma_cl.models.pemma import PemmaNetwork

    meta = get_backbone(preset.backbone).builds_on_meta
    with torch.device("meta" if meta else "cpu"), torch.random.fork_rng(devices=[]):
        base = build_network(preset, 1, num_classes)
        n_base = sum(p.numel() for p in base.parameters())  # before peft injects its layers into it
        model = wrap_with_adapters(PemmaNetwork(base, preset), preset, use_dora=use_dora, first_adapter=adapter_name(1))
        stored_shared = sum(p.numel() for p in model.parameters())
        trainable = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad}
        for task in range(2, n_tasks + 1):
            add_task_adapter(model, task, warm_start_from=None)
        stored_per_task = sum(p.numel() for p in model.parameters())
    counts: dict[str, int | float] = {
        "base": n_base,
        "lora": sum(n for name, n in trainable.items() if "lora_" in name),
        "pet_path": sum(n for name, n in trainable.items() if "modules_to_save" in name),
    }
    counts["trainable"] = sum(trainable.values())
    counts["served"] = counts["base"] + counts["trainable"]
    counts.update(stored_shared=stored_shared, stored_per_task=stored_per_task)
    for key, denominator in (("pct_served", "served"), ("pct_stored_shared", "stored_shared"),
                             ("pct_stored_per_task", "stored_per_task")):
        counts[key] = 100.0 * counts["trainable"] / counts[denominator]
    return counts
