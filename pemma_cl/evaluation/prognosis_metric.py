"""Avalanche plugin metric: the C-index of every prognosis test experience after each training step, as tidy rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from pemma_cl.core.task_kinds import PROGNOSIS
from pemma_cl.stats.cindex import cindex_with_interval

#: Columns of the prognosis rows (the runner adds ``seed`` and ``strategy`` in front).
PROGNOSIS_COLUMNS: tuple[str, ...] = ("trained_through", "trained_through_name", "eval_experience",
                                      "eval_experience_name", "input", "cindex", "low", "high", "n_cases", "n_events")


class PrognosisMetric(PluginMetric[list]):
    """Collects risk scores of prognosis test experiences; one row per (trained-through, test experience).

    The interval (95% bootstrap over test cases, :mod:`pemma_cl.stats.cindex`) is computed for the rows of a
    model that has trained on that experience; earlier rows (an untrained or other-task head) get the C-index only.
    The last predictions of each prognosis experience are kept (``predictions``) for Kaplan-Meier plots.

    Args:
        experience_names: names of the stream's experiences, in order.
        experience_modalities: modalities of each experience (what its prognosis is scored from), in order.
        seed: seed of the bootstrap draws (the same for every strategy: paired intervals).
    """

    def __init__(self, experience_names: Sequence[str], experience_modalities: Sequence[Sequence[str]],
                 seed: int) -> None:
        super().__init__()
        self.names = list(experience_names)
        self.modalities = ["+".join(m) for m in experience_modalities]
        self.seed = seed
        self.rows: list[dict] = []
        self.predictions: dict[str, dict[str, list]] = {}
        self._trained_through = -1
        self._risk: list[torch.Tensor] = []
        self._survival: list[torch.Tensor] = []

    def reset(self) -> None:
        self._risk, self._survival = [], []

    def result(self) -> list[dict]:
        return self.rows

    def _scored(self, strategy) -> bool:
        return strategy.task_kind == PROGNOSIS

    def after_training_exp(self, strategy) -> None:
        self._trained_through = strategy.experience.current_experience

    def before_eval_exp(self, strategy) -> None:
        self.reset()

    def after_eval_forward(self, strategy) -> None:
        if self._scored(strategy):
            self._risk.append(strategy.mb_output.detach().float().cpu())
            self._survival.append(strategy.mb_survival.detach().float().cpu())

    def after_eval_exp(self, strategy) -> list[MetricValue]:
        if not self._scored(strategy):
            return []
        exp, trained = strategy.experience.current_experience, self._trained_through
        risk, survival = torch.cat(self._risk).numpy(), torch.cat(self._survival).numpy()
        time, event = survival[:, 0], survival[:, 1].astype(int)
        scores = cindex_with_interval(time, event, risk, self.seed, interval=trained >= exp)
        self.rows.append({"trained_through": trained,
                          "trained_through_name": self.names[trained] if trained >= 0 else "base",
                          "eval_experience": exp, "eval_experience_name": self.names[exp],
                          "input": self.modalities[exp], **scores})
        self.predictions[self.names[exp]] = {"risk": risk.tolist(), "time": time.tolist(), "event": event.tolist()}
        cindex = math.nan if scores["cindex"] is None else scores["cindex"]
        return [MetricValue(self, f"Cindex/eval_phase/test_stream/Exp{exp:03d}", cindex,
                            strategy.clock.train_iterations)]

    def __str__(self) -> str:
        return "Prognosis"
