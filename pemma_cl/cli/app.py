"""The ``pemma-bench`` command line.

Importing this module, ``--help`` and ``list`` must stay fast: torch, MONAI, Avalanche, peft, pandas and
matplotlib are imported only inside the commands that train or plot. A :class:`~pemma_cl.core.errors.UserError`
raised anywhere below a command is printed as ``error: <message>`` on one line of stderr, exit code 2
(:func:`pemma_cl.cli.common.guarded`). The data commands ``synth`` and ``prepare`` live in :mod:`pemma_cl.cli.data`,
the measuring commands ``params`` and ``profile`` in :mod:`pemma_cl.cli.measure`, the commands that read a stored run
(``plot``, ``report``, ``claims``, ``export-challenger``, ``plan``) in :mod:`pemma_cl.cli.stored`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Annotated

import typer

from pemma_cl import __version__
from pemma_cl.cli import data, measure, stored
from pemma_cl.cli.common import (
    CaseTableOption,
    DeviceOption,
    OnBadCaseOption,
    PluginOption,
    PrecisionOption,
    SpacingOption,
    column_list,
    guarded,
    parsed_spacing,
    registry_with,
)
from pemma_cl.core.errors import UserError
from pemma_cl.core.task_kinds import SEGMENTATION, TASK_KINDS
from pemma_cl.core.terminal import console_width
from pemma_cl.data.splits import EVAL_SPLITS
from pemma_cl.run.config import (
    BACKBONES,
    DEFAULT_MAX_SEEDS,
    DEFAULT_REFERENCE,
    DEFAULT_STRATEGIES,
    LOGGERS,
    PRESETS,
    RunConfig,
)
from pemma_cl.strategy_api.options import describe, read_config_file, resolve
from pemma_cl.strategy_api.registry import load_registry
from pemma_cl.streams.spec import StreamSpec, list_streams, load_stream

#: Where the units of a run execute (see ``run --executor``).
EXECUTORS: tuple[str, ...] = ("local", "ray")

app = typer.Typer(
    name="pemma-bench",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


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
    """Continual-learning benchmark for multi-modal (CT, PET) medical image segmentation."""


@app.command("list", short_help="List streams and strategies, with their options.")
@guarded
def list_command(plugin: PluginOption = None) -> None:
    """List streams, strategies by family (with their options and defaults) and unavailable plugins."""
    streams = list_streams()
    registry = load_registry(plugin or [])
    _echo_table("streams", [(s.name, f"{s.description} ({_experiences(s)})") for s in streams])
    if not registry.entries:
        typer.echo()
        _echo_table("strategies", [])
    for family, entries in registry.by_family():
        typer.echo()
        rows = []
        for e in entries:
            trains = "" if e.task_kinds == (SEGMENTATION,) else f" (trains: {', '.join(e.task_kinds)})"
            rows.append((e.name, e.description + trains, f"[{e.source}]"))
            if e.options is not None:
                rows.append(("", f"  options: {describe(e.options)}", ""))
        _echo_table(f"strategies: {family}", rows)
    if registry.broken:
        typer.echo("\nunavailable plugins:")
        for plugin_name, reason in registry.broken.items():
            typer.echo(f"  {plugin_name}: {reason}")


@app.command(short_help="Train and score strategies on a stream.")
@guarded
def run(
    ctx: typer.Context,
    stream: Annotated[
        str | None,
        typer.Option("--stream", metavar="NAME_OR_PATH", help="Stream name from 'pemma-bench list' or a .yaml file.",
                     show_default=False),
    ] = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            "--strategy",
            metavar="NAME",
            help=f"Strategy to run; repeatable; 'all' runs every registered one. Default: {', '.join(DEFAULT_STRATEGIES)}.",
            show_default=False,
        ),
    ] = None,
    set_option: Annotated[
        list[str] | None,
        typer.Option("--set", metavar="STRATEGY.OPTION=VALUE",
                     help="Set a strategy option, e.g. ewc.lambda=100 (options and defaults: 'pemma-bench list'); "
                          "repeatable; overrides --config.", show_default=False),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="YAML file whose 'strategies:' block sets strategy options, "
                     "e.g. {ewc: {lambda: 100}}.", show_default=False),
    ] = None,
    seeds: Annotated[
        str, typer.Option("--seeds", "--seed", metavar="LIST",
                          help="Seeds, e.g. 0,1,2: one sub-run each, summarised by mean and 95% interval. A seed "
                               "draws the synthetic cohort, the split, the bases and every initialisation.")
    ] = "0",
    decide: Annotated[
        bool, typer.Option("--decide", help="Add seeds 0, 1, ... (or from --first-seed) in pre-set looks (3, 5, 8, "
                           "12, ... seeds) until every primary contrast of the stream "
                           "(benchmarks/contrasts/primary.yaml) is held or not held under group-sequential bounds, "
                           "or --max-seeds is reached (docs/decide.md).")
    ] = False,
    max_seeds: Annotated[
        int | None,
        typer.Option("--max-seeds", metavar="N", help=f"With --decide: the most seeds to run (the last look). "
                     f"Default: {DEFAULT_MAX_SEEDS}.", show_default=False),
    ] = None,
    first_seed: Annotated[
        int | None,
        typer.Option("--first-seed", metavar="S", help="With --decide: start at seed S (S, S+1, ...), e.g. to decide "
                     "on seeds no earlier run has seen. Default: 0.", show_default=False),
    ] = None,
    contrast: Annotated[
        list[str] | None,
        typer.Option("--contrast", metavar="NAME", help="With --decide: the primary contrast of the stream to decide; "
                     "repeatable. Default: all of the stream's.",
                     show_default=False),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", metavar="NAME",
                     help=f"Strategy the others are compared with seed by seed (paired differences). Default: "
                          f"{DEFAULT_REFERENCE}, when the run has it.", show_default=False),
    ] = None,
    preset: Annotated[
        str, typer.Option("--preset", metavar="|".join(PRESETS), help="Model and schedule size.")
    ] = "tiny",
    backbone: Annotated[
        str, typer.Option("--backbone", metavar="|".join(BACKBONES),
                          help="Network family of every strategy and base (the preset sizes it per backbone).")
    ] = "unetr",
    data: Annotated[
        str, typer.Option("--data", metavar="SOURCE", help="Data source: 'synthetic', 'hecktor:DIR' (HECKTOR 2022) "
                          "or 'nnunet:DIR' (a PET/CT dataset in nnU-Net's raw layout with a case table).")
    ] = "synthetic",
    results_dir: Annotated[
        Path, typer.Option("--results-dir", metavar="DIR", help="Folder in which the run folder is created.")
    ] = Path("results"),
    epochs: Annotated[
        int | None,
        typer.Option("--epochs", metavar="N", help="Epochs per experience. Default: the preset's.", show_default=False),
    ] = None,
    device: DeviceOption = "auto",
    precision: PrecisionOption = "fp32",
    plugin: PluginOption = None,
    on_bad_case: OnBadCaseOption = "refuse",
    cache: Annotated[
        Path | None,
        typer.Option("--cache", metavar="DIR", help="Prepared cache of a HECKTOR folder or nnU-Net dataset, if "
                     "'prepare' was given --cache. Default: DIR/.pemma_cache/size<N> (HECKTOR), "
                     "DIR/.pemma_cache/spacing<Z>x<Y>x<X> (nnU-Net).", show_default=False),
    ] = None,
    case_table: CaseTableOption = None,
    survival: Annotated[
        str | None,
        typer.Option("--survival", metavar="TIME,EVENT", help="The case table's survival columns (time, and event: "
                     "1 event, 0 censored), for prognosis experiences on an nnU-Net dataset.", show_default=False),
    ] = None,
    clinical: Annotated[
        str | None,
        typer.Option("--clinical", metavar="COL,COL", help="The case table's clinical columns (numbers), kept on "
                     "each case of an nnU-Net dataset.", show_default=False),
    ] = None,
    spacing: SpacingOption = None,
    eval_on: Annotated[
        str,
        typer.Option("--eval-on", metavar="|".join(EVAL_SPLITS),
                     help="test: train on training+validation cases, report the test cases (the numbers to "
                          "publish). val: train on training cases, report the validation cases (for choosing "
                          "settings; test cases stay unseen)."),
    ] = "test",
    logger: Annotated[
        list[str] | None,
        typer.Option("--logger", metavar="|".join(LOGGERS),
                     help="Avalanche logger every strategy reports to, written under the run folder; repeatable.",
                     show_default=False),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", metavar="|".join(EXECUTORS),
                          help="local: every unit in this process. ray: one Ray task per (seed, strategy) unit "
                               "(pip install 'pemma-cl[ray]').")
    ] = "local",
    ray_address: Annotated[
        str | None,
        typer.Option("--ray-address", metavar="ADDR", help="Ray cluster for --executor ray (e.g. ray://head:10001). "
                     "Default: a local Ray on this machine.", show_default=False),
    ] = None,
    jobs: Annotated[
        str, typer.Option("--jobs", metavar="N|auto",
                          help="--executor local: units (seed, strategy) run at once, each in a process of its own "
                               "with this machine's threads shared out (1: one after the other in this process). "
                               "auto: 2 on a CPU with 2 threads or more, 1 on CUDA.")
    ] = "auto",
    resume: Annotated[
        Path | None,
        typer.Option("--resume", metavar="RUN_DIR",
                     help="Continue an interrupted run (the partial folder it printed) with its own settings. "
                          "Running the same command again does the same.", show_default=False),
    ] = None,
    wide: Annotated[
        bool, typer.Option("--wide", help="Print every column of the summary (about 215 characters wide; summary.md "
                           "has them all) instead of the terminal-width view.")
    ] = False,
) -> None:
    """Train and evaluate strategies on a stream, for one or several seeds.

    Everything is validated before training starts; each finished (seed, strategy) unit is kept, so an
    interrupted run continues when the same command runs again. The last line printed is the run folder.
    """
    if resume is not None:
        given = [param.opts[0] for param in ctx.command.params
                 if param.name not in ("resume", "executor", "ray_address", "jobs", "wide")
                 and getattr(ctx.get_parameter_source(param.name), "name", None) == "COMMANDLINE"]
        if given:
            raise UserError(f"--resume continues with the run's own settings ({resume / 'config.json'}); "
                            f"leave out {', '.join(given)}")
        from pemma_cl.run.work import WorkFolder

        work = WorkFolder.resume(resume)
        config = work.config
    else:
        if stream is None:
            raise UserError("--stream: a stream name or .yaml file is required (or --resume RUN_DIR)")
        registry = registry_with(tuple(plugin or ()))
        spec = load_stream(stream)
        strategies = registry.select(strategy or DEFAULT_STRATEGIES, spec.kinds)
        left_out = registry.unsupported(spec.kinds)
        if "all" in (strategy or ()) and left_out:
            typer.echo(f"--strategy all: left out {', '.join(left_out)} (they train segmentation only; stream "
                       f"'{spec.name}' has prognosis experiences)", err=True)
        options = resolve(registry.entries_named(strategies), read_config_file(config_file) if config_file else {},
                          set_option or (), config_file)
        if reference is not None and reference not in strategies:
            raise UserError(f"--reference: {reference!r} is not one of the run's strategies ({', '.join(strategies)})")
        if decide and getattr(ctx.get_parameter_source("seeds"), "name", None) == "COMMANDLINE":
            raise UserError("--decide: adds seeds itself (0, 1, ... look by look, up to --max-seeds); "
                            "leave out --seeds")
        for option, value in (("--max-seeds", max_seeds), ("--first-seed", first_seed), ("--contrast", contrast)):
            if value is not None and not decide:
                raise UserError(f"{option}: only with --decide")
        if first_seed is not None and first_seed < 0:
            raise UserError(f"--first-seed: expected a non-negative integer, got {first_seed}")
        if decide:
            from pemma_cl.stats.sequential import look_schedule  # scipy

            max_seeds = DEFAULT_MAX_SEEDS if max_seeds is None else max_seeds
            look_schedule(max_seeds)  # below the first look: refused
            first_seed = first_seed or 0
        config = RunConfig(
            stream=spec,
            strategies=strategies,
            seeds=tuple(range(first_seed, first_seed + max_seeds)) if decide else _seed_list(seeds),
            preset=preset,
            backbone=backbone,
            data=data,
            results_dir=results_dir,
            epochs=epochs,
            device=device,
            precision=precision,
            plugin_files=tuple(plugin or ()),
            on_bad_case=on_bad_case,
            cache=cache,
            case_table=case_table,
            survival=column_list(survival, "--survival"),
            clinical=column_list(clinical, "--clinical") or (),
            spacing=parsed_spacing(spacing),
            eval_on=eval_on,
            reference=reference or (DEFAULT_REFERENCE if DEFAULT_REFERENCE in strategies else None),
            loggers=tuple(logger or ()),
            strategy_options=options,
            max_seeds=max_seeds,
            decide_contrasts=tuple(contrast or ()),
        )
        if decide:
            from pemma_cl.run.decide import check_decidable

            check_decidable(config)  # a stream without a primary contrast, or a run without its strategies
        work = None
    if executor not in EXECUTORS:
        raise UserError(f"--executor: expected one of [{', '.join(EXECUTORS)}], got {executor!r}")
    if ray_address is not None and executor != "ray":
        raise UserError("--ray-address: only with --executor ray")
    unit_jobs = _jobs(jobs, executor, ctx.get_parameter_source("jobs"))
    registry = registry_with(config.plugin_files)
    registry.select(config.strategies, config.stream.kinds)

    if executor == "local" and unit_jobs != 1:
        from pemma_cl.run.executors.fork_server import start_worker_server

        start_worker_server()  # the workers' imports, beside the driver's below
    from pemma_cl.run.benchmark import open_work, run_benchmark  # heavy: torch, MONAI, Avalanche

    run_dir = run_benchmark(work or open_work(config), registry, ["pemma-bench", *sys.argv[1:]], executor, ray_address,
                            unit_jobs, wide)
    typer.echo(str(run_dir))


def _experiences(spec: StreamSpec) -> str:
    """``4 experiences: 1 segmentation, 3 prognosis``-style count of a stream's experiences by kind."""
    counts = [f"{spec.kinds.count(kind)} {kind}" for kind in TASK_KINDS if kind in spec.kinds]
    return f"{len(spec.experiences)} experiences: {', '.join(counts)}"


