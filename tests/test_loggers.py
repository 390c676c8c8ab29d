"""``run --logger``: Avalanche's loggers receive every strategy's segmentation metrics and training loss."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from pemma_cl.run.loggers import unit_loggers


@pytest.fixture(scope="module")
def logged(stream_data, ctx_settings, tmp_path_factory) -> tuple[Path, list[dict]]:
    """Full fine-tuning through the micro stream with the csv, text and tensorboard loggers."""
    from pemma_cl.run.unit import run_strategy
    from pemma_cl.strategy_api.registry import load_registry

    folder = tmp_path_factory.mktemp("logs")
    entry = load_registry().get("full-finetune")
    with unit_loggers(("csv", "text", "tensorboard"), folder, "test/seed0/full-finetune") as loggers:
        unit = run_strategy(entry, stream_data, ctx_settings, loggers)
    return folder, unit.rows


def test_csv_logger_holds_every_metric_row(logged) -> None:
    folder, rows = logged
    with open(folder / "csv" / "eval_results.csv", newline="") as handle:
        logged_rows = list(csv.DictReader(handle))
    dice = {(int(r["training_exp"]), int(r["eval_exp"]), r["metric"].split("/")[-2], r["metric"].split("/")[-1]):
            float(r["value"]) for r in logged_rows if r["metric"].startswith("Dice/")}
    expected = {(r["trained_through"], r["eval_experience"], r["input"], r["structure"]): r["dice"] for r in rows}
    assert dice.keys() == expected.keys()  # every (state, experience, input, structure), -1 before training
    for key, value in expected.items():
        assert (math.isnan(value) and math.isnan(dice[key])) or dice[key] == pytest.approx(value, abs=5e-5)
    final = max(r["trained_through"] for r in rows)  # HD95 is computed at the final evaluation only
    assert sum(r["metric"].startswith("HD95/") for r in logged_rows) == sum(r["trained_through"] == final for r in rows)
    with open(folder / "csv" / "training_results.csv", newline="") as handle:
        losses = list(csv.DictReader(handle))
    assert [(int(r["training_exp"]), int(r["epoch"])) for r in losses] == [(0, 0), (1, 0)]
    assert all(0 < float(r["training_loss"]) < 10 for r in losses)


def test_text_and_tensorboard_loggers_receive_the_metrics(logged) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder, rows = logged
    text = (folder / "log.txt").read_text()
    assert "Dice/eval_phase/test_stream/Exp001/ctpet/aggregated" in text and "Loss_Epoch" in text
    [events] = (folder / "tensorboard").glob("events.out.tfevents.*")
    board = EventAccumulator(str(events.parent))
    board.Reload()
    tags = board.Tags()["scalars"]
    assert "Dice/eval_phase/test_stream/Exp000/ct/GTVp" in tags and "HD95/eval_phase/test_stream/Exp000/ct/GTVp" in tags
    final = [r["dice"] for r in rows if (r["trained_through"], r["eval_experience"], r["input"], r["structure"])
             == (1, 1, "ctpet", "aggregated")][0]
    assert board.Scalars("Dice/eval_phase/test_stream/Exp001/ctpet/aggregated")[-1].value == pytest.approx(final, abs=1e-6)


def test_wandb_logger_runs_offline(stream_data, ctx_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Avalanche 0.6.0's WandBLogger against the installed wandb (no account: offline mode writes a local run)."""
    from pemma_cl.run.unit import run_strategy
    from pemma_cl.strategy_api.registry import load_registry

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    with unit_loggers(("wandb",), tmp_path, "test/seed0/early-fusion") as loggers:
        run_strategy(load_registry().get("early-fusion"), stream_data, ctx_settings, loggers)
    [run] = (tmp_path / "wandb").glob("offline-run-*")
    assert list(run.glob("run-*.wandb")) and (run / "files").is_dir()
