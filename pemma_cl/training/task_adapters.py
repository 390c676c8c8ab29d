"""Avalanche plugin that gives each task its own peft adapter set and selects it by task label."""

from __future__ import annotations

from contextlib import ExitStack

from avalanche.core import SupervisedPlugin

from pemma_cl.models.adapters import adapter_name, add_task_adapter


class TaskAdapterPlugin(SupervisedPlugin):
    """Per-task adapters on a peft model, task-aware at evaluation.

    Training experience with task label t: adapter ``task<t>`` is created if new (warm-started from the
    last trained task's adapter), activated (only it trains), and the optimizer rebuilt (Avalanche builds
    it before plugins run, so a new adapter would otherwise never be optimised).

    Evaluation of a test experience with task label t: adapter ``task<t>`` if it was trained; otherwise
    the most recently trained adapter; before any training, adapters are disabled (the CT base itself).
    """

    def __init__(self) -> None:
        super().__init__()
        self.trained_tasks: list[int] = []
        self._eval_stack = ExitStack()

    def before_training_exp(self, strategy, **kwargs) -> None:
        task = strategy.experience.task_label
        warm_start = self.trained_tasks[-1] if self.trained_tasks else None
        add_task_adapter(strategy.model, task, warm_start_from=warm_start)
        if task not in self.trained_tasks:
            self.trained_tasks.append(task)
        strategy.make_optimizer(reset_optimizer_state=True)

    def before_eval_exp(self, strategy, **kwargs) -> None:
        task = strategy.experience.task_label
        if task in self.trained_tasks:
            strategy.model.set_adapter(adapter_name(task))
        elif self.trained_tasks:
            strategy.model.set_adapter(adapter_name(self.trained_tasks[-1]))
        else:
            self._eval_stack.enter_context(strategy.model.disable_adapter())

    def after_eval_exp(self, strategy, **kwargs) -> None:
        self._eval_stack.close()
