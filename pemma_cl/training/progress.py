"""Progress lines on stderr while a strategy trains and evaluates (stdout is kept for results)."""

from __future__ import annotations

import sys
import time

from avalanche.core import SupervisedPlugin


class ProgressPlugin(SupervisedPlugin):
    """Prints ``[strategy] experience i/N (name) epoch e/E loss L`` lines and evaluation timings.

    Args:
        label: what is being trained (a strategy name, or ``base ct`` for pre-training).
        experience_names: names of the stream's experiences (for the i/N display).
    """

    def __init__(self, label: str, experience_names: list[str]) -> None:
        super().__init__()
        self.label = label
        self.names = experience_names
        self._loss_sum = 0.0
        self._batches = 0
        self._started = 0.0

    def _say(self, text: str) -> None:
        print(f"[{self.label}] {text}", file=sys.stderr, flush=True)

    def before_training_exp(self, strategy, **kwargs) -> None:
        i = strategy.experience.current_experience
        name = self.names[i] if i < len(self.names) else str(i)
        self._say(f"experience {i + 1}/{len(self.names)} ({name}): training on {len(strategy.experience.dataset)} cases")

    def before_training_epoch(self, strategy, **kwargs) -> None:
        self._loss_sum, self._batches, self._started = 0.0, 0, time.perf_counter()

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self._loss_sum += strategy.loss.detach().item()
        self._batches += 1

    def after_training_epoch(self, strategy, **kwargs) -> None:
        loss = self._loss_sum / max(self._batches, 1)
        self._say(f"  epoch {strategy.clock.train_exp_epochs + 1}/{strategy.train_epochs} "
                  f"loss {loss:.4f} ({time.perf_counter() - self._started:.1f} s)")

    def before_eval(self, strategy, **kwargs) -> None:
        self._started = time.perf_counter()

    def after_eval(self, strategy, **kwargs) -> None:
        self._say(f"  evaluated {len(self.names)} experiences x {len(strategy.eval_settings)} inputs "
                  f"({time.perf_counter() - self._started:.1f} s)")
