"""One benchmark run: for each seed, data -> stream -> shared bases -> each strategy -> a unit of the run folder.

Every (seed, strategy) unit is written to the run's partial folder as it finishes (:mod:`pemma_cl.run.work`), so an
interrupted run continues where it stopped; when all units are done the run's tables, plots and claims are
written and the folder is published under its final name.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from pemma_cl.core.errors import UserError
from pemma_cl.core.threads import fit_threads, thread_budget
from pemma_cl.evaluation.final_measures import final_measures_by_strategy
from pemma_cl.evaluation.per_case import CASES_CSV, case_frame, structures_of
from pemma_cl.models.presets import PRESET_CAUTIONS, get_preset
from pemma_cl.report.claims import (
    check_claims,
    claims_json,
    paper_trainable_shares,
    render_claims,
    stored_run,
)
from pemma_cl.report.contrasts import paired_case_intervals
from pemma_cl.report.decisions import render_decisions
from pemma_cl.report.plots.figures import draw_all
from pemma_cl.report.prognosis import summarize_prognosis
from pemma_cl.report.console import print_summary
from pemma_cl.report.seeds import aggregate, render_markdown
from pemma_cl.report.summary import METRIC_COLUMNS, summarize
from pemma_cl.run.config import RunConfig
from pemma_cl.run.decide import run_looks
from pemma_cl.run.executors.processes import run_units_in_processes
from pemma_cl.run.folders import build_manifest, publish, run_name
from pemma_cl.run.unit import check_precision, prepare_run, resolve_device, run_unit, say
from pemma_cl.run.work import CONFIG, PROGRESS, WorkFolder, run_label
from pemma_cl.strategy_api.registry import Registry, StrategyEntry

#: Metric columns read back as floats (a unit file stores an undefined value as null).
FLOAT_COLUMNS: tuple[str, ...] = ("dice", "dice_case_mean", "hd95")


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
    other; see docs/changelog.md, Speed), one on CUDA (one GPU serves one unit at a time best)."""
    if jobs is not None:
        return jobs
    return 1 if resolve_device(device).type == "cuda" else min(2, torch.get_num_threads())


