"""Which cells of a unit's evaluation are computed, copied from an earlier state, or not scored.

A unit evaluates its model at ``n + 1`` states: before training (state -1) and after each of the stream's ``n``
experiences (state i). Each evaluation scores some test experiences under each input setting: a *cell* is one
(state, test experience, input setting). :func:`scored_experiences` says which experiences a state scores; each
cell belongs to one group of :data:`CELL_GROUPS`:

* ``final``: the last state, every experience (final Dice, HD95 and the lesion measures read it);
* ``seen``: an earlier state i >= 0 and an experience trained by then (j <= i): forgetting and BWT read them;
* ``next``: an earlier state and an experience not yet trained: the base's every experience, and experience i + 1
  after experience i (forward transfer reads them).

A :class:`ScoringPlan` spends less in two ways, and never changes a row it keeps:

* **Scoring only what is read.** A run that reads some groups at some inputs only (a decide run's declared
  contrasts: final Dice reads ``final``, forgetting ``seen`` and ``final``, each at its contrast's input) names
  them; every other cell is not scored and has no rows.
* **Not re-scoring frozen task parameters.** A strategy whose earlier task parameters are frozen
  (:attr:`~pemma_cl.strategy_api.registry.StrategyEntry.frozen_earlier_tasks`: per-task PEMMA) evaluates test
  experience j at state i with the parameters of task ``used`` = j's task label once trained, else the last trained
  one, as they were when that task was last trained (state k): unchanged since. Its cell at a later state is the
  cell at state k, bit for bit (``tests/test_score_what_is_read.py`` trains such strategies and checks it), so it is
  copied from the first state since k that computed it instead of being computed again. Only between states before
  the last: the last state scores every test case and HD95, the earlier ones the tracked cases without it.

This module imports nothing heavy: a run's configuration checks its cells against :data:`CELL_GROUPS` and
:data:`INPUTS`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["CELL_GROUPS", "COMPUTE", "GROUPS_READ", "INPUTS", "SKIP", "ScoringPlan", "cell_group", "cells_read",
           "scored_experiences"]

#: The groups of cells a run can choose to score (see the module docstring).
CELL_GROUPS: tuple[str, ...] = ("final", "seen", "next")
#: The input settings a segmentation experience is evaluated under
#: (:data:`~pemma_cl.training.template.INPUT_SETTINGS`, which imports torch).
INPUTS: tuple[str, ...] = ("ct", "pet", "ctpet")
#: :meth:`ScoringPlan.action` of a cell that is computed, and of one that is not scored (no rows).
COMPUTE, SKIP = "compute", "skip"
#: The groups of segmentation cells each metric of a primary contrast reads (:data:`pemma_cl.report.contrasts.METRICS`):
#: final Dice the last state; forgetting, as the drop or cross-fitted, each experience from the state right after its
#: training to the last; a C-index gain none (it reads prognosis rows, which every plan scores).
GROUPS_READ: dict[str, tuple[str, ...]] = {"final_dice": ("final",), "forgetting": ("seen", "final"),
                                           "forgetting_drop": ("seen", "final"), "cindex_gain": ()}


def scored_experiences(state: int, n: int) -> range:
    """The test experiences state ``state`` of a stream of ``n`` experiences scores: every one before training and at
    the last state, experiences ``0 .. state + 1`` in between (the lower triangle of the results matrix and the cell
    above its diagonal)."""
    return range(n) if state in (-1, n - 1) else range(min(state + 2, n))


def cells_read(reads: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The ``scored_cells`` (:attr:`pemma_cl.run.config.RunConfig.scored_cells`) of a run whose rows are read only
    through ``(metric, input)`` pairs (a decide run's contrasts), sorted; empty, every cell, when a metric is not one
    of :data:`GROUPS_READ` or none reads a segmentation cell."""
    cells = set()
    for metric, setting in reads:
        if metric not in GROUPS_READ:
            return ()
        cells |= {(group, setting) for group in GROUPS_READ[metric]}
    return tuple(sorted(cells))


def cell_group(state: int, experience: int, n: int) -> str:
    """The group (of :data:`CELL_GROUPS`) of the cells of ``experience`` at ``state``."""
    if state == n - 1:
        return "final"
    return "seen" if 0 <= experience <= state else "next"


@dataclass(frozen=True)
class ScoringPlan:
    """What a unit scores of each cell: computed, copied from an earlier state, or not scored.

    Args:
        task_labels: the task label of each experience of the stream, in order.
        frozen_earlier_tasks: the strategy's earlier task parameters are frozen (see the module docstring).
        read: the ``(group, input)`` pairs the run reads; None: every cell.
    """

    task_labels: tuple[int, ...]
    frozen_earlier_tasks: bool = False
    read: frozenset[tuple[str, str]] | None = None
    _actions: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def for_run(cls, task_labels: Sequence[int], frozen_earlier_tasks: bool = False,
                read: Collection[Sequence[str]] = ()) -> ScoringPlan:
        """The plan of a unit: ``read`` empty scores every cell."""
        return cls(tuple(task_labels), frozen_earlier_tasks, frozenset(map(tuple, read)) or None)

    @property
    def n(self) -> int:
        """The stream's experiences."""
        return len(self.task_labels)

    def action(self, state: int, experience: int, setting: str) -> str | int:
        """:data:`COMPUTE`, :data:`SKIP`, or the earlier state whose rows of the cell are this cell's.

        Raises:
            ValueError: If ``state`` does not score ``experience``.
        """
        if experience not in scored_experiences(state, self.n):
            raise ValueError(f"state {state} does not score experience {experience} (it scores "
                             f"{list(scored_experiences(state, self.n))})")
        key = (state, experience, setting)
        if key not in self._actions:
            self._actions[key] = self._decide(state, experience, setting)
        return self._actions[key]

    def computed(self, state: int, experience: int, settings: Sequence[str]) -> tuple[str, ...]:
        """Those of ``settings`` (in their order) whose cell at ``state`` is computed."""
        return tuple(s for s in settings if self.action(state, experience, s) == COMPUTE)

    def _decide(self, state: int, experience: int, setting: str) -> str | int:
        if self.read is not None and (cell_group(state, experience, self.n), setting) not in self.read:
            return SKIP
        if not self.frozen_earlier_tasks or state in (-1, self.n - 1):
            return COMPUTE
        for earlier in range(self._last_trained(state, experience), state):
            if experience in scored_experiences(earlier, self.n) and self.action(earlier, experience,
                                                                                 setting) == COMPUTE:
                return earlier
        return COMPUTE

    def _last_trained(self, state: int, experience: int) -> int:
        """The state after which the parameters that evaluate ``experience`` at ``state`` last changed: those of its
        task once trained, else of the last trained task."""
        trained = self.task_labels[:state + 1]
        used = self.task_labels[experience] if self.task_labels[experience] in trained else trained[-1]
        return max(i for i, task in enumerate(trained) if task == used)
