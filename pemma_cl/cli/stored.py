"""The ``pemma-bench`` commands that read a stored run folder: ``plot``, ``report``, ``claims``,
``export-challenger``, ``plan``.

Registered on the app by :mod:`pemma_cl.cli.app`; like every command they import pandas and matplotlib only
when they run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pemma_cl.cli.common import guarded
from pemma_cl.core.errors import UserError

#: Files of a stored run folder (as :mod:`pemma_cl.run.benchmark` writes them) that ``plot`` and ``report`` use.
METRICS_CSV = "metrics.csv"
SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
CLAIMS_MD = "claims.md"
PLOTS_DIR = "plots"
#: Per seed (``seeds/seed<S>/``), the strategies' final prognosis predictions (Kaplan-Meier plots).
PREDICTIONS_JSON = "predictions.json"

RunDirArgument = Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run folder written by 'pemma-bench run'.")]


@guarded
def plot(run_dir: RunDirArgument) -> None:
    """Re-draw the plots of a stored run from its metrics.csv and summary.json (and its first seed's prognosis
    predictions, for a run with prognosis)."""
    metrics = _stored_file(run_dir, METRICS_CSV)
    summary = _stored_json(run_dir, SUMMARY_JSON)
    first_seed = (summary.get("seeds") or [0])[0]
    stored_predictions = f"seeds/seed{first_seed}/{PREDICTIONS_JSON}"
    predictions = _stored_json(run_dir, stored_predictions) if (run_dir / stored_predictions).is_file() else None

    import pandas as pd

    from pemma_cl.report.plots.figures import draw_all

    try:
        frame = pd.read_csv(metrics)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{metrics}: cannot read it as CSV: {exc}") from None
    try:
        paths = draw_all(frame, summary, run_dir / PLOTS_DIR, predictions)
    except UserError as exc:
        raise UserError(f"{run_dir}: {exc}") from None
    for path in paths:
        typer.echo(str(path))


@guarded
def report(
    run_dirs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="Run folders written by 'pemma-bench run'.")],
    reference: Annotated[
        str | None,
        typer.Option("--reference", metavar="NAME", help="Recompute the paired differences against this strategy "
                     "(from each seed's summary). Default: the run's own reference.", show_default=False),
    ] = None,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Print the tables as Markdown (summary.md and claims.md) instead of "
                           "laying them out for the terminal.")
    ] = False,
    wide: Annotated[
        bool, typer.Option("--wide", help="Print every column of the summary instead of the terminal-width view.")
    ] = False,
) -> None:
    """Print the summary of one run (with its claims), or of several runs side by side, as ``run`` prints it."""
    if markdown and len(run_dirs) == 1 and reference is None:
        typer.echo(_stored_file(run_dirs[0], SUMMARY_MD).read_text(encoding="utf-8").rstrip("\n"))
        if (run_dirs[0] / CLAIMS_MD).is_file():
            typer.echo("\n" + (run_dirs[0] / CLAIMS_MD).read_text(encoding="utf-8").rstrip("\n"))
        return

    from pemma_cl.models.presets import PRESET_CAUTIONS
    from pemma_cl.report.claims import check_claims, load_run, paper_trainable_shares
    from pemma_cl.report.console import print_summary
    from pemma_cl.report.seeds import aggregate, check_run_summary, render_markdown

    summaries = []
    for folder in run_dirs:
        summary = _stored_json(folder, SUMMARY_JSON)
        check_run_summary(summary, folder / SUMMARY_JSON)
        if reference is not None:
            if reference not in summary["strategies"]:
                raise UserError(f"--reference: {folder} has no strategy {reference!r} "
                                f"(it has {', '.join(summary['strategies'])})")
            per_seed = {seed: _stored_json(folder, f"seeds/seed{seed}/{SUMMARY_JSON}") for seed in summary["seeds"]}
            summary = aggregate(per_seed, reference, summary.get("structures"))
        summaries.append((folder.name, summary))
    if markdown:
        typer.echo(render_markdown(summaries).rstrip("\n"))
        return
    single = len(run_dirs) == 1 and (run_dirs[0] / CLAIMS_MD).is_file()
    claims = check_claims([load_run(run_dirs[0])], paper_trainable_shares()) if single else []
    presets = {_stored_json(folder, "config.json").get("preset") for folder in run_dirs
               if (folder / "config.json").is_file()}
    cautions = [PRESET_CAUTIONS[name] for name in sorted(presets - {None}) if name in PRESET_CAUTIONS]
    print_summary(summaries, claims, str(run_dirs[0] / CLAIMS_MD), wide=wide, caution="; ".join(cautions) or None)


@guarded
def claims(
    run_dirs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="Run folders written by 'pemma-bench run'.")],
) -> None:
    """Check the paper's claims against one or several stored runs (e.g. one of 'paper' and one of 'paper-ct')."""
    from pemma_cl.report.claims import check_claims, load_run, paper_trainable_shares, render_claims

    runs = [load_run(folder) for folder in run_dirs]  # every folder checked before the heavy imports below
    typer.echo(render_claims(check_claims(runs, paper_trainable_shares())).rstrip("\n"))


@guarded
def export_challenger(
    run_dir: RunDirArgument,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the table to FILE (CSV). Default: standard output.",
                     show_default=False),
    ] = None,
) -> None:
    """Write the final state's per-case Dice (cases.csv.gz) in challengeR's long format: task, case, algorithm,
    value; one task per input setting and structure, missing values as NA (docs/per-case.md)."""
    if not run_dir.is_dir():
        raise UserError(f"run folder '{run_dir}' does not exist")
    if output is not None and (output.is_dir() or not output.parent.is_dir()):
        raise UserError(f"--output '{output}': " + ("is a folder, expected a file" if output.is_dir()
                                                    else f"folder '{output.parent}' does not exist"))

    from pemma_cl.evaluation.per_case import challenger_table, read_cases
    from pemma_cl.run.folders import FolderWriter

    text = challenger_table(read_cases(run_dir)).to_csv(index=False, na_rep="NA")
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        FolderWriter(output.parent).write_text(output.name, text)
    except OSError as exc:
        raise UserError(f"--output '{output}': cannot write it: {exc.strerror or exc}") from None
    typer.echo(str(output))


@guarded
def plan(
    run_dir: RunDirArgument,
    half_width: Annotated[
        float, typer.Option("--half-width", metavar="W", help="Wanted half-width of each primary contrast's 95% "
                            "interval over seeds.")
    ] = 0.03,
) -> None:
    """From a pilot run of 3 seeds or more: each primary contrast's between-seed and case-level variance, and the
    seeds it needs (for the half-width, and to decide at its margin)."""
    from pemma_cl.report.plan import plan_run, render_plan

    typer.echo(render_plan(plan_run(run_dir, half_width), half_width).rstrip("\n"))


def _stored_file(run_dir: Path, file_name: str) -> Path:
    if not run_dir.is_dir():
        raise UserError(f"run folder '{run_dir}' does not exist")
    path = run_dir / file_name
    if not path.is_file():
        raise UserError(f"{path}: not found; expected a run folder written by 'pemma-bench run'")
    return path


def _stored_json(run_dir: Path, file_name: str) -> dict[str, Any]:
    path = _stored_file(run_dir, file_name)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: cannot read it as JSON: {exc}") from None
    if not isinstance(content, dict):
        raise UserError(f"{path}: expected a JSON object")
    return content