def run_benchmark(work: WorkFolder, registry: Registry, command: list[str], executor: str = "local",
                  ray_address: str | None = None, jobs: int | None = 1, wide: bool = False) -> Path:
    """Run every unfinished (seed, strategy) unit of ``work`` and publish the run folder; returns its path.

    Interrupted (Ctrl-C, an error, a kill, a full disk), the finished units stay in the partial folder and the same
    command (or ``run --resume``) continues; a run that finished no unit leaves nothing behind. The partial folder's
    lock (taken by :func:`open_work` or :meth:`WorkFolder.resume`) is released on the way out.

    Args:
        work: the run's partial folder (:func:`open_work`, or :meth:`WorkFolder.resume`).
        registry: the strategies.
        command: the command line, for the manifest.
        executor: ``local`` (this machine) or ``ray`` (one Ray task per unit, :mod:`pemma_cl.run.executors.ray_cluster`).
        ray_address: the Ray cluster to use; None starts a local one.
        jobs: units at a time of the local executor: 1 in this process, more in worker processes
            (:mod:`pemma_cl.run.executors.processes`); None: two on a CPU, one on CUDA (see :func:`_resolve_jobs`).
        wide: print every column of the summary (about 215 columns) instead of the terminal-width view.
    """
    config = work.config
    jobs = _resolve_jobs(jobs, config.device)
    total = len(config.seeds) * len(config.strategies)
    if work.done_count():
        say(f"resuming {work.root}: {work.done_count()} of {total} units already finished")
    if config.preset == "paper" and resolve_device(config.device).type == "cpu":
        say("the 'paper' preset on a CPU trains for hours to days (an estimate follows the first step); "
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
        return _publish(work, command, {"executor": executor, "jobs": 1 if executor == "ray" else jobs}, decision,
                        wide)
    except BaseException as exc:
        if work.done_count() == 0:
            work.discard()
        else:
            say(f"{work.done_count()} of {total} units finished and kept in {work.root}; run the same command "
                f"again, or 'pemma-bench run --resume {work.root}', to continue")
        if isinstance(exc, OSError):  # a full disk, a quota, a folder made read-only while the run wrote to it
            raise UserError(f"'{exc.filename}': {exc.strerror}" if exc.filename else str(exc)) from exc
        raise
    finally:
        work.release()


def _execute(work: WorkFolder, entries: list[StrategyEntry], executor: str, ray_address: str | None,
             jobs: int) -> None:
    """Run every unfinished unit of ``work`` with the chosen executor, its threads (the driver's, each unit's) sized to
    the machine within this process's thread count (:func:`pemma_cl.core.threads.thread_budget`)."""
    with thread_budget():
        if executor == "ray":
            from pemma_cl.run.executors.ray_cluster import run_units_on_ray  # Ray is an optional extra

            run_units_on_ray(work, entries, ray_address)
        elif jobs > 1:
            run_units_in_processes(work, entries, jobs)
        else:
            _run_units(work, entries)


def _run_units(work: WorkFolder, entries: list[StrategyEntry]) -> None:
    """The local executor: every unfinished unit in this process, seed by seed, each (and a seed's data facts, which
    may train its CT base) at the threads that fit the machine when it starts."""
    config = work.config
    for seed in config.seeds:
        pending = [entry for entry in entries if not work.is_done(seed, entry.name)]
        if not pending:
            continue
        if len(config.seeds) > 1:
            say(f"seed {seed}: {len(pending)} strategies to run")
        fit_threads()
        inputs = prepare_run(config, seed)
        work.save_data(seed, inputs.facts(config.eval_on))
        for entry in pending:
            fit_threads()
            work.save_unit(seed, entry.name, run_unit(config, inputs, entry, work.logs_dir(seed, entry.name)))


def _thread_record(threads: dict[int, dict[str, int | None]]) -> dict[str, Any]:
    """The manifest's record of the torch threads each unit (seed, strategy) ran with: ``threads``, and
    ``threads_per_unit``, the count when every unit ran with the same one (else None)."""
    counts = {count for units in threads.values() for count in units.values()}
    return {"threads_per_unit": counts.pop() if len(counts) == 1 else None, "threads": threads}


def _metric_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=METRIC_COLUMNS).astype({column: float for column in FLOAT_COLUMNS})


@dataclass
class SeedFiles:
    """What :func:`_write_seed` wrote of one seed, for the run's own tables."""

    metrics: pd.DataFrame
    cases: pd.DataFrame
    summary: dict[str, Any]
    prognosis_rows: list[dict[str, Any]]
    references: dict[str, Any]
    predictions: dict[str, Any] | None
    threads: dict[str, int | None]


def _write_seed(work: WorkFolder, seed: int) -> SeedFiles:
    """Write one finished seed's tables (``seeds/seed<S>/``) from its unit files."""
    config = work.config
    units = {name: work.load_unit(seed, name) for name in config.strategies}
    metrics = _metric_frame([row for unit in units.values() for row in unit.rows])
    cases = case_frame([row for unit in units.values() for row in unit.cases])
    summary = summarize(metrics, {n: u.costs for n, u in units.items()}, {n: u.evaluation for n, u in units.items()},
                        cases)
    prognosis_rows = [row for unit in units.values() for row in unit.prognosis]
    references = work.load_data(seed).get("prognosis_references", {})
    seed_summary = aggregate({seed: summary}, config.reference, structures_of(metrics))
    seed_summary["prognosis"] = summarize_prognosis({seed: prognosis_rows}, {seed: references})
    work.write_csv(f"seeds/seed{seed}/metrics.csv", metrics)
    work.write_csv(f"seeds/seed{seed}/{CASES_CSV}", cases)
    work.write_json(f"seeds/seed{seed}/summary.json", summary)
    work.write_text(f"seeds/seed{seed}/summary.md", render_markdown([(f"seed {seed}", seed_summary)]))
    predictions = None
    if prognosis_rows:
        predictions = {n: u.predictions for n, u in units.items()}
        work.write_csv(f"seeds/seed{seed}/prognosis.csv", pd.DataFrame(prognosis_rows))
        work.write_json(f"seeds/seed{seed}/predictions.json", predictions)
    return SeedFiles(metrics, cases, summary, prognosis_rows, references, predictions,
                     {n: u.threads for n, u in units.items()})


