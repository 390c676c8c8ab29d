"""One benchmark run: data -> stream -> shared bases -> each strategy through the stream -> run folder."""

from __future__ import annotations

import random
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from avalanche.training.plugins import EvaluationPlugin
from rich.console import Console

from pemma_cl.claims import check_claims, claims_json, paper_trainable_shares, render_claims, stored_run
from pemma_cl.config import RunConfig
from pemma_cl.data.records import CaseRecord
from pemma_cl.data.sources import LoadedData, load_cases
from pemma_cl.data.splits import split_cases
from pemma_cl.errors import UserError
from pemma_cl.evaluation.cost import CostPlugin
from pemma_cl.evaluation.segmentation_metric import SegmentationDiceMetric
from pemma_cl.models.presets import Preset, get_preset
from pemma_cl.plots import plot_forgetting, plot_r_matrices
from pemma_cl.registry import Registry, StrategyEntry
from pemma_cl.results import RunFolder, build_manifest, run_name
from pemma_cl.streams import StreamData, build_stream
from pemma_cl.summary import METRIC_COLUMNS, render_console_table, render_markdown, summarize
from pemma_cl.training.adapter_plugins import evaluation_protocol
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


def run_strategy(entry: StrategyEntry, stream: StreamData, ctx_settings: dict) -> tuple[list[dict], dict, str]:
    """Evaluate, then train through every experience evaluating after each.

    Returns:
        (metric rows, cost, evaluation protocol: ``task-agnostic`` or ``task-aware (task label given)``).
    """
    seed_everything(ctx_settings["seed"])
    metric = SegmentationDiceMetric(stream.names, stream.centres)
    cost = CostPlugin()
    ctx = BuildContext(
        name=entry.name, make_evaluator=lambda: EvaluationPlugin(metric, loggers=[]),
        run_plugins=[ProgressPlugin(entry.name, stream.names), cost],
        experience_modalities=stream.modalities, **ctx_settings,
    )
    try:
        strategy = entry.build(ctx)
    except UserError:
        raise
    except Exception as exc:  # a plugin's bug must not look like a crash of the suite
        raise UserError(f"strategy '{entry.name}' ({entry.source}) failed to build: {type(exc).__name__}: {exc}") from exc
    test_stream = stream.benchmark.test_stream
    strategy.eval(test_stream)
    for experience in stream.benchmark.train_stream:
        strategy.train(experience)
        strategy.eval(test_stream)
    rows = [{"strategy": entry.name, **row} for row in metric.rows]
    return rows, cost.as_dict(strategy.model), evaluation_protocol(strategy.plugins)


@dataclass
class RunInputs:
    """What every strategy of a run shares: its data, stream and the settings of each strategy's BuildContext."""

    data: LoadedData
    train: list[CaseRecord]
    evaluated: list[CaseRecord]
    stream: StreamData
    ctx_settings: dict[str, Any]


def prepare_run(config: RunConfig, preset: Preset | None = None) -> RunInputs:
    """Load and split the data, build the stream and the shared bases of a run (bases train on first use).

    Args:
        config: the run.
        preset: replaces the preset ``config`` names (the ablation benchmark varies budgets this way).
    """
    # Metrics reach the run folder through SegmentationDiceMetric.rows, not through Avalanche loggers.
    warnings.filterwarnings("ignore", message="No loggers specified")
    preset = preset or get_preset(config.preset)
    device = resolve_device(config.device)
    data = load_cases(config.data, preset.img_size, config.seed, config.on_bad_case, config.cache)
    train, evaluated = split_cases(data.cases, config.seed).for_evaluation_on(config.eval_on)
    stream = build_stream(config.stream, train, evaluated, config.eval_on)
    bases = SharedBases(preset, stream.pretrain_cases, config.seed, device,
                        cache_dir=Path(config.results_dir) / ".cache", data_key=data.key,
                        modalities=stream.pretrain_modalities)
    ctx_settings = {
        "preset": preset, "device": device, "seed": config.seed, "epochs": config.epochs or preset.epochs,
        "task_labels": [exp.task for exp in config.stream.experiences], "bases": bases,
    }
    return RunInputs(data, train, evaluated, stream, ctx_settings)


def run_benchmark(config: RunConfig, registry: Registry, command: list[str]) -> Path:
    """Run every strategy of ``config`` through its stream and write the run folder; returns its path."""
    started = datetime.now(timezone.utc)
    entries = [registry.get(name) for name in config.strategies]
    inputs = prepare_run(config)
    data, train, evaluated, stream, ctx_settings = (inputs.data, inputs.train, inputs.evaluated, inputs.stream,
                                                    inputs.ctx_settings)
    preset, device = ctx_settings["preset"], ctx_settings["device"]
    rows, costs, evaluation = [], {}, {}
    for entry in entries:
        strategy_rows, costs[entry.name], evaluation[entry.name] = run_strategy(entry, stream, ctx_settings)
        rows += strategy_rows
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    summary = summarize(metrics, costs, evaluation)
    finished = datetime.now(timezone.utc)
    manifest = build_manifest(command, config.seed, str(device), started, finished,
                              extra={"stream": config.stream.name, "preset": preset.to_dict(), "data": data.key,
                                     "skipped_cases": data.skipped,
                                     "n_train_cases": len(train), "evaluated_on": config.eval_on,
                                     f"n_{config.eval_on}_cases": len(evaluated),
                                     "evaluation": evaluation})
    name = run_name(config.stream.name if config.eval_on == "test" else f"{config.stream.name}-{config.eval_on}",
                    config.seed, started)
    with RunFolder(Path(config.results_dir), name) as folder:
        folder.write_json("config.json", config.to_dict())
        folder.write_json("manifest.json", manifest)
        folder.write_csv("metrics.csv", metrics)
        folder.write_json("summary.json", summary)
        folder.write_text("summary.md", render_markdown(summary))
        plot_forgetting(metrics, folder.path("plots/forgetting.png"))
        plot_r_matrices(metrics, folder.path("plots/r_matrices.png"))
        claims = check_claims([stored_run(Path(name), config.to_dict(), summary)], paper_trainable_shares())
        folder.write_json("claims.json", claims_json(claims))
        folder.write_text("claims.md", render_claims(claims))
    console = Console(file=sys.stdout, width=170)
    console.print(render_console_table(summary))
    console.print(f"Paper's claims against this run ({folder.final_path / 'claims.md'}):")
    console.print(render_claims(claims), markup=False, highlight=False)
    return folder.final_path
