"""What a strategy's build function receives: settings, the shared bases, and a strategy factory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from pemma_cl.core.precision import FP32
from pemma_cl.core.task_kinds import PROGNOSIS
from pemma_cl.data.description import DatasetDescription
from pemma_cl.models.presets import Preset
from pemma_cl.training.bases import SharedBases
from pemma_cl.training.template import SegmentationTemplate, make_optimizer

#: Evaluation mini-batch size (no gradients: larger batches use the CPU better).
EVAL_BATCH_SIZE = 8


@dataclass
class BuildContext:
    """Handed to every registered strategy's ``build(ctx)``; strategies must build through it.

    Attributes:
        name: the strategy's registered name.
        preset: network size and training budget.
        device: torch device of the run.
        seed: run seed (the global RNGs are already seeded with it).
        epochs: training epochs per experience.
        task_labels: task label of each experience of the stream, in order.
        experience_modalities: modalities of each experience's training data, in order (a strategy must not
            assume PET where an experience has none: its PET channel is all zeros there).
        bases: the shared pre-trained bases (``bases.get("ct")``, ``bases.get("fusion")``).
        description: what the run's data set is: its structures (the networks' outputs are
            ``description.num_classes``: background plus one per structure), grouping columns, normalisation.
        make_evaluator: returns the run's evaluation plugin (Dice metric) for this strategy.
        run_plugins: plugins the run adds to every strategy (progress, cost).
        options: the strategy's resolved options (an instance of its registered options dataclass), or None.
        stream_training_data: every experience's training data (Avalanche datasets), in stream order; for
            offline references (``joint``) only: a continual strategy must not read ahead.
        experience_kinds: task kind of each experience (``segmentation`` or ``prognosis``), in order.
        precision: arithmetic of the strategy's forward passes (one of :data:`~pemma_cl.core.precision.PRECISIONS`).
    """

    name: str
    preset: Preset
    device: torch.device
    seed: int
    epochs: int
    task_labels: list[int]
    experience_modalities: list[tuple[str, ...]]
    bases: SharedBases
    description: DatasetDescription
    make_evaluator: Callable[[], EvaluationPlugin]
    run_plugins: list[SupervisedPlugin] = field(default_factory=list)
    options: Any = None
    stream_training_data: list[Any] = field(default_factory=list)
    experience_kinds: list[str] = field(default_factory=list)
    precision: str = FP32

    @property
    def has_prognosis(self) -> bool:
        """Whether the stream has prognosis experiences (models then need a survival head)."""
        return PROGNOSIS in self.experience_kinds

    @property
    def ehr_size(self) -> int | None:
        """The EHR vector's length a model's survival head reads; None when the stream has no prognosis (no head)."""
        return self.description.ehr_size if self.has_prognosis else None

    def make_strategy(self, model: nn.Module, plugins: Sequence[SupervisedPlugin] = (),
                      lr: float | None = None, modality_dropout: float = 0.5, template: type[SegmentationTemplate] = SegmentationTemplate,
                      **template_kwargs) -> SegmentationTemplate:
        """An Avalanche strategy over ``model`` with the run's optimizer, budget, metrics and plugins.

        Args:
            model: a network called as ``model(x, modality_mask)``.
            plugins: the strategy's own Avalanche plugins (EWC, replay, adapter switching, ...).
            lr: AdamW learning rate; default ``preset.lr``.
            modality_dropout: probability of hiding one modality of a CT+PET training sample.
            template: a :class:`SegmentationTemplate` subclass, for strategies that change the loop.
            **template_kwargs: extra arguments of ``template``.
        """
        trainable = [p for p in model.parameters() if p.requires_grad]
        return template(
            model=model,
            optimizer=make_optimizer(trainable, lr or self.preset.lr),
            train_mb_size=self.preset.batch_size,
            train_epochs=self.epochs,
            eval_mb_size=EVAL_BATCH_SIZE,
            device=self.device,
            plugins=[*plugins, *self.run_plugins],
            evaluator=self.make_evaluator(),
            roi_size=self.preset.img_size,
            modality_dropout=modality_dropout,
            seed=self.seed,
            experience_kinds=self.experience_kinds,
            prognosis_mb_size=self.preset.prognosis_batch_size,
            prognosis_epochs=self.preset.prognosis_epochs,
            prognosis_lr_scale=self.preset.prognosis_lr_scale,
            precision=self.precision,
            **template_kwargs,
        )
