"""The ``pemma-bench`` command line.

Importing this module, ``--help`` and ``list`` must stay fast: torch, MONAI, Avalanche, peft, pandas and
matplotlib are imported only inside the commands that train or plot. A :class:`~pemma_cl.errors.UserError`
raised anywhere below a command is printed as ``error: <message>`` on one line of stderr, exit code 2.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from pemma_cl import __version__
from pemma_cl.config import DEFAULT_STRATEGIES, DEVICES, ON_BAD_CASE, PRESETS, RunConfig, list_streams, load_stream
from pemma_cl.data.records import CENTRES
from pemma_cl.data.splits import EVAL_SPLITS
from pemma_cl.errors import UserError
from pemma_cl.registry import file_source, load_registry

#: Files of a stored run folder (as :mod:`pemma_cl.runner` writes them) that ``plot`` and ``report`` use.
METRICS_CSV = "metrics.csv"
SUMMARY_MD = "summary.md"
CLAIMS_MD = "claims.md"
FORGETTING_PNG = "plots/forgetting.png"
R_MATRICES_PNG = "plots/r_matrices.png"

app = typer.Typer(
    name="pemma-bench",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

PluginOption = Annotated[
    list[Path] | None,
    typer.Option("--plugin", metavar="FILE", help="Python file registering extra strategies; repeatable."),
]
OnBadCaseOption = Annotated[
    str,
    typer.Option(
        "--on-bad-case", metavar="|".join(ON_BAD_CASE),
        help="Bad cases of a HECKTOR folder: refuse (list them, exit 2) or skip them (recorded with reasons).",
    ),
]
SizeOption = Annotated[int, typer.Option("--size", metavar="N", help="Voxels per side of each volume.")]
RunDirArgument = Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run folder written by 'pemma-bench run'.")]

Command = TypeVar("Command", bound=Callable[..., Any])


def _guarded(command: Command) -> Command:
    """Turn a :class:`UserError` into ``error: <message>`` and detail lines (exit 2), Ctrl-C into ``interrupted``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {' '.join(str(exc).splitlines())}", err=True)
            for line in exc.details:
                typer.echo(f"  {line}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"pemma-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Continual-learning benchmark for multi-modal (CT, PET) head-and-neck tumour segmentation."""


@app.command("list")
@_guarded
def list_command(plugin: PluginOption = None) -> None:
    """List streams, strategies and unavailable plugins."""
    streams = list_streams()
    registry = load_registry(plugin or [])
    _echo_table("streams", [(s.name, f"{s.description} ({len(s.experiences)} experiences)") for s in streams])
    typer.echo()
    _echo_table("strategies", [(e.name, e.description, f"[{e.source}]") for e in registry.entries.values()])
    if registry.broken:
        typer.echo("\nunavailable plugins:")
        for plugin_name, reason in registry.broken.items():
            typer.echo(f"  {plugin_name}: {reason}")


@app.command()
@_guarded
def run(
    stream: Annotated[
        str,
        typer.Option("--stream", metavar="NAME_OR_PATH", help="Stream name from 'pemma-bench list' or a .yaml file."),
    ],
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            metavar="NAME",
            help=f"Strategy to run; repeatable. Default: {', '.join(DEFAULT_STRATEGIES)}.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (non-negative).")] = 0,
    preset: Annotated[
        str, typer.Option("--preset", metavar="|".join(PRESETS), help="Model and schedule size.")
    ] = "tiny",
    data: Annotated[
        str, typer.Option("--data", metavar="SOURCE", help="Data source: 'synthetic' or 'hecktor:DIR'.")
    ] = "synthetic",
    results_dir: Annotated[
        Path, typer.Option("--results-dir", metavar="DIR", help="Folder in which the run folder is created.")
    ] = Path("results"),
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", metavar="N", help="Epochs per experience. Default: the preset's.", show_default=False),
    ] = None,
    device: Annotated[
        str, typer.Option("--device", metavar="|".join(DEVICES), help="Where to train; auto picks cuda when available.")
    ] = "auto",
    plugin: PluginOption = None,
    on_bad_case: OnBadCaseOption = "refuse",
    cache: Annotated[
        Path | None,
        typer.Option("--cache", metavar="DIR", help="Prepared cache of a HECKTOR folder, if 'prepare' was given "
                     "--cache. Default: DIR/.pemma_cache/size<N>.", show_default=False),
    ] = None,
    eval_on: Annotated[
        str,
        typer.Option("--eval-on", metavar="|".join(EVAL_SPLITS),
                     help="test: train on training+validation cases, report the test cases (the numbers to "
                          "publish). val: train on training cases, report the validation cases (for choosing "
                          "settings; test cases stay unseen)."),
    ] = "test",
) -> None:
    """Train and evaluate strategies on a stream.

    Everything is validated before training starts; the last line printed is the run folder.
    """
    plugin_files = tuple(plugin or ())
    registry = load_registry(plugin_files)
    for path in plugin_files:
        reason = registry.broken.get(file_source(path))
        if reason is not None:
            raise UserError(f"plugin '{path}' failed to load: {reason}")
    config = RunConfig(
        stream=load_stream(stream),
        strategies=tuple(strategy or DEFAULT_STRATEGIES),
        seed=seed,
        preset=preset,
        data=data,
        results_dir=results_dir,
        epochs=epochs,
        device=device,
        plugin_files=plugin_files,
        on_bad_case=on_bad_case,
        cache=cache,
        eval_on=eval_on,
    )
    for name in config.strategies:
        registry.get(name)

    from pemma_cl.runner import run_benchmark  # heavy: torch, MONAI, Avalanche

    run_dir = run_benchmark(config, registry, ["pemma-bench", *sys.argv[1:]])
    typer.echo(str(run_dir))


@app.command()
@_guarded
def synth(
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder to create (must not hold files).")],
    seed: Annotated[int, typer.Option("--seed", help="Cohort seed.")] = 0,
    case_scale: Annotated[
        float, typer.Option("--case-scale", metavar="X", help="Share of HECKTOR 2022's cases per centre (min 5).")
    ] = 0.2,
    size: SizeOption = 32,
    centre: Annotated[
        list[str] | None,
        typer.Option("--centre", metavar="NAME", help="Centre to write; repeatable. Default: all seven.",
                     show_default=False),
    ] = None,
) -> None:
    """Write the built-in synthetic cohort as an official HECKTOR 2022 training folder (NIfTI + CSVs)."""
    from pemma_cl.data.synth_export import export_synthetic  # heavy: SimpleITK, pandas

    count = export_synthetic(out, seed=seed, case_scale=case_scale, size=size, centres=tuple(centre or CENTRES))
    typer.echo(f"wrote {count} cases to {out}")


@app.command()
@_guarded
def prepare(
    hecktor: Annotated[
        Path, typer.Option("--hecktor", metavar="DIR", help="The HECKTOR 2022 training folder.")
    ],
    cache: Annotated[
        Path | None,
        typer.Option("--cache", metavar="DIR", help="Cache folder (then give 'run' the same --cache). "
                     "Default: DIR/.pemma_cache/size<N>, the one 'run --data hecktor:DIR' reads by default.",
                     show_default=False),
    ] = None,
    size: SizeOption = 32,
    on_bad_case: OnBadCaseOption = "refuse",
    workers: Annotated[
        int | None,
        typer.Option("--workers", metavar="N", help="Worker processes. Default: one per CPU core.",
                     show_default=False),
    ] = None,
) -> None:
    """Check every case of a HECKTOR 2022 folder and cache it cropped and resampled for 'run'.

    Resumable: cases already in the cache are skipped. Writes prepare_report.csv in the cache folder.
    """
    if on_bad_case not in ON_BAD_CASE:
        raise UserError(f"--on-bad-case: expected one of [{', '.join(ON_BAD_CASE)}], got {on_bad_case!r}")
    if size < 8:
        raise UserError(f"--size: expected an integer >= 8, got {size}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers: expected a positive integer, got {workers}")
    if not hecktor.is_dir():
        raise UserError(f"--hecktor: folder '{hecktor}' does not exist")

    from pemma_cl.data.prepare import prepare_folder  # heavy: SimpleITK, pandas

    done = prepare_folder(hecktor, cache, size, on_bad_case, workers or os.cpu_count() or 1)
    if done.prepared:
        typer.echo(f"prepared {done.prepared} cases in {done.seconds:.1f} s: {done.cases_per_second:.2f} cases/s "
                   f"on {done.workers} worker process(es)")
    typer.echo(f"{done.cached} cases were already cached; {len(done.bad)} bad cases skipped (reasons in the report)")
    typer.echo(str(done.report))


@app.command()
@_guarded
def plot(run_dir: RunDirArgument) -> None:
    """Re-draw the plots of a stored run from its metrics.csv."""
    metrics = _stored_file(run_dir, METRICS_CSV)

    import pandas as pd

    from pemma_cl.plots import plot_forgetting, plot_r_matrices

    try:
        frame = pd.read_csv(metrics)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{metrics}: cannot read it as CSV: {exc}") from None
    for draw, file_name in ((plot_forgetting, FORGETTING_PNG), (plot_r_matrices, R_MATRICES_PNG)):
        (run_dir / file_name).parent.mkdir(parents=True, exist_ok=True)
        try:
            draw(frame, run_dir / file_name)
        except UserError as exc:
            raise UserError(f"{metrics}: {exc}") from None
        typer.echo(str(run_dir / file_name))


@app.command()
@_guarded
def report(run_dir: RunDirArgument) -> None:
    """Print the summary.md (and claims.md, when the run has one) of a stored run."""
    typer.echo(_stored_file(run_dir, SUMMARY_MD).read_text(encoding="utf-8").rstrip("\n"))
    if (run_dir / CLAIMS_MD).is_file():
        typer.echo("\n" + (run_dir / CLAIMS_MD).read_text(encoding="utf-8").rstrip("\n"))


@app.command()
@_guarded
def claims(
    run_dirs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="Run folders written by 'pemma-bench run'.")],
) -> None:
    """Check the paper's claims against one or several stored runs (e.g. one of 'paper' and one of 'paper-ct')."""
    from pemma_cl.claims import check_claims, load_run, paper_trainable_shares, render_claims

    runs = [load_run(folder) for folder in run_dirs]  # every folder checked before the heavy imports below
    typer.echo(render_claims(check_claims(runs, paper_trainable_shares())).rstrip("\n"))


#: Rows of ``pemma-bench params``: (key of pemma_parameter_counts, label).
PARAMS_ROWS: tuple[tuple[str, str], ...] = (
    ("base", "frozen CT base (UNETR)"),
    ("lora", "LoRA/DoRA on the ViT (one set)"),
    ("pet_path", "PET path (embedding, fusion, adapters, skip)"),
    ("trainable", "trainable per task"),
    ("served", "serving one task (base + one set)"),
    ("stored_shared", "stored, one shared set (authors)"),
    ("stored_per_task", "stored, one set per task"),
    ("pct_served", "trainable / serving one task"),
    ("pct_stored_shared", "trainable / stored, shared (authors' count)"),
    ("pct_stored_per_task", "trainable / stored, per task"),
)


@app.command()
@_guarded
def params(
    preset: Annotated[str, typer.Option("--preset", metavar="|".join(PRESETS), help="Model size.")] = "paper",
    tasks: Annotated[int, typer.Option("--tasks", metavar="N", help="Tasks of the stream (per-task storage).")] = 3,
) -> None:
    """PEMMA's parameter counts and trainable shares at a preset, counted without training."""
    if preset not in PRESETS:
        raise UserError(f"--preset: expected one of [{', '.join(PRESETS)}], got {preset!r}")
    if tasks < 1:
        raise UserError(f"--tasks: expected a positive integer, got {tasks}")

    from pemma_cl.evaluation.cost import pemma_parameter_counts  # heavy: torch, MONAI, peft
    from pemma_cl.models.presets import PRESETS as MODEL_PRESETS

    counts = {name: pemma_parameter_counts(MODEL_PRESETS[preset], name == "dora", tasks) for name in ("lora", "dora")}
    typer.echo(f"PEMMA at the '{preset}' preset ({tasks} tasks), counted on the meta device:")
    typer.echo(f"  {'':46}{'LoRA':>14}{'DoRA':>14}")
    for key, label in PARAMS_ROWS:
        cells = [f"{counts[n][key]:>13.2f}%" if key.startswith("pct_") else f"{counts[n][key]:>14,}" for n in counts]
        typer.echo(f"  {label:46}{''.join(cells)}")


def _stored_file(run_dir: Path, file_name: str) -> Path:
    if not run_dir.is_dir():
        raise UserError(f"run folder '{run_dir}' does not exist")
    path = run_dir / file_name
    if not path.is_file():
        raise UserError(f"{path}: not found; expected a run folder written by 'pemma-bench run'")
    return path


def _echo_table(title: str, rows: list[tuple[str, ...]]) -> None:
    typer.echo(f"{title}:")
    if not rows:
        typer.echo("  (none)")
    width = max((len(row[0]) for row in rows), default=0)
    for first, *rest in rows:
        typer.echo("  " + "  ".join([first.ljust(width), *rest]))


def main() -> None:
    """Entry point of the ``pemma-bench`` console script."""
    app()
