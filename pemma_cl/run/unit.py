"""One (seed, strategy) unit of a run: the seed's data, stream and bases (:func:`prepare_run`), then one strategy
through the stream, evaluated before and after each experience (:func:`run_strategy`).

Every executor runs units through this module: the local one in the driver, worker processes and Ray tasks through
:mod:`pemma_cl.run.tasks`.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import sys
import warnings
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.evaluation.metrics import loss_metrics
from avalanche.logging import BaseLogger
from avalanche.training.plugins import EvaluationPlugin

from pemma_cl.core.errors import UserError
from pemma_cl.core.precision import BF16
from pemma_cl.core.protocol import evaluation_protocol
from pemma_cl.data.records import CaseRecord, LoadedData
from pemma_cl.data.sources import load_cases
from pemma_cl.data.splits import split_cases
from pemma_cl.evaluation.cost import CostPlugin
from pemma_cl.evaluation.prognosis_metric import PrognosisMetric
from pemma_cl.evaluation.prognosis_references import base_mask_predictor, prognosis_references
from pemma_cl.evaluation.scoring import ScoringPlan, scored_experiences
from pemma_cl.evaluation.segmentation_metric import SegmentationMetric
from pemma_cl.models.presets import Preset, get_preset
from pemma_cl.run.config import RunConfig
from pemma_cl.run.folders import run_prefix
from pemma_cl.run.loggers import unit_loggers
from pemma_cl.run.work import UnitResult, run_label
from pemma_cl.strategy_api.options import instantiate
from pemma_cl.strategy_api.registry import StrategyEntry
from pemma_cl.streams.build import StreamData, build_stream
from pemma_cl.training.bases import SharedBases
from pemma_cl.training.context import BuildContext
from pemma_cl.training.progress import ProgressPlugin


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is a user error."""
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available on this machine; use --device cpu or auto")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_precision(precision: str, device: torch.device) -> None:
    """bf16 autocast pays off only on bfloat16 units: refuse it on a GPU without them, and say so on a CPU."""
    if precision != BF16:
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                        "use --precision fp32")
    if device.type == "cpu":
        say("--precision bf16 on a CPU changes the numbers without making training faster (docs/results/speed.md); "
             "it is meant for GPUs")


def strategy_context(entry: StrategyEntry, stream: StreamData, ctx_settings: dict, make_evaluator,
                     run_plugins: list, options: dict[str, Any] | None = None) -> BuildContext:
    """What a strategy is built from on one seed's stream (:attr:`RunInputs.ctx_settings`), reporting to
    ``make_evaluator()`` with ``run_plugins`` beside its own."""
    return BuildContext(
        name=entry.name, make_evaluator=make_evaluator, run_plugins=run_plugins,
        experience_modalities=stream.modalities, options=instantiate(entry.name, entry.options, options or {}),
        stream_training_data=[experience.dataset for experience in stream.benchmark.train_stream],
        experience_kinds=stream.kinds, **ctx_settings,
    )


