"""Avalanche plugins that decide which PEMMA adapter set trains on an experience and which one is evaluated.

Two protocols:

* :class:`TaskAdapterPlugin` (``pemma-lora``, ``pemma-dora``): one adapter set per task, picked at test time
  by the test experience's task label (**task-aware**). Earlier sets never change again, so earlier results
  cannot be forgotten: zero forgetting holds by construction.
* :class:`SharedAdapterPlugin` (``pemma-lora-shared``, ``pemma-dora-shared``, the authors' released protocol):
  one adapter set, trained from the first experience and continued through every later one, used for every
  test experience without its task label (**task-agnostic**); its forgetting is measured.

Both let an experience train only the parts :mod:`pemma_cl.models.update_rule` allows for its modalities,
and rebuild the optimizer before each experience (Avalanche builds it before plugins run, so a newly added
or newly unfrozen adapter would otherwise never be optimised).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack

from avalanche.core import SupervisedPlugin

from pemma_cl.core.task_kinds import SEGMENTATION
from pemma_cl.models.adapters import SHARED_ADAPTER, adapter_name, add_task_adapter, train_only
from pemma_cl.models.update_rule import trainable_pemma_modules


class AdapterPlugin(SupervisedPlugin):
    """Shared mechanics: activate an adapter set for training, apply the modality rule, rebuild the optimizer.

    Args:
        experience_modalities: per experience of the stream (in order), the modalities of its training data.
        experience_kinds: per experience, its task kind (none given: all segmentation).
    """

    #: Whether evaluation picks the adapter set by the test experience's task label.
    uses_test_task_label = False

    def __init__(self, experience_modalities: Sequence[Sequence[str]], experience_kinds: Sequence[str] = ()) -> None:
        super().__init__()
        self.experience_modalities = [tuple(m) for m in experience_modalities]
        self.experience_kinds = list(experience_kinds) or [SEGMENTATION] * len(self.experience_modalities)
        self._eval_stack = ExitStack()

    def _activate_for_training(self, strategy) -> None:
        raise NotImplementedError

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._activate_for_training(strategy)
        index = strategy.experience.current_experience
        train_only(strategy.model, trainable_pemma_modules(self.experience_modalities[index],
                                                           self.experience_kinds[index]))
        strategy.make_optimizer(reset_optimizer_state=True)

    def after_eval_exp(self, strategy, **kwargs) -> None:
        self._eval_stack.close()

    def _evaluate_base(self, strategy) -> None:
        """Before any training, evaluate the CT base itself (every adapter disabled)."""
        self._eval_stack.enter_context(strategy.model.disable_adapter())


class TaskAdapterPlugin(AdapterPlugin):
    """Per-task adapter sets, task-aware at evaluation.

    Training experience with task label t: adapter ``task<t>`` is created if new (warm-started from the
    last trained task's adapter) and activated; only it trains.

    Evaluation of a test experience with task label t: adapter ``task<t>`` if it was trained; otherwise
    the most recently trained adapter; before any training, the CT base itself.
    """

    uses_test_task_label = True

    def __init__(self, experience_modalities: Sequence[Sequence[str]], experience_kinds: Sequence[str] = ()) -> None:
        super().__init__(experience_modalities, experience_kinds)
        self.trained_tasks: list[int] = []

    def _activate_for_training(self, strategy) -> None:
        task = strategy.experience.task_label
        warm_start = self.trained_tasks[-1] if self.trained_tasks else None
        add_task_adapter(strategy.model, task, warm_start_from=warm_start)
        if task not in self.trained_tasks:
            self.trained_tasks.append(task)

    def before_eval_exp(self, strategy, **kwargs) -> None:
        task = strategy.experience.task_label
        if task in self.trained_tasks:
            strategy.model.set_adapter(adapter_name(task))
        elif self.trained_tasks:
            strategy.model.set_adapter(adapter_name(self.trained_tasks[-1]))
        else:
            self._evaluate_base(strategy)


class SharedAdapterPlugin(AdapterPlugin):
    """One adapter set (``shared``) trained through every experience; task-agnostic at evaluation.

    Evaluation never reads the test experience's task label: the shared set once it has been trained,
    the CT base itself before.
    """

    def __init__(self, experience_modalities: Sequence[Sequence[str]], experience_kinds: Sequence[str] = ()) -> None:
        super().__init__(experience_modalities, experience_kinds)
        self.trained = False

    def _activate_for_training(self, strategy) -> None:
        strategy.model.set_adapter(SHARED_ADAPTER)
        self.trained = True

    def before_eval_exp(self, strategy, **kwargs) -> None:
        if not self.trained:
            self._evaluate_base(strategy)
