"""One benchmark run: for each seed, data -> stream -> shared bases -> each strategy -> a unit of the run folder.

Every (seed, strategy) unit is written to the run's partial folder as it finishes (:mod:`pemma_cl.run.work`), so an
interrupted run continues where it stopped; when all units are done the run's tables, plots and claims are
written and the folder is published under its final name.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from avalanche.evaluation.metrics import loss_metrics
from avalanche.logging import BaseLogger
from avalanche.training.plugins import EvaluationPlugin
from rich.console import Console

from pemma_cl.core.errors import UserError
from pemma_cl.core.precision import BF16
from pemma_cl.core.protocol import evaluation_protocol
from pemma_cl.data.records import CaseRecord
from pemma_cl.data.sources import LoadedData, load_cases
from pemma_cl.data.splits import split_cases
from pemma_cl.decide import render_decisions, run_looks
from pemma_cl.evaluation.cost import CostPlugin
from pemma_cl.evaluation.prognosis_metric import PrognosisMetric
from pemma_cl.evaluation.prognosis_references import base_mask_predictor, prognosis_references
from pemma_cl.evaluation.segmentation_metric import SegmentationMetric
from pemma_cl.models.presets import Preset, get_preset
from pemma_cl.report.claims import check_claims, claims_json, paper_trainable_shares, render_claims, stored_run
from pemma_cl.report.plots.figures import draw_all
from pemma_cl.report.prognosis import summarize_prognosis
from pemma_cl.report.seeds import aggregate, render_console_table, render_markdown
from pemma_cl.report.summary import METRIC_COLUMNS, summarize
from pemma_cl.run.config import RunConfig
from pemma_cl.run.folders import build_manifest, publish, run_name, run_prefix
from pemma_cl.run.loggers import unit_loggers
from pemma_cl.run.work import CONFIG, PROGRESS, UnitResult, WorkFolder, run_label
from pemma_cl.strategy_api.options import instantiate
from pemma_cl.strategy_api.registry import Registry, StrategyEntry
from pemma_cl.streams.build import StreamData, build_stream
from pemma_cl.training.bases import SharedBases
from pemma_cl.training.context import BuildContext
from pemma_cl.training.progress import ProgressPlugin

#: Metric columns read back as floats (a unit file stores an undefined value as null).
FLOAT_COLUMNS: tuple[str, ...] = ("dice", "dice_case_mean", "hd95")


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
        _say("--precision bf16 on a CPU changes the numbers without making training faster (README, Speed); "
             "it is meant for GPUs")


def run_strategy(entry: StrategyEntry, stream: StreamData, ctx_settings: dict,
                 loggers: list[BaseLogger] | None = None, options: dict[str, Any] | None = None) -> UnitResult:
    """Evaluate, then train through every experience evaluating after each.

    Args:
        entry: the registered strategy.
        stream: the stream of one seed.
        ctx_settings: the settings of the strategy's :class:`BuildContext` (:attr:`RunInputs.ctx_settings`).
        loggers: Avalanche loggers to report to (the metric rows are returned either way).
        options: the strategy's resolved options (option -> value; missing ones take their defaults).
    """
    seed_everything(ctx_settings["seed"])
    metric = SegmentationMetric(stream.names, stream.centres, stream.spacings)
    prognosis = PrognosisMetric(stream.names, stream.modalities, ctx_settings["seed"])
    cost = CostPlugin()
    metrics = [metric, prognosis, *loss_metrics(epoch=True)] if loggers else [metric, prognosis]
    ctx = BuildContext(
        name=entry.name, make_evaluator=lambda: EvaluationPlugin(*metrics, loggers=list(loggers or [])),
        run_plugins=[ProgressPlugin(entry.name, stream.names, stream.train_sizes), cost],
        experience_modalities=stream.modalities, options=instantiate(entry.name, entry.options, options or {}),
        stream_training_data=[experience.dataset for experience in stream.benchmark.train_stream],
        experience_kinds=stream.kinds, **ctx_settings,
    )
    try:
        strategy = entry.build(ctx)
    except UserError:
        raise
    except OSError as exc:  # a full disk or a read-only folder is not the strategy's bug
        raise UserError(f"'{exc.filename}': {exc.strerror} (while building strategy '{entry.name}')") from exc
    except Exception as exc:  # a plugin's bug must not look like a crash of the suite
        raise UserError(f"strategy '{entry.name}' ({entry.source}) failed to build: {type(exc).__name__}: {exc}") from exc
    test_stream = stream.benchmark.test_stream
    strategy.eval(test_stream)
    for experience in stream.benchmark.train_stream:
        strategy.train(experience)
        strategy.eval(test_stream)
    tag = {"seed": ctx_settings["seed"], "strategy": entry.name}
    return UnitResult([{**tag, **row} for row in metric.rows], cost.as_dict(strategy.model, strategy.plugins),
                      evaluation_protocol(strategy.plugins), [{**tag, **row} for row in prognosis.rows],
                      prognosis.predictions)


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
        facts = {"data": self.data.key, "skipped_cases": self.data.skipped, "n_train_cases": len(self.train),
                 "evaluated_on": eval_on, f"n_{eval_on}_cases": len(self.evaluated)}
        if self.stream.prognosis_cases is not None:
            facts["left_out_of_prognosis"] = self.stream.left_out
            facts["prognosis_references"] = self.prognosis_references()
        return facts

    def prognosis_references(self) -> dict[str, dict]:
        """The Cox references and ceilings of :mod:`pemma_cl.evaluation.prognosis_references` for this seed."""
        train, scored = self.stream.prognosis_cases
        settings = self.ctx_settings
        _say(f"seed {settings['seed']}: prognosis references (CT-base masks of {len(train) + len(scored)} cases, "
             "Cox models)")
        with torch.random.fork_rng(devices=[]):  # building the base's network must not move the global generator
            masks = base_mask_predictor(settings["bases"].get("ct"), settings["preset"].img_size, settings["device"])
        return prognosis_references(train, scored, masks, settings["seed"])


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
                      config.stream.synthetic_scale)
    train, evaluated = split_cases(data.cases, seed).for_evaluation_on(config.eval_on)
    stream = build_stream(config.stream, train, evaluated, config.eval_on)
    bases = SharedBases(preset, stream.pretrain_cases, seed, device,
                        cache_dir=Path(config.results_dir) / ".cache", data_key=data.key,
                        modalities=stream.pretrain_modalities, precision=config.precision)
    ctx_settings = {
        "preset": preset, "device": device, "seed": seed, "epochs": config.epochs or preset.epochs,
        "task_labels": [exp.task for exp in config.stream.experiences], "bases": bases, "precision": config.precision,
    }
    return RunInputs(data, train, evaluated, stream, ctx_settings)


def check_writable(folder: Path, option: str) -> None:
    """Fail before any training when ``folder`` cannot be created or written.

    Raises:
        UserError: naming the option, the folder and the operating system's reason.
    """
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} '{folder}': is a file, expected a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UserError(f"{option} '{folder}': cannot write there: {exc.strerror or exc}") from None


def open_work(config: RunConfig) -> WorkFolder:
    """The run's partial folder (an unfinished earlier attempt of the same run, or a new one), once every place
    the run writes to is known to be writable."""
    results = Path(config.results_dir)
    check_writable(results, "--results-dir")
    if (results / ".cache").exists():
        check_writable(results / ".cache", "--results-dir (its .cache folder of trained bases)")
    return WorkFolder.open(config)


def _resolve_jobs(jobs: int | None, device: str) -> int:
    """Units run at once by the local executor. None (``--jobs auto``): two on a CPU with two threads or more (on
    this project's 2-core machine two one-thread units finish about 1.3x sooner than one two-thread unit after the
    other; see the README), one on CUDA (one GPU serves one unit at a time best)."""
    if jobs is not None:
        return jobs
    return 1 if resolve_device(device).type == "cuda" else min(2, torch.get_num_threads())


def run_benchmark(work: WorkFolder, registry: Registry, command: list[str], executor: str = "local",
                  ray_address: str | None = None, jobs: int | None = 1) -> Path:
    """Run every unfinished (seed, strategy) unit of ``work`` and publish the run folder; returns its path.

    Interrupted (Ctrl-C, an error, a kill), the finished units stay in the partial folder and the same command
    (or ``run --resume``) continues; a run that finished no unit leaves nothing behind.

    Args:
        work: the run's partial folder (:func:`open_work`, or :meth:`WorkFolder.resume`).
        registry: the strategies.
        command: the command line, for the manifest.
        executor: ``local`` (this machine) or ``ray`` (one Ray task per unit, :mod:`pemma_cl.run.executors.ray_cluster`).
        ray_address: the Ray cluster to use; None starts a local one.
        jobs: units at a time of the local executor: 1 in this process, more in worker processes
            (:mod:`pemma_cl.run.executors.processes`); None: two on a CPU, one on CUDA (see :func:`_resolve_jobs`).
    """
    config = work.config
    jobs = _resolve_jobs(jobs, config.device)
    total = len(config.seeds) * len(config.strategies)
    if work.done_count():
        _say(f"resuming {work.root}: {work.done_count()} of {total} units already finished")
    if config.preset == "paper" and resolve_device(config.device).type == "cpu":
        _say("the 'paper' preset on a CPU trains for hours to days (an estimate follows the first step); "
             "run it on a machine with a CUDA GPU (--device auto picks it)")
    decision = None
    try:
        check_precision(config.precision, resolve_device(config.device))
        entries = [registry.get(name) for name in config.strategies]
        if config.max_seeds is None:
            _execute(work, entries, executor, ray_address, jobs)
        else:
            work, decision = run_looks(work, lambda look: _execute(look, entries, executor, ray_address, jobs),
                                       _write_seed)
    except BaseException:
        if work.done_count() == 0:
            work.discard()
        else:
            _say(f"{work.done_count()} of {total} units finished and kept in {work.root}; run the same command "
                 f"again, or 'pemma-bench run --resume {work.root}', to continue")
        raise
    return _publish(work, command, {"executor": executor, "jobs": 1 if executor == "ray" else jobs,
                                    "threads_per_unit": _threads_per_unit(executor, jobs)}, decision)


def _execute(work: WorkFolder, entries: list[StrategyEntry], executor: str, ray_address: str | None,
             jobs: int) -> None:
    """Run every unfinished unit of ``work`` with the chosen executor."""
    if executor == "ray":
        from pemma_cl.run.executors.ray_cluster import run_units_on_ray

        run_units_on_ray(work, entries, ray_address)
    elif jobs > 1:
        from pemma_cl.run.executors.processes import run_units_in_processes

        run_units_in_processes(work, entries, jobs)
    else:
        _run_units(work, entries)


def _threads_per_unit(executor: str, jobs: int) -> int:
    """The torch threads each unit ran with (its numbers depend on it)."""
    if executor == "ray":
        return 1  # Ray gives each task one CPU and sets OMP_NUM_THREADS to it
    from pemma_cl.run.executors.processes import threads_per_unit

    return threads_per_unit(jobs) if jobs > 1 else torch.get_num_threads()


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _run_units(work: WorkFolder, entries: list[StrategyEntry]) -> None:
    """The local executor: every unfinished unit in this process, seed by seed."""
    config = work.config
    for seed in config.seeds:
        pending = [entry for entry in entries if not work.is_done(seed, entry.name)]
        if not pending:
            continue
        if len(config.seeds) > 1:
            _say(f"seed {seed}: {len(pending)} strategies to run")
        inputs = prepare_run(config, seed)
        work.save_data(seed, inputs.facts(config.eval_on))
        for entry in pending:
            work.save_unit(seed, entry.name, run_unit(config, inputs, entry, work.logs_dir(seed, entry.name)))


def run_unit(config: RunConfig, inputs: RunInputs, entry: StrategyEntry, logs: Path) -> UnitResult:
    """One (seed, strategy) unit: the strategy through the seed's stream, reporting to the run's loggers in ``logs``
    (emptied first: an interrupted attempt may have left half a log)."""
    seed = inputs.ctx_settings["seed"]
    label = f"{run_prefix(run_label(config), config.seeds)}/seed{seed}/{entry.name}"
    if config.loggers:
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir(parents=True)
    with unit_loggers(config.loggers, logs if config.loggers else None, label) as loggers:
        return run_strategy(entry, inputs.stream, inputs.ctx_settings, loggers, config.strategy_options.get(entry.name))


def _metric_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).astype({column: float for column in FLOAT_COLUMNS})


@dataclass
class SeedFiles:
    """What :func:`_write_seed` wrote of one seed, for the run's own tables."""

    metrics: pd.DataFrame
    summary: dict[str, Any]
    prognosis_rows: list[dict[str, Any]]
    references: dict[str, Any]
    predictions: dict[str, Any] | None


