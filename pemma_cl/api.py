"""The suite from Python, in Avalanche's style: one benchmark per stream, the shared CT base, and scores for any
Avalanche strategy on these streams (the rows ``pemma-bench run`` writes), summarised as the run summarises them.

Example (``examples/avalanche_naive_ewc.py`` runs it with Avalanche's own Naive and EWC)::

    import pemma_cl
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    bm = pemma_cl.centers(seed=0, preset="tiny")
    scorer = bm.scorer("naive")
    strategy = Naive(model=bm.base("fusion"), optimizer=..., criterion=pemma_cl.segmentation_loss(),
                     evaluator=EvaluationPlugin(scorer), device=bm.device)
    strategy.eval(bm.scored_after(-1))
    for i, experience in enumerate(bm.train_stream):
        strategy.train(experience)
        strategy.eval(bm.scored_after(i))
    print(pemma_cl.summarize(scorer.rows, cases=scorer.cases))

Training and evaluation print progress lines on stderr, as ``pemma-bench run`` does (``quiet=True`` keeps them
off), and the scenario sizes torch's threads to the machine (:mod:`pemma_cl.core.threads`; ``PEMMA_THREADS=N`` sets
them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from avalanche.evaluation import PluginMetric
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from torch import nn

from pemma_cl.core.task_kinds import SEGMENTATION
from pemma_cl.core.threads import fit_threads
from pemma_cl.data.records import MODALITIES
from pemma_cl.evaluation.per_case import case_frame
from pemma_cl.evaluation.segmentation_metric import SegmentationMetric
from pemma_cl.models.presets import Preset
from pemma_cl.report.summary import METRIC_COLUMNS
from pemma_cl.report.summary import summarize as summarize_table
from pemma_cl.run.config import RunConfig
from pemma_cl.run.unit import RunInputs, prepare_run, scored_after, seed_everything, strategy_context
from pemma_cl.strategy_api.registry import load_registry
from pemma_cl.streams.spec import StreamSpec, load_stream
from pemma_cl.training.progress import ProgressPlugin, silenced
from pemma_cl.training.template import INPUT_SETTINGS, SegmentationTemplate

__all__ = ["Scenario", "StreamScorer", "centers", "centers_ct", "modalities", "paper", "paper_ct", "scenario",
           "summarize"]


class _AsSegmentationStrategy:
    """Any Avalanche strategy seen as a suite template by :class:`SegmentationMetric`: a segmentation task evaluated
    under ``settings``; ``overrides`` (the output of one input setting) replace the strategy's attributes."""

    def __init__(self, strategy: SupervisedTemplate, settings: Sequence[str], **overrides: Any) -> None:
        self._strategy = strategy
        self.task_kind = SEGMENTATION
        self.eval_settings = tuple(settings)
        self.__dict__.update(overrides)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._strategy, name)