def _publish(work: WorkFolder, command: list[str], execution: dict[str, Any],
             decision: dict[str, Any] | None = None, wide: bool = False) -> Path:
    """Write the run's tables, plots, claims and manifest from its unit files, then give it its final name.

    ``decision`` is the record of a ``--decide`` run's looks (:func:`pemma_cl.run.decide.run_looks`), whose ``work``
    holds the seeds it ran; ``wide``: the console shows every column of summary.md.
    """
    config = work.config
    frames, case_frames, per_seed, prognosis_rows, references, predictions, threads = [], [], {}, {}, {}, {}, {}
    for seed in config.seeds:
        files = _write_seed(work, seed)
        per_seed[seed], prognosis_rows[seed], references[seed] = files.summary, files.prognosis_rows, files.references
        threads[seed] = files.threads
        if files.predictions is not None:
            predictions[seed] = files.predictions
        frames.append(files.metrics)
        case_frames.append(files.cases)
    metrics = pd.concat(frames, ignore_index=True)
    summary = aggregate(per_seed, config.reference, structures_of(metrics))
    if len(config.seeds) == 1 and summary["paired"]:  # one seed: the paired differences' case-level intervals
        summary["paired_case_level"] = paired_case_intervals(case_frames[0], summary["paired"], summary["reference"],
                                                             config.seeds[0])
    summary["prognosis"] = summarize_prognosis(prognosis_rows, references)
    cases = pd.concat(case_frames, ignore_index=True)
    summary["final_measures"] = final_measures_by_strategy(cases)
    name = run_name(run_label(config), config.seeds, work.started)
    finished = datetime.now(timezone.utc)
    work.write_json("manifest.json", build_manifest(
        command, config.seeds, str(resolve_device(config.device)), work.started, finished,
        extra={"stream": config.stream.name, "preset": get_preset(config.preset, config.backbone).to_dict(),
               "strategy_options": config.strategy_options, **execution, **_thread_record(threads),
               "attempts": work.progress["attempts"],
               "seeds": {seed: work.load_data(seed) for seed in config.seeds},
               "evaluation": {n: s["evaluation"] for n, s in summary["strategies"].items()},
               **({"decide": decision} if decision is not None else {})}))
    work.write_csv("metrics.csv", metrics)
    work.write_csv(CASES_CSV, cases)
    work.write_json("summary.json", summary)
    work.write_text("summary.md", render_markdown([(name, summary)]))
    draw_all(metrics, summary, work.root / "plots", predictions.get(config.seeds[0]))
    claims = check_claims([stored_run(work.root, config.to_dict(), summary)], paper_trainable_shares())
    work.write_json("claims.json", claims_json(claims))
    work.write_text("claims.md", render_claims(claims))
    if decision is not None:
        work.write_json(CONFIG, config.to_dict())  # the seeds it ran
    (work.root / PROGRESS).unlink()
    final = publish(work.root, work.root.parent, name)
    console = print_summary([(name, summary)], claims, str(final / "claims.md"), wide=wide,
                            caution=PRESET_CAUTIONS.get(config.preset))
    if decision is not None:
        console.print(render_decisions(decision), markup=False, highlight=False, soft_wrap=True)
    return final