def _write_seed(work: WorkFolder, seed: int) -> SeedFiles:
    """Write one finished seed's tables (``seeds/seed<S>/``) from its unit files."""
    config = work.config
    units = {name: work.load_unit(seed, name) for name in config.strategies}
    metrics = _metric_frame([row for unit in units.values() for row in unit.rows])
    summary = summarize(metrics, {n: u.costs for n, u in units.items()}, {n: u.evaluation for n, u in units.items()})
    prognosis_rows = [row for unit in units.values() for row in unit.prognosis]
    references = work.load_data(seed).get("prognosis_references", {})
    seed_summary = aggregate({seed: summary}, config.reference)
    seed_summary["prognosis"] = summarize_prognosis({seed: prognosis_rows}, {seed: references})
    work.write_csv(f"seeds/seed{seed}/metrics.csv", metrics)
    work.write_json(f"seeds/seed{seed}/summary.json", summary)
    work.write_text(f"seeds/seed{seed}/summary.md", render_markdown([(f"seed {seed}", seed_summary)]))
    predictions = None
    if prognosis_rows:
        predictions = {n: u.predictions for n, u in units.items()}
        work.write_csv(f"seeds/seed{seed}/prognosis.csv", pd.DataFrame(prognosis_rows))
        work.write_json(f"seeds/seed{seed}/predictions.json", predictions)
    return SeedFiles(metrics, summary, prognosis_rows, references, predictions)