def run_strategy(entry: StrategyEntry, stream: StreamData, ctx_settings: dict,
                 loggers: list[BaseLogger] | None = None, options: dict[str, Any] | None = None,
                 scored_cells: Collection[Sequence[str]] = ()) -> UnitResult:
    """Evaluate, then train through every experience evaluating after each, at the states and on the cases the
    metrics need (:func:`scored_after`), computing only the cells :func:`scoring_plan` computes.

    Args:
        entry: the registered strategy.
        stream: the stream of one seed.
        ctx_settings: the settings of the strategy's :class:`BuildContext` (:attr:`RunInputs.ctx_settings`).
        loggers: Avalanche loggers to report to (the metric rows are returned either way).
        options: the strategy's resolved options (option -> value; missing ones take their defaults).
        scored_cells: the ``(group, input)`` pairs of cells the run reads (:attr:`RunConfig.scored_cells`); empty:
            every cell.
    """
    seed_everything(ctx_settings["seed"])
    metric = SegmentationMetric(stream.names, stream.centres, stream.eval_cases, stream.spacings, stream.tracked_cases,
                                structures=ctx_settings["description"].structure_names,
                                plan=scoring_plan(entry, ctx_settings["task_labels"], bool(loggers), scored_cells))
    prognosis = PrognosisMetric(stream.names, stream.modalities, ctx_settings["seed"])
    cost = CostPlugin()
    metrics = [metric, prognosis, *loss_metrics(epoch=True)] if loggers else [metric, prognosis]
    ctx = strategy_context(entry, stream, ctx_settings, lambda: EvaluationPlugin(*metrics, loggers=list(loggers or [])),
                           [ProgressPlugin(entry.name, stream.names, stream.train_sizes), cost], options)
    try:
        strategy = entry.build(ctx)
    except UserError:
        raise
    except OSError as exc:  # a full disk or a read-only folder is not the strategy's bug
        raise UserError(f"'{exc.filename}': {exc.strerror} (while building strategy '{entry.name}')") from exc
    except Exception as exc:  # a plugin's bug must not look like a crash of the suite
        raise UserError(f"strategy '{entry.name}' ({entry.source}) failed to build: {type(exc).__name__}: {exc}") from exc
    strategy.settings_to_run = metric.settings_to_run  # forward passes for the computed cells only
    strategy.eval(scored_after(stream.benchmark, -1))
    for i, experience in enumerate(stream.benchmark.train_stream):
        strategy.train(experience)
        strategy.eval(scored_after(stream.benchmark, i))
    tag = {"seed": ctx_settings["seed"], "strategy": entry.name}
    return UnitResult([{**tag, **row} for row in metric.rows], cost.as_dict(strategy.model, strategy.plugins),
                      evaluation_protocol(strategy.plugins), [{**tag, **row} for row in prognosis.rows],
                      prognosis.predictions, [[*tag.values(), *row] for row in metric.case_rows])


def scoring_plan(entry: StrategyEntry, task_labels: Sequence[int], logged: bool,
                 scored_cells: Collection[Sequence[str]] = ()) -> ScoringPlan | None:
    """The cells a unit computes (:mod:`pemma_cl.evaluation.scoring`): those of ``scored_cells`` (empty: every cell),
    earlier tasks' cells copied where ``entry`` declares them frozen. None, every cell computed, when the unit reports
    to Avalanche loggers (``logged``): they record every evaluation's loss."""
    if logged or (not scored_cells and not entry.frozen_earlier_tasks):
        return None
    return ScoringPlan.for_run(task_labels, entry.frozen_earlier_tasks, scored_cells)


def scored_after(benchmark, i: int):
    """The test experiences scored after training experience ``i`` (``-1``: the base, before any training):
    :func:`~pemma_cl.evaluation.scoring.scored_experiences`.

    The final state scores every test case of every experience (final Dice and HD95 read it); every other state
    scores the tracked cases (``benchmark.tracked_stream``), of experiences ``0 .. i + 1`` (forgetting and BWT read
    the lower triangle of the results matrix, FWT the cell just above its diagonal) and, at the base, of every
    experience (FWT's own start). The other cells of the matrix stay NaN.
    """
    n = len(benchmark.test_stream)
    stream = benchmark.test_stream if i == n - 1 else benchmark.tracked_stream
    count = len(scored_experiences(i, n))
    return stream if count == n else stream[:count]


