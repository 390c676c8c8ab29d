"""The default run on an idle machine and with one core busy, at torch's default threads and at the suite's own.

Runs ``pemma-bench run --stream centers`` (or ``--stream``/``--preset``/``--epochs``) four times, back to back, each in
a results folder of its own: for each thread policy, once on the idle machine and once with one core held by a plain
Python busy loop (a subprocess started before the run and stopped after it). The policies:

* ``torch default``: ``PEMMA_THREADS`` set to ``os.cpu_count()``, which gives what the suite did before it sized its
  threads (the driver at every core, each of ``--jobs`` units at ``cores // jobs``);
* ``suite's choice``: ``PEMMA_THREADS`` unset (:mod:`pemma_cl.core.threads`).

``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` are left out of every run's environment. Each run trains its shared bases,
as a fresh clone's ``make bench`` does (``--cached-base``: one run first trains them into a cache every timed run
starts from). It prints the wall times and the busy/idle ratio of each policy, and writes them as JSON with each
run's thread record (its manifest's ``threads``) and the cores free just before it started. With ``--step`` it also
times one training step (``pemma-bench profile``) with one core busy: at torch's default threads, at one thread and
at the suite's choice::

    .venv/bin/python benchmarks/busy_machine.py                                   # the default run: long
    .venv/bin/python benchmarks/busy_machine.py --preset micro --epochs 1 --step --out /tmp/busy.json

Another job on the machine changes every number: the JSON records the cores free before each run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pemma_cl.core.files import write_atomically
from pemma_cl.core.threads import ENV, free_cores

#: The thread policies: name -> the value of PEMMA_THREADS (None: unset, the suite chooses).
POLICIES: dict[str, str | None] = {"torch default": str(os.cpu_count() or 1), "suite's choice": None}
#: The loads each policy runs under, back to back.
LOADS: tuple[str, ...] = ("idle", "one core busy")
#: The step measurement's policies: the two above and one thread, the target's reference.
STEP_POLICIES: dict[str, str | None] = {"torch default": POLICIES["torch default"], "one thread": "1",
                                        "suite's choice": None}
#: Strategies whose training step is timed.
STEP_STRATEGIES: tuple[str, ...] = ("full-finetune", "pemma-lora")
PEMMA_BENCH = Path(sys.executable).with_name("pemma-bench")


@contextlib.contextmanager
def one_core_busy(busy: bool) -> Iterator[None]:
    """With ``busy``, a Python busy loop in a subprocess for the block's duration; else nothing."""
    if not busy:
        yield
        return
    loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let the scheduler see it before the run samples the free cores
        yield
    finally:
        loop.kill()
        loop.wait()


