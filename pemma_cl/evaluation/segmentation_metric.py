"""Avalanche plugin metric: Dice and HD95 of every test experience under every input setting, as tidy rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from pemma_cl.core.task_kinds import SEGMENTATION
from pemma_cl.evaluation.dice import DiceAccumulator
from pemma_cl.evaluation.hd95 import HausdorffAccumulator

STRUCTURES = ("GTVp", "GTVn", "aggregated")


def _case_means(scores: dict) -> dict[str, float]:
    """Per-case mean Dice per structure; for ``aggregated`` the mean over structures that have one."""
    means = {name: scores[f"{name}_case"] for name in ("GTVp", "GTVn")}
    finite = [v for v in means.values() if not math.isnan(v)]
    means["aggregated"] = sum(finite) / len(finite) if finite else math.nan
    return means


class SegmentationMetric(PluginMetric[list]):
    """Collects Dice and HD95 per (trained-through, test experience, input setting, structure).

    HD95 is computed at the final evaluation only (after the stream's last experience), the one row the summary
    reads (``final_hd95``); earlier rows hold NaN. MONAI's surface distances were a quarter of every evaluation's time.

    Works with :class:`pemma_cl.training.template.SegmentationTemplate`, which sets
    ``strategy.mb_input_setting`` before each evaluation forward pass; prognosis experiences give no rows. Rows use the columns of
    :data:`pemma_cl.report.summary.METRIC_COLUMNS` (without ``strategy``, which the runner adds).

    Args:
        experience_names: names of the stream's experiences, in order.
        experience_centres: centres of each experience (joined with ``+``), in order.
        experience_spacings: voxel spacing (mm, ``[z, y, x]``) of each experience's evaluated cases, for HD95;
            None: HD95 in voxels.
    """

    def __init__(self, experience_names: Sequence[str], experience_centres: Sequence[str],
                 experience_spacings: Sequence[tuple[float, float, float]] | None = None) -> None:
        super().__init__()
        self.names = list(experience_names)
        self.centres = list(experience_centres)
        self.spacings = list(experience_spacings) if experience_spacings is not None else [None] * len(self.names)
        self.rows: list[dict] = []
        self._trained_through = -1
        self._accumulators: dict[str, tuple[DiceAccumulator, HausdorffAccumulator | None]] = {}

    def reset(self) -> None:
        self._accumulators = {}

    def result(self) -> list[dict]:
        return self.rows

    def after_training_exp(self, strategy) -> None:
        self._trained_through = strategy.experience.current_experience

    def before_eval_exp(self, strategy) -> None:
        if strategy.task_kind != SEGMENTATION:
            self._accumulators = {}
            return
        spacing = self.spacings[strategy.experience.current_experience]
        final = self._trained_through == len(self.names) - 1
        self._accumulators = {setting: (DiceAccumulator(), HausdorffAccumulator(spacing) if final else None)
                              for setting in strategy.eval_settings}

    def after_eval_forward(self, strategy) -> None:
        # max(...).indices is argmax (first index among ties, as documented) and about 8x faster on the CPU for
        # a reduction over the channel dimension (torch 2.14).
        if not self._accumulators:  # a prognosis experience: no Dice
            return
        prediction = strategy.mb_output.max(dim=1).indices
        for accumulator in self._accumulators[strategy.mb_input_setting]:
            if accumulator is not None:
                accumulator.update(prediction, strategy.mb_y)

    def after_eval_exp(self, strategy) -> list[MetricValue]:
        exp = strategy.experience.current_experience
        trained = self._trained_through
        values = []
        for setting, (dice, hausdorff) in self._accumulators.items():
            scores = dice.result()
            distances = hausdorff.result() if hausdorff is not None else dict.fromkeys(STRUCTURES, math.nan)
            case_means = _case_means(scores)
            for structure in STRUCTURES:
                self.rows.append({
                    "trained_through": trained,
                    "trained_through_name": self.names[trained] if trained >= 0 else "base",
                    "eval_experience": exp,
                    "eval_experience_name": self.names[exp],
                    "centre": self.centres[exp],
                    "input": setting,
                    "structure": structure,
                    "dice": scores[structure],
                    "dice_case_mean": case_means[structure],
                    "hd95": distances[structure],
                    "n_cases": scores["n_cases"],
                })
                logged = [("Dice", scores[structure])]
                if hausdorff is not None:
                    logged.append(("HD95", distances[structure]))
                for metric, value in logged:
                    name = f"{metric}/eval_phase/test_stream/Exp{exp:03d}/{setting}/{structure}"
                    values.append(MetricValue(self, name, value, strategy.clock.train_iterations))
        return values

    def __str__(self) -> str:
        return "Segmentation"
