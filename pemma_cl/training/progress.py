"""Progress lines on stderr while a strategy trains and evaluates (stdout is kept for results)."""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import time
from collections.abc import Iterator, Sequence

from avalanche.core import SupervisedPlugin

from pemma_cl.core.task_kinds import PROGNOSIS, SEGMENTATION

#: False inside :func:`silenced`.
_PRINTING = contextvars.ContextVar("pemma_cl_progress_printing", default=True)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No progress lines inside this block (the Python API's ``quiet=True``, around what may train a shared base)."""
    token = _PRINTING.set(False)
    try:
        yield
    finally:
        _PRINTING.reset(token)


class ProgressPlugin(SupervisedPlugin):
    """Prints ``[strategy] experience i/N (name) epoch e/E loss L`` lines and evaluation timings.

    After the first training step it prints how long training through the whole stream will take at that pace,
    so a run that would take days (the ``paper`` preset on a CPU) says so at once.

    Args:
        label: what is being trained (a strategy name, or ``base ct`` for pre-training).
        experience_names: names of the stream's experiences (for the i/N display).
        train_sizes: training cases of each experience, for the time estimate (none without them).
    """

    def __init__(self, label: str, experience_names: list[str], train_sizes: Sequence[int] = ()) -> None:
        super().__init__()
        self.label = label
        self.names = experience_names
        self.train_sizes = list(train_sizes)
        self._loss_sum = 0.0
        self._batches = 0
        self._started = 0.0
        self._step_started: float | None = None
        self._estimated = False

    def _say(self, text: str) -> None:
        if _PRINTING.get():
            print(f"[{self.label}] {text}", file=sys.stderr, flush=True)

    def before_training_exp(self, strategy, **kwargs) -> None:
        i = strategy.experience.current_experience
        name = self.names[i] if i < len(self.names) else str(i)
        # A plugin earlier in the list may have stopped the experience already (joint trains only at the first).
        what = "nothing to train" if strategy._stop_training else f"training on {len(strategy.adapted_dataset)} cases"
        self._say(f"experience {i + 1}/{len(self.names)} ({name}): {what}")

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._loss_sum, self._batches, self._started = 0.0, 0, time.perf_counter()

    def before_training_iteration(self, strategy, **kwargs) -> None:
        if not self._estimated:
            self._step_started = time.perf_counter()

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self._loss_sum += strategy.loss.detach().item()
        self._batches += 1
        if not self._estimated and self._step_started is not None and self.train_sizes:
            self._estimated = True
            step = time.perf_counter() - self._step_started
            kind = getattr(strategy, "task_kind", SEGMENTATION)
            kinds = list(getattr(strategy, "experience_kinds", ())) or [kind] * len(self.train_sizes)
            batch, epochs = getattr(strategy, "budgets", {}).get(kind, (strategy.train_mb_size, strategy.train_epochs))
            steps = sum(math.ceil(n / batch) for n, k in zip(self.train_sizes, kinds) if k == kind) * epochs
            others = " (the prognosis experiences are not in the estimate)" if PROGNOSIS in kinds and kind != PROGNOSIS else ""
            self._say(f"  first step {step:.2f} s; at this pace training through the stream's {kind} experiences "
                      f"({steps} steps) takes about {duration(step * steps)}{others}")

    def after_training_epoch(self, strategy, **kwargs) -> None:
        loss = self._loss_sum / max(self._batches, 1)
        self._say(f"  epoch {strategy.clock.train_exp_epochs + 1}/{strategy.train_epochs} "
                  f"loss {loss:.4f} ({time.perf_counter() - self._started:.1f} s)")

    def before_eval(self, strategy, **kwargs) -> None:
        self._started = time.perf_counter()
        self._evaluated: dict[str, list[int]] = {SEGMENTATION: [], PROGNOSIS: []}

    def after_eval_exp(self, strategy, **kwargs) -> None:
        kinds = list(getattr(strategy, "experience_kinds", ()))
        i = strategy.experience.current_experience
        self._evaluated[kinds[i] if i < len(kinds) else SEGMENTATION].append(len(strategy.experience.dataset))

    def after_eval(self, strategy, **kwargs) -> None:
        segmentation, prognosis = self._evaluated[SEGMENTATION], self._evaluated[PROGNOSIS]
        scored = (f"{_count(len(segmentation), 'segmentation experience')} "
                  f"({_count(sum(segmentation), 'case')}) x {len(strategy.eval_settings)} inputs")
        if prognosis:
            scored += f", {_count(len(prognosis), 'prognosis experience')}"
        self._say(f"  evaluated {scored} ({time.perf_counter() - self._started:.1f} s)")


def duration(seconds: float) -> str:
    """``42 s``, ``7 min``, ``3.5 h`` or ``2.1 days``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