@dataclass
class RunInputs:
    """What every strategy of one seed shares: its data, stream and the settings of each strategy's BuildContext."""

    data: LoadedData
    train: list[CaseRecord]
    evaluated: list[CaseRecord]
    stream: StreamData
    ctx_settings: dict[str, Any]

    def facts(self, eval_on: str) -> dict[str, Any]:
        """What the manifest records about the seed's data, and the seed's prognosis references (computed here, once
        per seed, by whichever executor runs the seed)."""
        facts = {"data": self.data.key, "description": self.data.description.to_dict(),
                 "skipped_cases": self.data.skipped, "n_train_cases": len(self.train),
                 "evaluated_on": eval_on, f"n_{eval_on}_cases": len(self.evaluated),
                 f"n_{eval_on}_cases_per_centre": dict(Counter(case.centre for case in self.evaluated))}
        if self.stream.prognosis_cases is not None:
            facts["left_out_of_prognosis"] = self.stream.left_out
            facts["prognosis_references"] = self.prognosis_references()
        return facts

    def prognosis_references(self) -> dict[str, dict]:
        """The Cox references and ceilings of :mod:`pemma_cl.evaluation.prognosis_references` for this seed."""
        train, scored = self.stream.prognosis_cases
        settings = self.ctx_settings
        say(f"seed {settings['seed']}: prognosis references (CT-base masks of {len(train) + len(scored)} cases, "
             "Cox models)")
        with torch.random.fork_rng(devices=[]):  # building the base's network must not move the global generator
            masks = base_mask_predictor(settings["bases"].get("ct"), settings["preset"].img_size, settings["device"])
        return prognosis_references(train, scored, masks, settings["seed"], settings["description"].clinical)


def prepare_run(config: RunConfig, seed: int, preset: Preset | None = None) -> RunInputs:
    """Load and split the data of one seed, build its stream and shared bases (bases train on first use).

    Args:
        config: the run.
        seed: the seed (draws the synthetic cohort, the split, the bases and every strategy's initialisation).
        preset: replaces the preset ``config`` names (the ablation benchmark varies budgets this way).
    """
    # The metric rows reach the run folder through SegmentationMetric.rows; Avalanche loggers are optional.
    warnings.filterwarnings("ignore", message="No loggers specified")
    # Avalanche 0.6.0's own ReplayPlugin calls its deprecated storage_policy.update(); nothing a user can act on.
    warnings.filterwarnings("ignore", message="Call to deprecated function update", category=DeprecationWarning)
    preset = preset or get_preset(config.preset, config.backbone)
    device = resolve_device(config.device)
    data = load_cases(config.data, preset.img_size, seed, config.on_bad_case, config.cache,
                      config.stream.synthetic_scale, config.stream.synthetic_shift, config.stream.test_cases_per_centre,
                      config.stream.synthetic_tracers, config.nnunet)
    split = split_cases(data.cases, seed, config.stream.selection_columns,
                        with_test=data.test is None or data.drops_test_share)
    if data.test is not None:  # the source's own test cases (the built-in cohort's drawn apart, or imagesTs)
        split = dataclasses.replace(split, test=data.test)
    train, evaluated = split.for_evaluation_on(config.eval_on)
    stream = build_stream(config.stream, train, evaluated, config.eval_on, patch=preset.img_size,
                          clinical_fields=data.description.clinical)
    bases = SharedBases(preset, stream.pretrain_cases, seed, device,
                        cache_dir=Path(config.results_dir) / ".cache", data_key=data.key,
                        num_classes=data.description.num_classes, modalities=stream.pretrain_modalities,
                        precision=config.precision)
    ctx_settings = {
        "preset": preset, "device": device, "seed": seed, "epochs": config.epochs or preset.epochs,
        "task_labels": [exp.task for exp in config.stream.experiences], "bases": bases, "precision": config.precision,
        "description": data.description,
    }
    return RunInputs(data, train, evaluated, stream, ctx_settings)


def run_unit(config: RunConfig, inputs: RunInputs, entry: StrategyEntry, logs: Path) -> UnitResult:
    """One (seed, strategy) unit: the strategy through the seed's stream, reporting to the run's loggers in ``logs``
    (emptied first: an interrupted attempt may have left half a log), with the threads it ran with."""
    seed = inputs.ctx_settings["seed"]
    label = f"{run_prefix(run_label(config), config.seeds)}/seed{seed}/{entry.name}"
    if config.loggers:
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
    with unit_loggers(config.loggers, logs if config.loggers else None, label) as loggers:
        result = run_strategy(entry, inputs.stream, inputs.ctx_settings, loggers,
                              config.strategy_options.get(entry.name), config.scored_cells)
    return dataclasses.replace(result, threads=torch.get_num_threads())


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
