"""``pemma-bench run`` end to end on a micro stream (real training, in a subprocess) and runner reproducibility."""

from __future__ import annotations

import json
import math
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pemma_cl.report.plots.figures import PLOT_FILES
from pemma_cl.report.summary import INPUTS, METRIC_COLUMNS

PEMMA_BENCH = Path(sys.executable).with_name("pemma-bench")
STRATEGIES = ("pemma-lora", "full-finetune")
N_EXPERIENCES = 2
#: Pre-train on HMR (5 cases at the synthetic cohort's scale), then the two smallest other centres.
STREAM_YAML = """\
name: clitest
description: micro end-to-end test stream
pretrain: {centres: [HMR], modalities: [ct]}
experiences:
  - {name: HGJ, centres: [HGJ], modalities: [ct, pet], task: 1}
  - {name: CHUV, centres: [CHUV], modalities: [ct, pet], task: 2}
"""


#: One thread: CPU float sums are bit-equal between processes only at the same thread count.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "COLUMNS": "80"}


def pemma_bench(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(PEMMA_BENCH), *map(str, args)], capture_output=True, text=True, env=ONE_THREAD,
                          timeout=600)


def run_args(stream_file: Path, results: Path) -> list[str]:
    """The command line of every run of this module (one seed, the two strategies, micro preset, CPU)."""
    return ["run", "--stream", str(stream_file), "--preset", "micro", "--seed", "0", "--device", "cpu",
            *[a for s in STRATEGIES for a in ("--strategy", s)], "--results-dir", str(results)]


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("streams") / "clitest.yaml"
    path.write_text(STREAM_YAML, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def two_runs(stream_file, tmp_path_factory) -> tuple[Path, list[SimpleNamespace]]:
    """The same ``pemma-bench run`` command, twice, into one results folder.

    The first run is a fresh ``pemma-bench`` process (it trains and caches the base); the second is the same
    command line through the CLI in this test process (about 10 s of imports cheaper), which reuses the base.
    """
    from typer.testing import CliRunner

    from pemma_cl.cli.app import app

    results = tmp_path_factory.mktemp("results")
    args = run_args(stream_file, results)
    first = pemma_bench(*args)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocess (OMP_NUM_THREADS=1): CPU sums are bit-equal only per thread count
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sys, "argv", ["pemma-bench", *args])
            result = CliRunner().invoke(app, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    second = SimpleNamespace(returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr)
    return results, [SimpleNamespace(returncode=first.returncode, stdout=first.stdout, stderr=first.stderr), second]


def run_folder(done: SimpleNamespace) -> Path:
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


def test_run_exits_zero_and_prints_the_run_folder_last(two_runs) -> None:
    results, runs = two_runs
    folders = [run_folder(done) for done in runs]
    for folder in folders:
        assert folder.is_dir() and folder.parent.resolve() == results.resolve()
        assert folder.name.startswith("clitest-seed0-")
    assert folders[0] != folders[1]
    left = [p.name for p in results.iterdir() if "partial" in p.name]
    assert left == []
    assert sorted(p.name for p in results.iterdir() if not p.name.startswith(".")) == sorted(f.name for f in folders)
    # every strategy (and the base) says after its first step how long its training will take at that pace
    said = []  # progress lines, wrapped to the terminal: a line that starts with a label begins one
    for line in runs[0].stderr.splitlines():
        if line.startswith("[") or not said:
            said.append(line)
        else:
            said[-1] += " " + line.strip()
    estimates = [line for line in said if "first step" in line]
    assert [line.split("]")[0] + "]" for line in estimates] == ["[base ct]", *(f"[{s}]" for s in STRATEGIES)]
    assert all("takes about" in line for line in estimates)


def test_a_one_seed_run_prints_no_verdict_and_plan_refuses_it(two_runs) -> None:
    from typer.testing import CliRunner

    from pemma_cl.cli.app import app

    done = two_runs[1][0]
    # a run prints only the claims it can value: these two strategies value no primary contrast, and none is held
    assert "No primary contrast is valued by this run" in done.stdout and re.search(r"\bheld\b", done.stdout) is None
    # the summary is laid out for the terminal (COLUMNS=80 here): no line is longer, the last (the folder) aside
    assert max(len(line) for line in done.stdout.splitlines()[:-1]) <= 80
    planned = CliRunner().invoke(app, ["plan", str(run_folder(done))])
    assert planned.exit_code == 2 and planned.stdout == ""
    assert planned.stderr.count("\n") == 1
    assert "a plan needs a pilot run of at least 3 seeds, this one has 1" in planned.stderr


def test_run_folder_contents(two_runs, stream_file) -> None:
    folder = run_folder(two_runs[1][0])  # the pemma-bench process
    config = json.loads((folder / "config.json").read_text())
    assert config["strategies"] == list(STRATEGIES) and config["preset"] == "micro" and config["seeds"] == [0]
    assert config["stream"]["name"] == "clitest" and config["reference"] is None

    manifest = json.loads((folder / "manifest.json").read_text())
    assert {"command", "seeds", "versions", "git_hash", "wall_seconds"} <= set(manifest)
    assert manifest["command"][:2] == ["pemma-bench", "run"] and str(stream_file) in manifest["command"]
    assert manifest["seeds"] == [0] and manifest["wall_seconds"] > 0 and manifest["extra"]["attempts"] == 1
    assert manifest["versions"]["torch"] and manifest["versions"]["python"]

    metrics = pd.read_csv(folder / "metrics.csv")
    assert tuple(metrics.columns) == METRIC_COLUMNS
    assert len(metrics) == len(STRATEGIES) * (N_EXPERIENCES + 1) * N_EXPERIENCES * 3 * 3
    assert list(pd.unique(metrics["strategy"])) == list(STRATEGIES) and set(metrics["seed"]) == {0}
    assert set(metrics["trained_through"]) == {-1, 0, 1} and set(metrics["input"]) == set(INPUTS)
    assert set(metrics["centre"]) == {"HGJ", "CHUV"}
    dice = metrics["dice"].dropna()
    assert len(dice) and dice.between(0, 1).all()
    hd95 = metrics["hd95"].dropna()  # mm on the 4 mm synthetic grid; at most the 32^3 volume's diagonal
    assert len(hd95) and hd95.between(0, 4 * 32 * 3**0.5 + 1e-6).all()

    summary = json.loads((folder / "summary.json").read_text())
    assert list(summary["strategies"]) == list(STRATEGIES) and summary["seeds"] == [0]
    for strategy in STRATEGIES:
        for setting in INPUTS:
            estimates = summary["strategies"][strategy]["inputs"][setting]
            assert {"final_dice", "forgetting", "bwt", "final_hd95"} <= set(estimates)
            assert estimates["final_dice"]["n"] == 1 and estimates["final_dice"]["low"] is None  # one seed
    strategies = summary["strategies"]
    assert strategies["pemma-lora"]["costs"]["trainable_pct"] < 100
    assert strategies["full-finetune"]["costs"]["trainable_pct"] == 100
    assert strategies["pemma-lora"]["evaluation"] == "task-aware (task label given)"
    assert strategies["full-finetune"]["evaluation"] == "task-agnostic"
    seed_facts = manifest["extra"]["seeds"]["0"]
    assert seed_facts["evaluated_on"] == "test" and manifest["extra"]["evaluation"]["pemma-lora"].startswith("task-aware")

    sub_run = folder / "seeds" / "seed0"
    assert pd.read_csv(sub_run / "metrics.csv").equals(metrics)
    assert sorted(p.name for p in (sub_run / "units").iterdir()) == sorted(f"{s}.json" for s in STRATEGIES)
    assert json.loads((sub_run / "summary.json").read_text())["pemma-lora"]["inputs"]["ctpet"]["final_dice"] == \
        strategies["pemma-lora"]["inputs"]["ctpet"]["final_dice"]["mean"]
    assert not (folder / "progress.json").exists() and not (sub_run / "logs").exists()  # no --logger, no logs

    claims = json.loads((folder / "claims.json").read_text())
    dice_claim = [c for c in claims if c["claim"].startswith("Dice comparable") and not c["contrast"]]
    assert [c["strategy"] for c in dice_claim] == ["pemma-lora"] and dice_claim[0]["verdict"] == "not tested here"
    assert "early-fusion" in dice_claim[0]["why"]  # this run has no early fusion to compare with
    assert "| Claim (paper) |" in (folder / "claims.md").read_text()

    markdown = (folder / "summary.md").read_text()
    assert all(strategy in markdown for strategy in STRATEGIES)
    for name in PLOT_FILES:
        assert (folder / "plots" / name).read_bytes().startswith(b"\x89PNG")


def _nan_equal(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _mean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def test_metrics_and_summary_are_recomputed_exactly_from_the_per_case_rows(two_runs) -> None:
    """Every Dice-derived number of metrics.csv and summary.json from cases.csv.gz alone, to the bit."""
    check_recomputed_from_cases(run_folder(two_runs[1][0]), N_EXPERIENCES)


def check_recomputed_from_cases(folder: Path, n_experiences: int) -> None:
    """metrics.csv (each structure's R matrix, per-case means, HD95 medians) and summary.json (final Dice,
    forgetting, BWT and FWT per seed, their means over seeds, and the paired differences) of the run in ``folder``,
    recomputed from its cases.csv.gz."""
    from pemma_cl.evaluation.cl_metrics import (backward_transfer, crossfit_forgetting_mean, final_average,
                                                forgetting, forward_transfer)
    from pemma_cl.stats.intervals import t_interval
    from pemma_cl.evaluation.lesions import MEASURES
    from pemma_cl.evaluation.per_case import CASE_COLUMNS, aggregated_dice, read_cases

    cases = read_cases(folder)
    seeds = json.loads((folder / "summary.json").read_text())["seeds"]
    assert tuple(cases.columns) == CASE_COLUMNS and list(pd.unique(cases["seed"])) == seeds
    assert cases.equals(pd.concat([read_cases(folder / "seeds" / f"seed{seed}") for seed in seeds], ignore_index=True))
    assert (cases["ref_voxels"] == cases["tp"] + cases["fn"]).all()
    assert (cases["pred_voxels"] == cases["tp"] + cases["fp"]).all()
    earlier = cases["trained_through"] < n_experiences - 1
    assert cases.loc[earlier, ["hd95", *MEASURES]].isna().all().all()  # final state only
    assert cases.loc[~earlier & (cases["ref_voxels"] > 0), "nsd"].notna().all()
    keys = ["seed", "strategy", "trained_through", "eval_experience", "input"]
    metrics = pd.read_csv(folder / "metrics.csv", float_precision="round_trip").set_index([*keys, "structure"])
    groups = cases.groupby(keys, sort=False)
    assert len(groups) * 3 == len(metrics)
    for key, group in groups:
        per_structure = {s: group[group["structure"] == s] for s in ("GTVp", "GTVn")}
        case_means = {s: _mean(rows["dice"].to_numpy()) for s, rows in per_structure.items()}
        medians = {s: float(np.median(rows["hd95"].dropna())) if rows["hd95"].notna().any() else math.nan
                   for s, rows in per_structure.items()}
        expected = {s: (aggregated_dice(rows), case_means[s], medians[s]) for s, rows in per_structure.items()}
        expected["aggregated"] = (aggregated_dice(group), _mean(np.array(list(case_means.values()))),
                                  _mean(np.array(list(medians.values()))))
        for structure, values in expected.items():
            stored = metrics.loc[(*key, structure)]
            assert stored["n_cases"] == group["case_id"].nunique() == len(per_structure["GTVp"])
            for column, value in zip(("dice", "dice_case_mean", "hd95"), values):
                assert _nan_equal(value, stored[column]), (key, structure, column, value, stored[column])

    values: dict[tuple, dict[int, float]] = {}  # (strategy, input, metric) -> seed -> value
    for (seed, strategy, setting), rows in cases.groupby(["seed", "strategy", "input"]):
        # Final Dice reads every case; forgetting, BWT and FWT the tracked ones (scored at every state of their
        # experience), which are fewer than the test cases here.
        tracked = {exp: set.intersection(*(set(c["case_id"]) for _, c in of_exp.groupby("trained_through")))
                   for exp, of_exp in rows.groupby("eval_experience")}
        assert any(len(ids) < rows.loc[rows["eval_experience"] == exp, "case_id"].nunique()
                   for exp, ids in tracked.items())
        matrices = []
        for only_tracked in (False, True):
            R, baseline = np.full((n_experiences, n_experiences), math.nan), np.full(n_experiences, math.nan)
            for (trained, exp), cell in rows.groupby(["trained_through", "eval_experience"]):
                scored = cell[cell["case_id"].isin(tracked[exp])] if only_tracked else cell
                (baseline if trained == -1 else R[trained])[exp] = aggregated_dice(scored)
            matrices.append((R, baseline))
        (R, _), (T, baseline) = matrices
        recomputed = {"final_dice": final_average(R), "forgetting_max": forgetting(T), "bwt": backward_transfer(T),
                      "fwt_own_start": forward_transfer(T, baseline),
                      "forgetting": crossfit_forgetting_mean(rows, seed=int(seed))}  # the headline: cross-fitted
        seed_summary = json.loads((folder / "seeds" / f"seed{seed}" / "summary.json").read_text())
        for metric, value in recomputed.items():
            assert seed_summary[strategy]["inputs"][setting][metric] == value, (seed, strategy, setting, metric)
            values.setdefault((strategy, setting, metric), {})[seed] = value
    summary = json.loads((folder / "summary.json").read_text())
    reference = summary["reference"]
    for (strategy, setting, metric), by_seed in values.items():
        stored = summary["strategies"][strategy]["inputs"][setting][metric]
        assert stored == t_interval(by_seed.values()).as_dict(), (strategy, setting, metric)
        if reference is not None and strategy != reference:
            differences = [v - values[(reference, setting, metric)][seed] for seed, v in by_seed.items()]
            assert summary["paired"][strategy][setting][metric] == t_interval(differences).as_dict()


def test_second_run_reuses_the_cached_base_and_reproduces_the_metrics(two_runs) -> None:
    results, (first, second) = two_runs
    cached = sorted((results / ".cache").glob("base-ct-micro-seed0-*.pt"))
    assert len(cached) == 1
    assert not list((results / ".cache").glob("*.partial"))
    assert "[base ct]" in first.stderr and "[base ct]" not in second.stderr  # trained once, then loaded
    a = pd.read_csv(run_folder(first) / "metrics.csv")
    b = pd.read_csv(run_folder(second) / "metrics.csv")
    assert a.drop(columns=["dice", "dice_case_mean", "hd95"]).equals(b.drop(columns=["dice", "dice_case_mean", "hd95"]))
    mismatch = a[~((a["dice"] == b["dice"]) | (a["dice"].isna() & b["dice"].isna()))]
    assert mismatch.empty, f"{len(mismatch)} dice values differ between identical runs:\n{mismatch.head()}"


def test_a_killed_run_resumes_only_its_unfinished_units(two_runs, stream_file, tmp_path: Path) -> None:
    """``kill -9`` while the second strategy runs; the same command again runs only that strategy, and the run
    folder equals the uninterrupted run's (metric rows, tables, plots; wall-clock timings aside)."""
    results = tmp_path / "results"
    args = run_args(stream_file, results)
    with subprocess.Popen([str(PEMMA_BENCH), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env=ONE_THREAD) as process:
        for line in process.stderr:
            if line.startswith(f"[{STRATEGIES[1]}]"):
                process.kill()
                break
        process.wait()
    assert process.returncode == -9
    [partial] = [p for p in results.iterdir() if ".partial-" in p.name]
    assert [p.name for p in (partial / "seeds/seed0/units").iterdir()] == [f"{STRATEGIES[0]}.json"]

    done = pemma_bench(*args)
    assert f"1 of {len(STRATEGIES)} units already finished" in done.stderr
    assert f"[{STRATEGIES[0]}]" not in done.stderr and f"[{STRATEGIES[1]}]" in done.stderr
    resumed, uninterrupted = run_folder(done), run_folder(two_runs[1][0])
    assert not partial.exists()
    for name in ["metrics.csv", "seeds/seed0/metrics.csv", "cases.csv.gz", "claims.md",
                 *(f"plots/{p}" for p in PLOT_FILES)]:
        assert (resumed / name).read_bytes() == (uninterrupted / name).read_bytes(), name
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (resumed, uninterrupted)]
    for summary in summaries:
        for entry in summary["strategies"].values():
            del entry["costs"]["train_seconds"]
    assert summaries[0] == summaries[1]
    assert json.loads((resumed / "manifest.json").read_text())["extra"]["attempts"] == 2


def test_a_ray_run_gives_the_rows_of_a_local_run(two_runs, stream_file, tmp_path: Path) -> None:
    """The same run with ``--executor ray`` (a local Ray; each task one CPU, as the local run's one thread) writes
    the same metric rows, tables and plots."""
    done = pemma_bench(*run_args(stream_file, tmp_path / "results"), "--executor", "ray")
    ray_run, local_run = run_folder(done), run_folder(two_runs[1][0])
    for name in ["metrics.csv", "cases.csv.gz", "claims.md", *(f"plots/{p}" for p in PLOT_FILES)]:
        assert (ray_run / name).read_bytes() == (local_run / name).read_bytes(), name
    assert json.loads((ray_run / "manifest.json").read_text())["extra"]["executor"] == "ray"


def test_an_unwritable_results_folder_fails_before_any_training(stream_file, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    done = pemma_bench(*run_args(stream_file, blocker / "results"))
    assert done.returncode == 2 and "[base ct]" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: --results-dir '{blocker / 'results'}': cannot write")
    done = pemma_bench(*run_args(stream_file, blocker))
    assert done.stderr.strip() == f"error: --results-dir '{blocker}': is a file, expected a folder"


def test_unknown_strategy_exits_2_without_a_run_folder(stream_file, tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = pemma_bench("run", "--stream", stream_file, "--preset", "micro", "--strategy", "nope",
                       "--results-dir", results)
    assert done.returncode == 2
    assert done.stderr.startswith("error: unknown strategy 'nope'") and "pemma-lora" in done.stderr
    assert done.stdout == ""
    assert not results.exists() or not any(results.iterdir())


def test_training_a_shared_base_leaves_the_global_random_state_alone(stream_data, micro_preset, tmp_path) -> None:
    """Training the base (first run) and loading it from the cache (later runs) leave the same global RNG state.

    ``run_strategy`` seeds the global generators, then the strategy's build asks for the base (trained on the
    first request) and initialises its own modules from the global generators: if training consumed them, a
    run that trains the base and a run that loads it would build different models.
    """
    import torch

    from pemma_cl.run.unit import seed_everything
    from pemma_cl.training.bases import SharedBases

    def draws_after_get() -> tuple:
        seed_everything(0)
        SharedBases(micro_preset, stream_data.pretrain_cases, 0, torch.device("cpu"), cache_dir=tmp_path,
                    data_key="rng-test", num_classes=3).get("ct")
        return torch.rand(4), np.random.rand(4), random.random()

    trained = draws_after_get()
    assert len(list(tmp_path.glob("base-ct-*.pt"))) == 1
    loaded = draws_after_get()
    assert torch.equal(trained[0], loaded[0]), "training the base consumed torch's global RNG"
    assert np.array_equal(trained[1], loaded[1]), "training the base consumed NumPy's global RNG"
    assert trained[2] == loaded[2], "training the base consumed Python's global RNG"


def test_a_run_in_two_worker_processes_gives_the_rows_of_a_sequential_run(two_runs, stream_file,
                                                                          tmp_path: Path) -> None:
    """``--jobs 2``: the two units in two worker processes, each with one thread (the driver's one thread shared
    out, at least one), as the sequential run's: the same metric rows, tables and plots."""
    done = pemma_bench(*run_args(stream_file, tmp_path / "results"), "--jobs", "2")
    parallel, sequential = run_folder(done), run_folder(two_runs[1][0])
    for name in ["metrics.csv", "cases.csv.gz", "claims.md", *(f"plots/{p}" for p in PLOT_FILES)]:
        assert (parallel / name).read_bytes() == (sequential / name).read_bytes(), name
    extra = json.loads((parallel / "manifest.json").read_text())["extra"]
    assert (extra["executor"], extra["jobs"], extra["threads_per_unit"]) == ("local", 2, 1)
    assert json.loads((sequential / "manifest.json").read_text())["extra"]["jobs"] == 1


def test_a_unit_failing_in_a_worker_process_is_a_one_line_error(stream_file, tmp_path: Path) -> None:
    """A strategy whose build raises, run in a worker process (``--jobs 2``): the driver stops the workers and
    prints the unit's error on one line, exit code 2, no traceback, and publishes no run folder."""
    plugin = Path(__file__).parent / "plugins" / "example_plugin.py"
    args = ["run", "--stream", str(stream_file), "--preset", "micro", "--seed", "0", "--device", "cpu",
            "--strategy", "pemma-lora", "--strategy", "example-plugin", "--plugin", str(plugin),
            "--results-dir", str(tmp_path / "results"), "--jobs", "2"]
    done = pemma_bench(*args)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1].startswith("error: strategy 'example-plugin' (file:")
    assert "failed to build: NotImplementedError" in done.stderr.splitlines()[-1]
    assert [p.name for p in (tmp_path / "results").iterdir() if not p.name.startswith(".")] == []


def test_the_ray_driver_saves_finished_units_before_it_trains_the_next_seeds_bases() -> None:
    """Between seeds the Ray driver saves every unit already finished and nothing else; at the end it blocks for
    the rest (a stand-in for Ray's wait/get: which tasks are done is the only thing the driver may act on)."""
    from pemma_cl.run.executors.ray_cluster import _save_finished
    from pemma_cl.run.work import UnitResult

    result = UnitResult(rows=[], costs={}, evaluation="task-agnostic").to_dict()
    finished = {"a"}

    def wait(refs, num_returns, timeout):
        ready = [ref for ref in refs if ref in finished][:num_returns]
        if timeout is None and not ready:
            ready = refs[:1]  # blocking: the next one to finish
        return ready, [ref for ref in refs if ref not in ready]

    fake_ray = SimpleNamespace(wait=wait, get=lambda ref: result)
    saved = []
    work = SimpleNamespace(save_unit=lambda seed, name, unit: saved.append((seed, name)))
    pending = {"a": (0, "pemma-lora"), "b": (0, "full-finetune")}
    _save_finished(fake_ray, pending, work, wait=False)
    assert saved == [(0, "pemma-lora")] and pending == {"b": (0, "full-finetune")}
    _save_finished(fake_ray, pending, work, wait=False)  # nothing else finished: nothing saved, nothing dropped
    assert saved == [(0, "pemma-lora")] and pending == {"b": (0, "full-finetune")}
    _save_finished(fake_ray, pending, work, wait=True)
    assert saved == [(0, "pemma-lora"), (0, "full-finetune")] and pending == {}


def test_the_python_api_gives_the_rows_of_run(two_runs, stream_file) -> None:
    """`pemma_cl.scenario` + `Scenario.strategy` + a user's own loop reproduce `pemma-bench run`'s rows."""
    import torch

    import pemma_cl

    results, runs = two_runs
    expected = pd.read_csv(run_folder(runs[0]) / "metrics.csv")
    expected = expected[expected["strategy"] == "full-finetune"].reset_index(drop=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the run (OMP_NUM_THREADS=1)
    try:
        bm = pemma_cl.scenario(stream_file, seed=0, preset="micro", results_dir=results, device="cpu")
        scorer = bm.scorer("full-finetune")
        strategy = bm.strategy("full-finetune", scorer)
        strategy.eval(bm.scored_after(-1))
        for i, experience in enumerate(bm.train_stream):
            strategy.train(experience)
            strategy.eval(bm.scored_after(i))
    finally:
        torch.set_num_threads(threads)
    got = pd.DataFrame(scorer.rows, columns=METRIC_COLUMNS)
    pd.testing.assert_frame_equal(got[list(METRIC_COLUMNS)], expected[list(METRIC_COLUMNS)], check_dtype=False)
    cases = pd.read_csv(run_folder(runs[0]) / "cases.csv.gz", keep_default_na=False, na_values=[""])
    cases = cases[cases["strategy"] == "full-finetune"].reset_index(drop=True)
    pd.testing.assert_frame_equal(scorer.cases.reset_index(drop=True), cases, check_dtype=False)


def test_jobs_auto_runs_one_unit_at_a_time_on_cuda_and_two_on_a_cpu(monkeypatch) -> None:
    import torch

    from pemma_cl.run.benchmark import _resolve_jobs

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)
    assert _resolve_jobs(None, "auto") == _resolve_jobs(None, "cuda") == 1  # one GPU serves one unit at a time
    assert _resolve_jobs(None, "cpu") == 2 and _resolve_jobs(3, "cuda") == 3  # a number given is kept
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _resolve_jobs(None, "auto") == 2
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert _resolve_jobs(None, "auto") == 1


def test_a_unit_scores_only_the_states_the_metrics_need(tiny_cohort, micro_stream_spec, ctx_settings) -> None:
    """Three experiences: the base and the final state score every experience, the state after experience ``i``
    experiences ``0 .. i + 1``; so the state after the first never scores the third (the matrix's top-right cell)."""
    from dataclasses import replace

    from pemma_cl.data.splits import split_cases
    from pemma_cl.run.unit import run_strategy
    from pemma_cl.strategy_api.registry import load_registry
    from pemma_cl.streams.build import build_stream
    from pemma_cl.streams.spec import ExperienceSpec

    third = ExperienceSpec(name="HMR", centres=("HMR",), modalities=("ct", "pet"), task=3)
    spec = replace(micro_stream_spec, experiences=(*micro_stream_spec.experiences, third))
    stream = build_stream(spec, *split_cases(tiny_cohort, 0).for_evaluation_on("test"))
    unit = run_strategy(load_registry().get("full-finetune"), stream, {**ctx_settings, "task_labels": [1, 2, 3]})
    scored = {(row["trained_through"], row["eval_experience"]) for row in unit.rows}
    assert scored == {(i, j) for i in range(-1, 3) for j in range(3)} - {(0, 2)}
