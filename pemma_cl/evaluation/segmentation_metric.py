"""Avalanche plugin metric: Dice and HD95 of every test experience under every input setting, as tidy rows, and
each evaluated case's voxel counts, Dice and HD95 as per-case rows."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricValue

from pemma_cl.core.task_kinds import SEGMENTATION
from pemma_cl.evaluation.dice import DiceAccumulator
from pemma_cl.evaluation.hd95 import HausdorffAccumulator
from pemma_cl.evaluation.lesions import MEASURES, LesionMeasures
from pemma_cl.evaluation.scoring import COMPUTE, INPUTS, SKIP, ScoringPlan

#: The row of every evaluation that holds the mean over the data's structures.
AGGREGATED = "aggregated"


def _case_means(scores: dict, names: Sequence[str]) -> dict[str, float]:
    """Per-case mean Dice per structure; for ``aggregated`` the mean over structures that have one."""
    means = {name: scores[f"{name}_case"] for name in names}
    finite = [v for v in means.values() if not math.isnan(v)]
    means[AGGREGATED] = sum(finite) / len(finite) if finite else math.nan
    return means


class SegmentationMetric(PluginMetric[list]):
    """Collects Dice and HD95 per (trained-through, test experience, input setting, structure).

    The structures are the data's (label values 1..K, in order), each with its own rows, then ``aggregated``: the
    mean over them, leaving out a structure no reference mask of the experience contains (with one structure, that
    structure's values).

    HD95 is computed at the final evaluation only (after the stream's last experience), the one row the summary
    reads (``final_hd95``); earlier rows hold NaN. MONAI's surface distances were a quarter of every evaluation's time.
    So are the per-case rows' NSD, lesion counts and FP/FN volumes
    (:class:`~pemma_cl.evaluation.lesions.LesionMeasures`; NaN too without a spacing, as they are in mm and mL).

    Works with :class:`pemma_cl.training.template.SegmentationTemplate`, which sets
    ``strategy.mb_input_setting`` before each evaluation forward pass; prognosis experiences give no rows. Rows use the columns of
    :data:`pemma_cl.report.summary.METRIC_COLUMNS` (without ``seed`` and ``strategy``, which the runner adds);
    :attr:`case_rows` hold one list per (evaluated case, structure) in the order of
    :data:`pemma_cl.evaluation.per_case.CASE_COLUMNS`, less the same two. Cases are named by their position in the
    experience's evaluation mini-batches, which Avalanche's evaluation loader serves in dataset order.

    With a ``plan`` (:class:`~pemma_cl.evaluation.scoring.ScoringPlan`), a cell (state, experience, input setting) the
    plan does not score gets no rows, and one it copies gets the rows of the earlier state it names, as they were
    (with this state's ``trained_through`` and its name), in the place its own rows would have had. The strategy's
    ``settings_to_run`` (:meth:`settings_to_run`) then runs the forward passes of the computed cells only.

    Args:
        experience_names: names of the stream's experiences, in order.
        experience_centres: centres of each experience (joined with ``+``), in order.
        experience_cases: per experience, ``(case_id, centre)`` of each evaluated case in dataset order
            (:attr:`pemma_cl.streams.build.StreamData.eval_cases`).
        experience_spacings: voxel spacing (mm, ``[z, y, x]``) of each experience's evaluated cases, for HD95;
            None: HD95 in voxels.
        tracked_cases: the same as ``experience_cases`` for the experiences of the benchmark's ``tracked_stream``
            (:attr:`pemma_cl.streams.build.StreamData.tracked_cases`); an experience is matched to its cases by the
            name of the stream it comes from. None: no tracked stream.
        structures: the data's structure names, label values 1..K in order
            (:attr:`~pemma_cl.data.description.DatasetDescription.structure_names`).
        plan: which cells are computed, copied or not scored; None: every cell is computed.
    """

    def __init__(self, experience_names: Sequence[str], experience_centres: Sequence[str],
                 experience_cases: Sequence[Sequence[tuple[str, str]]],
                 experience_spacings: Sequence[tuple[float, float, float]] | None = None,
                 tracked_cases: Sequence[Sequence[tuple[str, str]]] | None = None, *,
                 structures: Sequence[str], plan: ScoringPlan | None = None) -> None:
        super().__init__()
        self.structures = {value: name for value, name in enumerate(structures, start=1)}
        self.names = list(experience_names)
        self.centres = list(experience_centres)
        self.cases = {"test": [list(cases) for cases in experience_cases]}
        if tracked_cases is not None:
            self.cases["tracked"] = [list(cases) for cases in tracked_cases]
        self.spacings = list(experience_spacings) if experience_spacings is not None else [None] * len(self.names)
        self.rows: list[dict] = []
        self.case_rows: list[list] = []
        self.plan = plan
        self._trained_through = -1
        self._scored_cases: list[tuple[str, str]] = []
        self._accumulators: dict[str, tuple[DiceAccumulator, HausdorffAccumulator | None, LesionMeasures | None]] = {}
        #: The action of each input setting of the experience being evaluated (:meth:`ScoringPlan.action`).
        self._actions: dict[str, str | int] = {}
        #: Where each computed cell's rows are: (state, experience, setting) -> (rows, case rows) index ranges.
        self._written: dict[tuple[int, int, str], tuple[range, range]] = {}

    def reset(self) -> None:
        self._accumulators, self._actions = {}, {}

    def result(self) -> list[dict]:
        return self.rows

    def after_training_exp(self, strategy) -> None:
        self._trained_through = strategy.experience.current_experience

    def settings_to_run(self, experience: int) -> tuple[str, ...]:
        """The input settings whose cells of ``experience`` at the current state are computed (a template's
        ``settings_to_run``); every setting without a plan."""
        if self.plan is None:
            return INPUTS
        return self.plan.computed(self._trained_through, experience, INPUTS)

    def before_eval_exp(self, strategy) -> None:
        if strategy.task_kind != SEGMENTATION:
            self._accumulators, self._actions = {}, {}
            return
        exp = strategy.experience.current_experience
        stream = strategy.experience.origin_stream.name
        if stream not in self.cases:
            raise RuntimeError(f"experience {exp} comes from stream {stream!r}; the metric knows the cases of "
                               f"{sorted(self.cases)} only")
        self._scored_cases = self.cases[stream][exp]
        spacing = self.spacings[exp]
        final = self._trained_through == len(self.names) - 1
        self._actions = {setting: COMPUTE if self.plan is None else self.plan.action(self._trained_through, exp, setting)
                         for setting in strategy.eval_settings}
        self._accumulators = {setting: (DiceAccumulator(self.structures),
                                        HausdorffAccumulator(self.structures, spacing) if final else None,
                                        LesionMeasures(self.structures, spacing)
                                        if final and spacing is not None else None)
                              for setting, action in self._actions.items() if action == COMPUTE}

    def after_eval_forward(self, strategy) -> None:
        # max(...).indices is argmax (first index among ties, as documented) and about 8x faster on the CPU for
        # a reduction over the channel dimension (torch 2.14).
        if strategy.mb_input_setting not in self._accumulators:  # a prognosis experience, a cell copied or not scored
            return
        prediction = strategy.mb_output.max(dim=1).indices
        for accumulator in self._accumulators[strategy.mb_input_setting]:
            if accumulator is not None:
                accumulator.update(prediction, strategy.mb_y)

    def after_eval_exp(self, strategy) -> list[MetricValue]:
        exp = strategy.experience.current_experience
        trained = self._trained_through
        final = trained == len(self.names) - 1
        values = []
        for setting, action in self._actions.items():
            if action == SKIP:
                continue
            start = (len(self.rows), len(self.case_rows))
            if action == COMPUTE:
                self._add_rows(exp, setting, *self._accumulators[setting])
            else:
                self._copy_rows(action, exp, setting)
            written = (range(start[0], len(self.rows)), range(start[1], len(self.case_rows)))
            self._written[(trained, exp, setting)] = written
            for row in (self.rows[i] for i in written[0]):
                logged = [("Dice", row["dice"])] + ([("HD95", row["hd95"])] if final else [])
                for metric, value in logged:
                    name = f"{metric}/eval_phase/test_stream/Exp{exp:03d}/{setting}/{row['structure']}"
                    values.append(MetricValue(self, name, value, strategy.clock.train_iterations))
        return values

    def _state_name(self, trained: int) -> str:
        return self.names[trained] if trained >= 0 else "base"

    def _add_rows(self, exp: int, setting: str, dice: DiceAccumulator, hausdorff: HausdorffAccumulator | None,
                  lesion: LesionMeasures | None) -> None:
        """The per-case rows, then the metric rows, of the evaluation of experience ``exp`` under ``setting``."""
        self._add_case_rows(exp, setting, dice, hausdorff, lesion)
        structures = (*self.structures.values(), AGGREGATED)
        scores = dice.result()
        distances = hausdorff.result() if hausdorff is not None else dict.fromkeys(structures, math.nan)
        case_means = _case_means(scores, dice.names)
        trained = self._trained_through
        for structure in structures:
            self.rows.append({
                "trained_through": trained,
                "trained_through_name": self._state_name(trained),
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

    def _copy_rows(self, source: int, exp: int, setting: str) -> None:
        """The rows of experience ``exp`` under ``setting`` at state ``source``, as this state's."""
        if (source, exp, setting) not in self._written:
            raise RuntimeError(f"experience {exp} under {setting!r}: the plan copies its rows from state {source}, "
                               "which did not compute them")
        rows, case_rows = self._written[(source, exp, setting)]
        trained, name = self._trained_through, self._state_name(self._trained_through)
        self.case_rows.extend([trained, name, *self.case_rows[i][2:]] for i in case_rows)
        self.rows.extend({**self.rows[i], "trained_through": trained, "trained_through_name": name} for i in rows)

    def _add_case_rows(self, exp: int, setting: str, dice: DiceAccumulator,
                       hausdorff: HausdorffAccumulator | None, lesion: LesionMeasures | None) -> None:
        """One row per (case, structure) of the evaluation of experience ``exp`` under ``setting``."""
        counts, case_dice = dice.per_case_counts(), dice.per_case()
        distances = hausdorff.per_case() if hausdorff is not None else np.full(case_dice.shape, math.nan)
        measures = lesion.per_case() if lesion is not None else np.full((*case_dice.shape, len(MEASURES)), math.nan)
        cases = self._scored_cases
        if len(cases) != len(counts):
            raise RuntimeError(f"experience {exp} ({self.names[exp]}): {len(counts)} cases evaluated under "
                               f"{setting!r}, {len(cases)} expected; per-case rows need every case once, in order")
        trained = self._trained_through
        head = [trained, self._state_name(trained), exp, self.names[exp]]
        for (case_id, centre), case_counts, scores, hd95, case_measures in zip(cases, counts, case_dice, distances,
                                                                               measures):
            for name, (tp, fp, fn), score, distance, values in zip(dice.names, case_counts.tolist(), scores, hd95,
                                                                   case_measures.tolist()):
                self.case_rows.append([*head, centre, case_id, setting, name, tp, fp, fn, tp + fn, tp + fp,
                                       float(score), float(distance), *values])

    def __str__(self) -> str:
        return "Segmentation"