def _jobs(text: str, executor: str, source) -> int | None:
    """``--jobs``: a positive integer, or None for ``auto``; given with ``--executor ray``, a user error."""
    if executor == "ray" and getattr(source, "name", None) == "COMMANDLINE":
        raise UserError("--jobs: only with --executor local (Ray gives each unit one CPU)")
    if text == "auto":
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"--jobs: expected a positive integer or 'auto', got {text!r}")
    return int(text)


def _seed_list(text: str) -> tuple[int, ...]:
    """``"0,1,2"`` -> ``(0, 1, 2)``; anything else than non-negative integers is a user error."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise UserError(f"--seeds: expected non-negative integers separated by commas (e.g. 0,1,2), got {text!r}")
    return tuple(int(part) for part in parts)


app.command(short_help="Write the built-in synthetic cohort to a folder.")(data.synth)
app.command(short_help="Check and cache a HECKTOR or nnU-Net folder.")(data.prepare)
app.command(short_help="Re-draw the plots of a stored run.")(stored.plot)
app.command(short_help="Print the summary of stored runs.")(stored.report)
app.command(short_help="Check the paper's claims against stored runs.")(stored.claims)
app.command("export-challenger", short_help="Write a run's final per-case Dice as CSV.")(
    stored.export_challenger)
app.command(short_help="Seeds a decide run needs, from a pilot run.")(stored.plan)
app.command(short_help="Parameter counts and trainable shares.")(measure.params)
app.command(short_help="Time and memory of a training step.")(measure.profile)


def _echo_table(title: str, rows: list[tuple[str, ...]]) -> None:
    """A titled two-column listing: names, then their texts wrapped to the terminal's width under one indent."""
    typer.echo(f"{title}:")
    if not rows:
        typer.echo("  (none)")
    width = max((len(row[0]) for row in rows), default=0)
    indent = " " * (width + 4)
    text_width = max(console_width() - len(indent), 20)
    for first, *rest in rows:
        text = " ".join(part for part in rest if part)
        lines = textwrap.wrap(text, text_width, break_on_hyphens=False) or [""]
        typer.echo(("  " + first.ljust(width) + "  " + lines[0]).rstrip())
        for line in lines[1:]:
            typer.echo(indent + line)


def main() -> None:
    """Entry point of the ``pemma-bench`` console script."""
    app()