class StreamScorer(PluginMetric[list]):
    """Dice (and final HD95) of every test experience under every input setting, for any Avalanche strategy.

    The suite's own strategies (:class:`~pemma_cl.training.template.SegmentationTemplate`) run each input setting
    themselves and are scored as ``pemma-bench run`` scores them. Any other ``SupervisedTemplate`` is scored here:
    after each evaluation mini-batch its model is called once per input setting (``ct``, ``pet``, ``ctpet``) on
    the mini-batch's volumes with the missing modality's channel zeroed, as the suite's own networks see a missing
    modality. Its model must take the ``[B, 2, D, H, W]`` (CT, PET) volume alone and return logits.

    Unless the scenario is quiet, it also prints the strategy's progress on stderr, the lines ``pemma-bench run``
    prints (:class:`~pemma_cl.training.progress.ProgressPlugin`).

    Args:
        scenario: the benchmark the strategy is evaluated on.
        strategy: the name its rows carry (and its progress lines).
        settings: the input settings to score (default: all three).
    """

    def __init__(self, scenario: Scenario, strategy: str, settings: Sequence[str] = tuple(INPUT_SETTINGS)) -> None:
        super().__init__()
        stream = scenario.inputs.stream
        self._metric = SegmentationMetric(stream.names, stream.centres, stream.eval_cases, stream.spacings,
                                          stream.tracked_cases,
                                          structures=scenario.inputs.ctx_settings["description"].structure_names)
        self._tag = {"seed": scenario.seed, "strategy": strategy}
        self._settings = tuple(settings)
        self._progress = None if scenario.quiet else ProgressPlugin(strategy, stream.names, stream.train_sizes)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The metric rows so far, with the columns of :data:`pemma_cl.report.summary.METRIC_COLUMNS`."""
        return [{**self._tag, **row} for row in self._metric.rows]

    @property
    def cases(self) -> pd.DataFrame:
        """The per-case rows so far (the columns of ``cases.csv.gz``, :mod:`pemma_cl.evaluation.per_case`)."""
        return case_frame([[*self._tag.values(), *row] for row in self._metric.case_rows])

    def reset(self) -> None:
        self._metric.reset()

    def result(self) -> list[dict[str, Any]]:
        return self.rows

    def _tell(self, event: str, strategy: SupervisedTemplate) -> None:
        """Pass ``event`` on to the progress lines, if any."""
        if self._progress is not None:
            getattr(self._progress, event)(self._seen_as(strategy))

    def before_training_exp(self, strategy: SupervisedTemplate) -> None:
        self._tell("before_training_exp", strategy)

    def before_training_epoch(self, strategy: SupervisedTemplate) -> None:
        self._tell("before_training_epoch", strategy)

    def before_training_iteration(self, strategy: SupervisedTemplate) -> None:
        self._tell("before_training_iteration", strategy)

    def after_training_iteration(self, strategy: SupervisedTemplate) -> None:
        self._tell("after_training_iteration", strategy)

    def after_training_epoch(self, strategy: SupervisedTemplate) -> None:
        self._tell("after_training_epoch", strategy)

    def after_training_exp(self, strategy: SupervisedTemplate) -> None:
        self._metric.after_training_exp(strategy)

    def before_eval(self, strategy: SupervisedTemplate) -> None:
        self._tell("before_eval", strategy)

    def before_eval_exp(self, strategy: SupervisedTemplate) -> None:
        self._metric.before_eval_exp(self._seen_as(strategy))

    def after_eval_forward(self, strategy: SupervisedTemplate) -> None:
        if isinstance(strategy, SegmentationTemplate):
            self._metric.after_eval_forward(strategy)

    def after_eval_iteration(self, strategy: SupervisedTemplate) -> None:
        if isinstance(strategy, SegmentationTemplate):
            return
        with torch.no_grad():
            for setting in self._settings:
                present = torch.tensor(INPUT_SETTINGS[setting], dtype=strategy.mb_x.dtype, device=strategy.mb_x.device)
                output = strategy.model(strategy.mb_x * present.view(1, len(MODALITIES), 1, 1, 1))
                self._metric.after_eval_forward(self._seen_as(strategy, mb_output=output, mb_input_setting=setting))

    def after_eval_exp(self, strategy: SupervisedTemplate):
        self._tell("after_eval_exp", strategy)
        return self._metric.after_eval_exp(self._seen_as(strategy))

    def after_eval(self, strategy: SupervisedTemplate) -> None:
        self._tell("after_eval", strategy)

    def _seen_as(self, strategy: SupervisedTemplate, **batch: Any):
        """The strategy as the suite's metric reads it: a suite template as it is, any other one as a segmentation
        strategy evaluated under :attr:`_settings` (with ``batch``'s output and input setting)."""
        if isinstance(strategy, SegmentationTemplate):
            return strategy
        return _AsSegmentationStrategy(strategy, self._settings, **batch)

    def __str__(self) -> str:
        return "Segmentation"


@dataclass
class Scenario:
    """One seed of a stream: its Avalanche benchmark, its cases and its shared bases.

    Attributes:
        spec: the stream (its file's contents).
        seed: the seed (draws the synthetic cohort, the split, the bases).
        eval_on: the cases the test stream holds (``test`` or ``val``).
        inputs: what ``pemma-bench run`` prepares for the seed (data, stream, bases, the settings strategies get).
        quiet: no progress lines (its scorers', and those of the bases it trains).
    """

    spec: StreamSpec
    seed: int
    eval_on: str
    inputs: RunInputs
    quiet: bool = False

    def _training_bases(self):
        """The context of work that may train a shared base: its progress lines are silenced when quiet."""
        return silenced() if self.quiet else contextlib.nullcontext()

    @property
    def benchmark(self):
        """The Avalanche benchmark (``train_stream``, ``test_stream``; one experience per stream step)."""
        return self.inputs.stream.benchmark

    @property
    def train_stream(self):
        return self.benchmark.train_stream

    @property
    def test_stream(self):
        return self.benchmark.test_stream

    def scored_after(self, i: int):
        """The test experiences ``pemma-bench run`` scores after training experience ``i`` (``-1``: the base), on the
        cases the metrics need (:func:`pemma_cl.run.unit.scored_after`: the tracked cases of experiences
        ``0 .. i + 1``; every test case of every experience after the last)."""
        return scored_after(self.benchmark, i)

    @property
    def device(self) -> torch.device:
        return self.inputs.ctx_settings["device"]

    @property
    def preset(self) -> Preset:
        """The model and budget preset (``lr``, ``epochs``, ``batch_size`` are the suite strategies' budget)."""
        return self.inputs.ctx_settings["preset"]

    @property
    def cases(self) -> pd.DataFrame:
        """One row per case of the seed: ``case_id``, ``centre``, ``role`` (``train``, or the evaluated split:
        ``test`` or ``val``) and ``experiences`` (the stream steps whose centres include the case's, joined with
        ``+``; ``pre-training`` for a centre only the base trains on)."""
        def steps(centre: str) -> str:
            return "+".join([e.name for e in self.spec.experiences if centre in e.centres] or ["pre-training"])

        rows = [{"case_id": case.case_id, "centre": case.centre, "role": role, "experiences": steps(case.centre)}
                for role, group in (("train", self.inputs.train), (self.eval_on, self.inputs.evaluated))
                for case in group]
        return pd.DataFrame(rows, columns=["case_id", "centre", "role", "experiences"])

    def base(self, kind: str = "ct") -> nn.Module:
        """A fresh copy of a shared base (``ct``: the CT-only base PEMMA builds on; ``fusion``: it with a zeroed PET
        input channel, early fusion's start), trained on first use and cached under the results folder."""
        with self._training_bases():
            return self.inputs.ctx_settings["bases"].get(kind)

    def scorer(self, strategy: str, settings: Sequence[str] = tuple(INPUT_SETTINGS)) -> StreamScorer:
        """A metric for Avalanche's ``EvaluationPlugin`` that scores a strategy on this scenario (see
        :class:`StreamScorer`); its :attr:`StreamScorer.rows` go to :func:`summarize`."""
        return StreamScorer(self, strategy, settings)

    def strategy(self, name: str, scorer: StreamScorer, options: dict[str, Any] | None = None):
        """A registered strategy of the suite (``pemma-lora``, ``ewc``, ...), built for this scenario exactly as
        ``pemma-bench run`` builds it (same seed, settings and bases), reporting to ``scorer``."""
        entry = load_registry().get(name)
        seed_everything(self.seed)
        with self._training_bases():
            return entry.build(strategy_context(entry, self.inputs.stream, self.inputs.ctx_settings,
                                                lambda: EvaluationPlugin(scorer), [], options))


def scenario(stream: str | Path, seed: int = 0, preset: str = "tiny", data: str = "synthetic",
             results_dir: str | Path = "results", device: str = "auto", eval_on: str = "test",
             quiet: bool = False, cache: str | Path | None = None, case_table: str | Path | None = None,
             survival: Sequence[str] | None = None, clinical: Sequence[str] = (),
             spacing: Sequence[float] | None = None) -> Scenario:
    """The benchmark of one seed of a stream, as ``pemma-bench run --stream STREAM`` prepares it.

    It sizes torch's threads (and the OpenMP and BLAS pools) to this machine now, as a run's unit is sized
    (:func:`pemma_cl.core.threads.fit_threads`: the usable CPUs, never more than the free cores; ``PEMMA_THREADS=N``
    sets them).

    Args:
        stream: a built-in stream's name (``centers``, ``paper``, ...) or a stream file's path.
        seed: the seed.
        preset: the model and budget preset (``tiny``, ``paper``, ``micro``).
        data: ``synthetic``, ``hecktor:DIR`` or ``nnunet:DIR`` (prepared by ``pemma-bench prepare`` first).
        results_dir: where trained bases are cached (``RESULTS_DIR/.cache``), shared with ``pemma-bench run``.
        device: ``auto``, ``cpu`` or ``cuda``.
        eval_on: ``test`` or ``val``: the cases the test stream holds.
        quiet: print no progress lines (by default its scorers and the bases it trains print them on stderr, as
            ``pemma-bench run`` does).
        cache: the prepared cache of a HECKTOR folder or nnU-Net dataset, when ``prepare`` was given ``--cache``.
        case_table: an nnU-Net dataset's case table (default ``DIR/cases.csv``).
        survival: an nnU-Net case table's ``(time, event)`` columns, for prognosis experiences.
        clinical: an nnU-Net case table's clinical columns.
        spacing: an nnU-Net dataset's target spacing ``(z, y, x)`` in mm, as ``prepare`` was given it.

    Raises:
        UserError: for a bad stream, preset, data source or device (one line, as the command line says it), or a
            ``PEMMA_THREADS`` that is not a positive integer.
    """
    # prepare_run reads the data, stream, preset and device of a run; the strategy list is the caller's own here.
    config = RunConfig(stream=load_stream(str(stream)), strategies=("python-api",), seeds=(seed,), preset=preset,
                       data=data, results_dir=Path(results_dir), device=device, eval_on=eval_on,
                       cache=None if cache is None else Path(cache),
                       case_table=None if case_table is None else Path(case_table),
                       survival=None if survival is None else tuple(survival), clinical=tuple(clinical),
                       spacing=None if spacing is None else tuple(float(s) for s in spacing))
    fit_threads()
    return Scenario(config.stream, seed, eval_on, prepare_run(config, seed), quiet)


def _stream_factory(name: str) -> Callable[..., Scenario]:
    def factory(seed: int = 0, preset: str = "tiny", data: str = "synthetic", **kwargs: Any) -> Scenario:
        return scenario(name, seed=seed, preset=preset, data=data, **kwargs)

    factory.__name__ = factory.__qualname__ = name.replace("-", "_")
    factory.__doc__ = f"The ``{name}`` stream (``benchmarks/{name}.yaml``); arguments as :func:`scenario`."
    return factory


centers = _stream_factory("centers")
centers_ct = _stream_factory("centers-ct")
paper = _stream_factory("paper")
paper_ct = _stream_factory("paper-ct")
modalities = _stream_factory("modalities")


def summarize(rows: Sequence[dict[str, Any]] | pd.DataFrame, costs: dict[str, dict[str, Any]] | None = None,
              evaluation: dict[str, str] | None = None, cases: pd.DataFrame | None = None) -> dict[str, dict[str, Any]]:
    """The continual-learning summary of one seed's metric rows (final Dice, forgetting, BWT, FWT per strategy and
    input setting, and plasticity when the rows include ``separate-models``), as ``summary.json`` holds it per seed.

    Args:
        rows: :attr:`StreamScorer.rows` of one or more strategies (or a run's ``metrics.csv`` of one seed).
        costs: per strategy, cost fields to carry along.
        evaluation: per strategy, how it was evaluated (``task-agnostic``, ...).
        cases: the per-case rows (:attr:`StreamScorer.cases`, concatenated): with them forgetting is the cross-fitted
            estimate, without them only the max-based one (``forgetting_max``) is defined.
    """
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=METRIC_COLUMNS)
    return summarize_table(table, costs or {}, evaluation, cases)
