"""``pemma-bench profile``: like-for-like step costs of the strategies, on untrained bases (micro preset)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pemma_cl.cli.app import app


def invoke(*args: str | Path):
    return CliRunner().invoke(app, ["profile", *map(str, args)])


def test_profile_times_each_strategy_against_full_finetuning(tmp_path: Path) -> None:
    out = tmp_path / "profile.json"
    result = invoke("--preset", "micro", "--strategy", "pemma-lora", "--strategy", "full-finetune", "--steps", "2",
                    "--device", "cpu", "--out", out)
    assert result.exit_code == 0, result.output
    rows = {row["strategy"]: row for row in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["pemma-lora", "full-finetune"]
    lora, full = rows["pemma-lora"], rows["full-finetune"]
    assert lora["steps"] == full["steps"] == 2  # after one warm-up step
    assert full["step_vs_full_finetune"] == 1.0
    assert lora["step_vs_full_finetune"] == lora["train_step_ms"] / full["train_step_ms"]
    assert 0 < lora["trainable_params"] < full["trainable_params"] and full["trainable_pct"] == 100.0
    assert all(row["train_step_ms"] > 0 and row["eval_ms_per_case"] > 0 for row in rows.values())
    # The arithmetic: LoRA adds low-rank products to the same forward pass; full fine-tuning's backward computes the
    # gradients of the activations and of every weight (about two forward passes), PEMMA's skips the frozen weights'.
    assert full["forward_gflop"] < lora["forward_gflop"] < 1.05 * full["forward_gflop"]
    assert 1.5 * full["forward_gflop"] < full["backward_gflop"] <= 2 * full["forward_gflop"]
    assert lora["backward_gflop"] < 0.6 * full["backward_gflop"]
    assert lora["gflop_vs_full_finetune"] == lora["train_step_gflop"] / full["train_step_gflop"] < 0.75
    assert lora["peak_memory_bytes"] is None  # CPU: no per-strategy peak to report
    lines = result.stdout.splitlines()
    assert lines[0].startswith("'micro' preset on cpu") and lines[-1] == str(out)
    assert lines[2].split()[0] == "pemma-lora" and lines[3].split()[:3] == ["full-finetune", lines[3].split()[1], "1.00x"]


def test_profile_rejects_bad_options(tmp_path: Path) -> None:
    for args, message in ((["--steps", "0"], "error: --steps: expected a positive integer, got 0"),
                          (["--preset", "huge"], "error: --preset: expected one of"),
                          (["--precision", "fp16"], "error: --precision: expected one of [fp32, bf16], got 'fp16'"),
                          (["--strategy", "nope"], "error: unknown strategy 'nope'")):
        result = invoke(*args, "--out", tmp_path / "p.json")
        assert result.exit_code == 2 and result.stderr.startswith(message), result.output