def _publish(work: WorkFolder, command: list[str], execution: dict[str, Any],
             decision: dict[str, Any] | None = None) -> Path:
    """Write the run's tables, plots, claims and manifest from its unit files, then give it its final name.

    ``decision`` is the record of a ``--decide`` run's looks (:func:`pemma_cl.decide.run_looks`), whose ``work``
    holds the seeds it ran.
    """
    config = work.config
    frames, per_seed, prognosis_rows, references, predictions = [], {}, {}, {}, {}
    for seed in config.seeds:
        files = _write_seed(work, seed)
        per_seed[seed], prognosis_rows[seed], references[seed] = files.summary, files.prognosis_rows, files.references
        if files.predictions is not None:
            predictions[seed] = files.predictions
        frames.append(files.metrics)
    metrics = pd.concat(frames, ignore_index=True)
    summary = aggregate(per_seed, config.reference)
    summary["prognosis"] = summarize_prognosis(prognosis_rows, references)
    name = run_name(run_label(config), config.seeds, work.started)
    finished = datetime.now(timezone.utc)
    work.write_json("manifest.json", build_manifest(
        command, config.seeds, str(resolve_device(config.device)), work.started, finished,
        extra={"stream": config.stream.name, "preset": get_preset(config.preset, config.backbone).to_dict(),
               "strategy_options": config.strategy_options, **execution, "attempts": work.progress["attempts"],
               "seeds": {seed: work.load_data(seed) for seed in config.seeds},
               "evaluation": {n: s["evaluation"] for n, s in summary["strategies"].items()},
               **({"decide": decision} if decision is not None else {})}))
    work.write_csv("metrics.csv", metrics)
    work.write_json("summary.json", summary)
    work.write_text("summary.md", render_markdown([(name, summary)]))
    draw_all(metrics, summary, work.root / "plots", predictions.get(config.seeds[0]))
    claims = check_claims([stored_run(Path(name), config.to_dict(), summary)], paper_trainable_shares())
    work.write_json("claims.json", claims_json(claims))
    work.write_text("claims.md", render_claims(claims))
    if decision is not None:
        work.write_json(CONFIG, config.to_dict())  # the seeds it ran
    (work.root / PROGRESS).unlink()
    final = publish(work.root, work.root.parent, name)
    console = Console(file=sys.stdout, width=200)  # the widest summary table (14 columns) fits
    for table in render_console_table([(name, summary)]):
        console.print(table)
    console.print(f"Paper's claims against this run ({final / 'claims.md'}):")
    console.print(render_claims(claims), markup=False, highlight=False)
    if decision is not None:
        console.print(render_decisions(decision), markup=False, highlight=False)
    return final
