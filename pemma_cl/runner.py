"""One benchmark run: data -> stream -> shared bases -> each strategy through the stream -> run folder."""

from __future__ import annotations

import random
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from avalanche.training.plugins import EvaluationPlugin
from rich.console import Console

from pemma_cl.config import RunConfig
from pemma_cl.data.sources import load_cases
from pemma_cl.data.splits import split_cases
from pemma_cl.errors import UserError
from pemma_cl.evaluation.cost import CostPlugin
from pemma_cl.evaluation.segmentation_metric import SegmentationDiceMetric
from pemma_cl.models.presets import get_preset
from pemma_cl.plots import plot_forgetting, plot_r_matrices
from pemma_cl.registry import Registry, StrategyEntry
from pemma_cl.results import RunFolder, build_manifest, run_name
from pemma_cl.streams import StreamData, build_stream
from pemma_cl.summary import METRIC_COLUMNS, render_console_table, render_markdown, summarize
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


def run_strategy(entry: StrategyEntry, stream: StreamData, ctx_settings: dict) -> tuple[list[dict], dict]:
    """Evaluate, then train through every experience evaluating after each; returns (metric rows, cost)."""
    seed_everything(ctx_settings["seed"])
    metric = SegmentationDiceMetric(stream.names, stream.centres)
    cost = CostPlugin()
    ctx = BuildContext(
        name=entry.name, make_evaluator=lambda: EvaluationPlugin(metric, loggers=[]),
        run_plugins=[ProgressPlugin(entry.name, stream.names), cost], **ctx_settings,
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
    return [{"strategy": entry.name, **row} for row in metric.rows], cost.as_dict()


def run_benchmark(config: RunConfig, registry: Registry, command: list[str]) -> Path:
    """Run every strategy of ``config`` through its stream and write the run folder; returns its path."""
    # Metrics reach the run folder through SegmentationDiceMetric.rows, not through Avalanche loggers.
    warnings.filterwarnings("ignore", message="No loggers specified")
    started = datetime.now(timezone.utc)
    entries = [registry.get(name) for name in config.strategies]
    preset = get_preset(config.preset)
    device = resolve_device(config.device)
    data = load_cases(config.data, preset.img_size, config.seed, config.on_bad_case, config.cache)
    train, test = split_cases(data.cases, config.seed)
    stream = build_stream(config.stream, train, test)
    bases = SharedBases(preset, stream.pretrain_cases, config.seed, device,
                        cache_dir=Path(config.results_dir) / ".cache", data_key=data.key)
    ctx_settings = {
        "preset": preset, "device": device, "seed": config.seed, "epochs": config.epochs or preset.epochs,
        "task_labels": [exp.task for exp in config.stream.experiences], "bases": bases,
    }
    rows, costs = [], {}
    for entry in entries:
        strategy_rows, costs[entry.name] = run_strategy(entry, stream, ctx_settings)
        rows += strategy_rows
    metrics = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    summary = summarize(metrics, costs)
    finished = datetime.now(timezone.utc)
    manifest = build_manifest(command, config.seed, str(device), started, finished,
                              extra={"stream": config.stream.name, "preset": preset.to_dict(), "data": data.key,
                                     "skipped_cases": data.skipped,
                                     "n_train_cases": len(train), "n_test_cases": len(test),
                                     "evaluation": "task-aware (adapter chosen by the test experience's task label)"})
    with RunFolder(Path(config.results_dir), run_name(config.stream.name, config.seed, started)) as folder:
        folder.write_json("config.json", config.to_dict())
        folder.write_json("manifest.json", manifest)
        folder.write_csv("metrics.csv", metrics)
        folder.write_json("summary.json", summary)
        folder.write_text("summary.md", render_markdown(summary))
        plot_forgetting(metrics, folder.path("plots/forgetting.png"))
        plot_r_matrices(metrics, folder.path("plots/r_matrices.png"))
    Console(file=sys.stdout, width=160).print(render_console_table(summary))
    return folder.final_path