def environment(threads: str | None) -> dict[str, str]:
    """This process's environment without thread settings, with ``PEMMA_THREADS`` set to ``threads`` (if any)."""
    env = {k: v for k, v in os.environ.items() if k not in (ENV, "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    return env if threads is None else {**env, ENV: threads}


def pemma_bench(args: list[str], env: dict[str, str], log: Path) -> tuple[float, str]:
    """``pemma-bench ARGS``: its wall seconds and its stdout (stderr goes to ``log``).

    Raises:
        SystemExit: if it fails (its log's last lines printed).
    """
    started = time.perf_counter()
    with open(log, "w", encoding="utf-8") as err:
        done = subprocess.run([str(PEMMA_BENCH), *args], env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pemma-bench {' '.join(args)} failed ({done.returncode}):\n"
                         + "\n".join(log.read_text(encoding="utf-8").splitlines()[-20:]))
    return seconds, done.stdout


def run_args(args: argparse.Namespace, results: Path, epochs: int | None = None) -> list[str]:
    """The timed command (``epochs`` replaces ``--epochs``)."""
    epochs = args.epochs if epochs is None else epochs
    return ["run", "--stream", args.stream, "--preset", args.preset, *(["--epochs", str(epochs)] if epochs else []),
            "--results-dir", str(results)]


def time_runs(args: argparse.Namespace, work: Path) -> list[dict]:
    """The four runs (policy x load), each in ``work/<policy>-<load>``."""
    cache = None
    if args.cached_base:
        primer = work / "primer"
        # One strategy for one epoch: the bases do not depend on the strategies or on --epochs.
        pemma_bench([*run_args(args, primer, epochs=1), "--strategy", "early-fusion"], environment(None),
                    work / "primer.log")
        cache = primer / ".cache"
    runs = []
    for policy, threads in POLICIES.items():
        for load in LOADS:
            results = work / f"{policy}-{load}".replace(" ", "-").replace("'", "")
            results.mkdir(parents=True)
            if cache is not None:
                shutil.copytree(cache, results / ".cache")
            with one_core_busy(load != "idle"):
                free = free_cores(set(os.sched_getaffinity(0)))
                seconds, stdout = pemma_bench(run_args(args, results), environment(threads), results / "stderr.log")
            manifest = json.loads((Path(stdout.strip().splitlines()[-1]) / "manifest.json").read_text())["extra"]
            runs.append({"policy": policy, "load": load, "PEMMA_THREADS": threads, "wall_s": round(seconds, 1),
                         "free_cores_before": free, "threads_per_unit": manifest.get("threads_per_unit"),
                         "threads": manifest.get("threads"), "jobs": manifest.get("jobs")})
            print(f"{policy:15} {load:14} {seconds:8.1f} s", file=sys.stderr, flush=True)
    return runs


def time_steps(args: argparse.Namespace, work: Path) -> list[dict]:
    """One training step (``pemma-bench profile``) of each strategy with one core busy, under each step policy."""
    rows = []
    strategies = [a for name in STEP_STRATEGIES for a in ("--strategy", name)]
    for policy, threads in STEP_POLICIES.items():
        out = work / f"profile-{len(rows)}.json"
        with one_core_busy(True):
            pemma_bench(["profile", "--preset", args.preset, "--device", "cpu", *strategies, "--out", str(out)],
                        environment(threads), work / f"profile-{len(rows)}.log")
        for row in json.loads(out.read_text())["rows"]:
            rows.append({"policy": policy, "strategy": row["strategy"], "threads": row.get("threads"),
                         "train_step_ms": row["train_step_ms"], "eval_ms_per_case": row["eval_ms_per_case"]})
    return rows


def run_table(runs: list[dict]) -> tuple[list[str], dict[str, float]]:
    """The lines of the runs' table and each policy's busy/idle ratio."""
    wall = {(run["policy"], run["load"]): run["wall_s"] for run in runs}
    ratios = {policy: wall[policy, LOADS[1]] / wall[policy, LOADS[0]] for policy in POLICIES}
    lines = [f"{'threads':15}{'idle s':>10}{'busy s':>10}{'busy/idle':>11}{'threads per unit (idle, busy)':>32}"]
    for policy in POLICIES:
        units = [run["threads_per_unit"] for run in runs if run["policy"] == policy]
        lines.append(f"{policy:15}{wall[policy, LOADS[0]]:>10.1f}{wall[policy, LOADS[1]]:>10.1f}"
                     f"{ratios[policy]:>10.2f}x{str(tuple(units)):>32}")
    return lines, ratios


def step_table(rows: list[dict]) -> list[str]:
    """The lines of the step table: each strategy's step under each policy, and the suite's over one thread's."""
    step = {(row["policy"], row["strategy"]): row for row in rows}
    lines = [f"{'strategy':15}" + "".join(f"{policy + ' ms':>20}" for policy in STEP_POLICIES)
             + f"{'suite / one thread':>20}"]
    for name in STEP_STRATEGIES:
        cells = "".join(f"{step[p, name]['train_step_ms']:>14,.0f} ({step[p, name]['threads']} t)"
                        for p in STEP_POLICIES)
        ratio = step["suite's choice", name]["train_step_ms"] / step["one thread", name]["train_step_ms"]
        lines.append(f"{name:15}{cells}{ratio:>19.2f}x")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", default="centers")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per experience (default: the preset's)")
    parser.add_argument("--cached-base", action="store_true", help="every timed run starts from cached bases")
    parser.add_argument("--step", action="store_true", help="also time a training step with one core busy")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/busy_machine.json"))
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="busy-machine-") as folder:
        work = Path(folder)
        runs = time_runs(args, work)
        steps = time_steps(args, work) if args.step else []
    lines, ratios = run_table(runs)
    print(f"pemma-bench {' '.join(run_args(args, Path('RESULTS')))}, {os.cpu_count()} CPUs, back to back:")
    print("\n".join(lines))
    if steps:
        print(f"\none training step ('{args.preset}' preset, pemma-bench profile), one core busy:")
        print("\n".join(step_table(steps)))
    record = {"stream": args.stream, "preset": args.preset, "epochs": args.epochs, "cached_base": args.cached_base,
              "cpu_count": os.cpu_count(), "runs": runs, "busy_over_idle": ratios, "steps": steps}
    text = json.dumps(record, indent=2) + "\n"
    write_atomically(args.out, lambda file: file.write(text.encode()))
    print(args.out)


if __name__ == "__main__":
    main()
