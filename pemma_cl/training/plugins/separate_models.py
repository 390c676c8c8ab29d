"""One whole network per task, each fine-tuned from the same start and picked by the test experience's task label.

:class:`PerTaskNetworks` holds the networks and runs the active one; :class:`SeparateModelsPlugin` adds a task's
network (a copy of the start) when the task first trains, lets only it train, and picks it at evaluation
(**task-aware**). Earlier networks are frozen, so they stay bit-identical through later experiences.
"""

from __future__ import annotations

import copy

from avalanche.core import SupervisedPlugin
from torch import nn


def network_key(task: int) -> str:
    """The key of a task label's network."""
    return f"task{task}"


class PerTaskNetworks(nn.Module):
    """Networks by task label, called as the active one is (``model(x, modality_mask, ...)``).

    The networks are held in ``modules_to_save``, peft's name for modules kept once per task, so that the cost
    columns count each of them as a task's own parameters rather than as a base every task shares.

    Args:
        first: the first task's network.
        first_task: its task label.
    """

    def __init__(self, first: nn.Module, first_task: int) -> None:
        super().__init__()
        self.modules_to_save = nn.ModuleDict({network_key(first_task): first})
        self.active = network_key(first_task)

    @property
    def active_network(self) -> nn.Module:
        """The network that runs now."""
        return self.modules_to_save[self.active]

    def has(self, task: int) -> bool:
        """Whether task ``task`` has a network."""
        return network_key(task) in self.modules_to_save

    def add(self, task: int, network: nn.Module) -> None:
        """Give task ``task`` its network."""
        self.modules_to_save[network_key(task)] = network

    def activate(self, task: int, train: bool = False) -> None:
        """Run task ``task``'s network from now on; with ``train``, make it the only trainable one."""
        self.active = network_key(task)
        if train:
            for key, network in self.modules_to_save.items():
                network.requires_grad_(key == self.active)

    def forward(self, *args, **kwargs):
        return self.active_network(*args, **kwargs)


class SeparateModelsPlugin(SupervisedPlugin):
    """Trains task t's own network on an experience with task label t; evaluates a test experience with task label t
    on it (task-aware).

    A task's network is a copy of ``start`` (all from the same point, none warm-started from another task). A test
    experience whose task has not trained is evaluated on the most recently trained network; before any training, on
    the first network, which is then still ``start``.

    Args:
        start: the starting network, kept untouched.
    """

    uses_test_task_label = True

    def __init__(self, start: nn.Module) -> None:
        super().__init__()
        self.start = start
        self.trained_tasks: list[int] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        task = strategy.experience.task_label
        if not strategy.model.has(task):
            strategy.model.add(task, copy.deepcopy(self.start).to(strategy.device))
        strategy.model.activate(task, train=True)
        if task not in self.trained_tasks:
            self.trained_tasks.append(task)
        strategy.make_optimizer(reset_optimizer_state=True)  # Avalanche built it before plugins ran

    def before_eval_exp(self, strategy, **kwargs) -> None:
        task = strategy.experience.task_label
        if task in self.trained_tasks:
            strategy.model.activate(task)
        elif self.trained_tasks:
            strategy.model.activate(self.trained_tasks[-1])
