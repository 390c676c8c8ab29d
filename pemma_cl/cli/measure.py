"""The measuring commands of ``pemma-bench``: parameter counts (``params``) and step costs (``profile``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pemma_cl.cli.common import DeviceOption, PluginOption, PrecisionOption, guarded, registry_with
from pemma_cl.core.errors import UserError
from pemma_cl.core.precision import PRECISIONS
from pemma_cl.core.threads import fit_threads
from pemma_cl.run.config import BACKBONES, DEFAULT_STRATEGIES, DEVICES, PRESETS

#: Rows of ``pemma-bench params``: (key of pemma_parameter_counts, label).
PARAMS_ROWS: tuple[tuple[str, str], ...] = (
    ("base", "frozen CT base"),
    ("lora", "LoRA/DoRA on the transformer (one set)"),
    ("pet_path", "PET path (embedding, fusion, adapters, skip)"),
    ("trainable", "trainable per task"),
    ("served", "serving one task (base + one set)"),
    ("stored_shared", "stored, one shared set (authors)"),
    ("stored_per_task", "stored, one set per task"),
    ("pct_served", "trainable / serving one task"),
    ("pct_stored_shared", "trainable / stored, shared (authors' count)"),
    ("pct_stored_per_task", "trainable / stored, per task"),
)


@guarded
def params(
    preset: Annotated[str, typer.Option("--preset", metavar="|".join(PRESETS), help="Model size.")] = "paper",
    tasks: Annotated[int, typer.Option("--tasks", metavar="N", help="Tasks of the stream (per-task storage).")] = 3,
    backbone: Annotated[str, typer.Option("--backbone", metavar="|".join(BACKBONES), help="Network family.")] = "unetr",
) -> None:
    """PEMMA's parameter counts and trainable shares at a preset, counted without training."""
    if preset not in PRESETS:
        raise UserError(f"--preset: expected one of [{', '.join(PRESETS)}], got {preset!r}")
    if backbone not in BACKBONES:
        raise UserError(f"--backbone: expected one of [{', '.join(BACKBONES)}], got {backbone!r}")
    if tasks < 1:
        raise UserError(f"--tasks: expected a positive integer, got {tasks}")

    from pemma_cl.evaluation.cost import pemma_parameter_counts  # heavy: torch, MONAI, peft
    from pemma_cl.models.presets import get_preset

    sizes = get_preset(preset, backbone)
    counts = {name: pemma_parameter_counts(sizes, name == "dora", tasks) for name in ("lora", "dora")}
    typer.echo(f"PEMMA on {backbone} at the '{preset}' preset ({tasks} tasks), counted without training:")
    typer.echo(f"  {'':46}{'LoRA':>14}{'DoRA':>14}")
    for key, label in PARAMS_ROWS:
        cells = [f"{counts[n][key]:>13.2f}%" if key.startswith("pct_") else f"{counts[n][key]:>14,}" for n in counts]
        typer.echo(f"  {label:46}{''.join(cells)}")


#: Columns of ``pemma-bench profile``: (row key, header, format).
PROFILE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("train_step_ms", "train step ms", "{:,.1f}"), ("step_vs_full_finetune", "vs full-FT", "{:.2f}x"),
    ("train_step_gflop", "step GFLOP", "{:,.2f}"), ("gflop_vs_full_finetune", "vs full-FT", "{:.2f}x"),
    ("eval_ms_per_case", "eval ms/case", "{:,.1f}"), ("peak_memory_bytes", "peak GiB", "{:.2f}"),
    ("trainable_params", "trainable", "{:,}"), ("trainable_pct", "trainable %", "{:.2f}"),
)


@guarded
def profile(
    preset: Annotated[str, typer.Option("--preset", metavar="|".join(PRESETS), help="Model size.")] = "tiny",
    strategy: Annotated[
        list[str] | None,
        typer.Option("--strategy", metavar="NAME", help="Strategy to profile; repeatable; 'all' for every "
                     "registered one. Default: the run's default strategies.", show_default=False),
    ] = None,
    steps: Annotated[int, typer.Option("--steps", metavar="N", help="Timed training steps per strategy (after "
                                       "one warm-up step).")] = 5,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    plugin: PluginOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="JSON file of the rows. Default: results/profile-<preset>-"
                     "<device>.json.", show_default=False),
    ] = None,
) -> None:
    """Median training-step time, the step's arithmetic (GFLOP), evaluation time per case, peak memory and trainable
    parameters of each strategy, like for like on untrained bases (see pemma_cl/measure/profile.py), at the threads
    that fit this machine now (PEMMA_THREADS=N sets them)."""
    if preset not in PRESETS:
        raise UserError(f"--preset: expected one of [{', '.join(PRESETS)}], got {preset!r}")
    if device not in DEVICES:
        raise UserError(f"--device: expected one of [{', '.join(DEVICES)}], got {device!r}")
    if precision not in PRECISIONS:
        raise UserError(f"--precision: expected one of [{', '.join(PRECISIONS)}], got {precision!r}")
    if steps < 1:
        raise UserError(f"--steps: expected a positive integer, got {steps}")
    registry = registry_with(tuple(plugin or ()))
    entries = list(registry.entries_named(registry.select(strategy or DEFAULT_STRATEGIES)).values())

    from pemma_cl.measure.profile import profile_strategies
    from pemma_cl.models.presets import PRESETS as MODEL_PRESETS  # heavy: torch, MONAI, Avalanche
    from pemma_cl.run.benchmark import check_writable
    from pemma_cl.run.unit import check_precision, resolve_device

    target = resolve_device(device)
    check_precision(precision, target)
    out = out or Path("results") / f"profile-{preset}-{target.type}.json"
    check_writable(out.parent, "--out (its folder)")
    fit_threads()  # the threads a run's unit would get on this machine now (pemma_cl.core.threads)
    rows = profile_strategies(entries, MODEL_PRESETS[preset], target, steps, precision=precision)
    width = max(len(row["strategy"]) for row in rows)
    typer.echo(f"'{preset}' preset on {target} ({torch_device_name(target)}, {precision}), median of {steps} steps:")
    typer.echo(f"  {'strategy':{width}}" + "".join(f"{header:>15}" for _, header, _ in PROFILE_COLUMNS))
    for row in rows:
        values = [row[key] / 2**30 if key == "peak_memory_bytes" and row[key] is not None else row[key]
                  for key, _, _ in PROFILE_COLUMNS]
        cells = ["–" if value is None else fmt.format(value) for value, (_, _, fmt) in zip(values, PROFILE_COLUMNS)]
        typer.echo(f"  {row['strategy']:{width}}" + "".join(f"{cell:>15}" for cell in cells))
    out.write_text(json.dumps({"machine": torch_device_name(target), "rows": rows}, indent=2) + "\n", encoding="utf-8")
    typer.echo(str(out))


def torch_device_name(device) -> str:
    """The GPU's name, or the CPU's thread count."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU, {torch.get_num_threads()} threads"
