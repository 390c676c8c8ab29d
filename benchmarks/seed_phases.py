"""One seed of the declared Dice decide run, broken into phases: the wall and CPU seconds of each.

Runs the units of ``pemma-bench run --stream centers --strategy pemma-lora --strategy early-fusion --seed S`` (the
strategies of the ``dice-vs-early-fusion`` contrast, ``benchmarks/contrasts/primary.yaml``) with the local executor
(``--jobs 1``: every phase in this one process, so its CPU time is this process's) and times each phase:

* ``start-up``: the interpreter, from the process's creation (``/proc/self/stat``) to this script's first line;
* ``imports``: torch, MONAI, Avalanche, peft and the suite's runner;
* ``data``: the cohort, its split and the stream (:func:`pemma_cl.run.unit.prepare_run`, less what it trains);
* ``base``: the shared bases, trained (a decide seed trains its own: the default) or loaded (``--cached``: another
  process trains them first, untimed);
* ``training``: the strategies' ``train`` calls;
* ``evaluation``: their ``eval`` calls;
* ``writing``: unit files, the seed's and the run's tables, plots, claims and the published folder;
* ``other``: the rest (building the strategies, choosing threads, reading the registry).

A phase called inside another (a base trained while a strategy is built) counts for itself only. CPU seconds are
``time.process_time`` (every thread of this process); on a shared machine wall seconds move with the load, CPU seconds
much less (the JSON records the load average before and after)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seed_phases.py --preset micro
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seed_phases.py --preset tiny --scored-cells final:ctpet --results R
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seed_phases.py --preset tiny --cached --label six \
        --strategy pemma-lora --strategy pemma-dora --strategy pemma-lora-shared --strategy pemma-dora-shared \
        --strategy full-finetune --strategy early-fusion

``--scored-cells`` scores only those cells, as a decide run of the Dice contrast would (``final:ctpet``); ``--results``
keeps the results folder, whose cached bases the next call with the same folder loads. The JSON holds one record
per label (default the preset; a new call replaces that label's record and keeps the others).
"""

from __future__ import annotations

import os
import time

_FIRST_LINE = (time.time(), time.process_time())  # before any other import: the end of start-up

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

#: The phases, in the order of the table.
PHASES: tuple[str, ...] = ("start-up", "imports", "data", "base", "training", "evaluation", "writing", "other")
#: The declared Dice decide run's strategies (contrast dice-vs-early-fusion).
STRATEGIES: tuple[str, ...] = ("pemma-lora", "early-fusion")
DEFAULT_OUT = Path("results/benchmarks/seed_phases.json")


def process_start_wall() -> float:
    """When this process was created, as a ``time.time()`` value (from ``/proc``: Linux only)."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open("/proc/self/stat", encoding="ascii") as file:
        started = int(file.read().rpartition(")")[2].split()[19]) / ticks  # field 22: start time after boot
    with open("/proc/uptime", encoding="ascii") as file:
        uptime = float(file.read().split()[0])
    return time.time() - uptime + started


class PhaseClock:
    """Wall and CPU seconds per phase; a phase entered inside another pauses the outer one (exclusive times)."""

    def __init__(self) -> None:
        self.seconds = {phase: [0.0, 0.0] for phase in PHASES}
        self._stack: list[str] = []
        self._mark = (time.perf_counter(), time.process_time())

    def _charge(self) -> None:
        now = (time.perf_counter(), time.process_time())
        if self._stack:
            totals = self.seconds[self._stack[-1]]
            totals[0] += now[0] - self._mark[0]
            totals[1] += now[1] - self._mark[1]
        self._mark = now

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._charge()
        self._stack.append(name)
        try:
            yield
        finally:
            self._charge()
            self._stack.pop()

    def wrap(self, owner: Any, attribute: str, name: str, unless: tuple[str, ...] = ()) -> None:
        """Time every call of ``owner.attribute`` as phase ``name``, except inside a phase of ``unless`` (a base's
        own training loop stays the base's)."""
        original = getattr(owner, attribute)

        def timed(*args, **kwargs):
            if self._stack and self._stack[-1] in unless:
                return original(*args, **kwargs)
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_seed(preset: str, seed: int, results: Path, clock: PhaseClock, strategies: tuple[str, ...] = STRATEGIES,
             scored_cells: tuple[tuple[str, str], ...] = ()) -> str | None:
    """The seed's units and its published run folder, with the phases timed; None, or with ``scored_cells`` the error
    that stopped the writing (the units are timed and kept in the partial folder)."""
    with clock.phase("imports"):
        import pemma_cl.run.benchmark as benchmark
        from pemma_cl.run.config import RunConfig
        from pemma_cl.run.work import WorkFolder
        from pemma_cl.strategy_api.registry import load_registry
        from pemma_cl.streams.spec import load_stream
        from pemma_cl.training.bases import SharedBases
        from pemma_cl.training.template import SegmentationTemplate

    with clock.phase("other"):
        clock.wrap(benchmark, "prepare_run", "data")
        clock.wrap(SharedBases, "_weights_of", "base")
        clock.wrap(SegmentationTemplate, "train", "training", unless=("base",))
        clock.wrap(SegmentationTemplate, "eval", "evaluation", unless=("base",))
        for attribute in ("save_unit", "save_data"):
            clock.wrap(WorkFolder, attribute, "writing")
        for attribute in ("_write_seed", "_publish"):
            clock.wrap(benchmark, attribute, "writing")
        config = RunConfig(stream=load_stream("centers"), strategies=strategies, seeds=(seed,), preset=preset,
                           results_dir=results, device="cpu",
                           reference="early-fusion" if "early-fusion" in strategies else None,
                           **({"scored_cells": scored_cells} if scored_cells else {}))  # (a checkout before the field)
        registry = load_registry()
        work = benchmark.open_work(config)
        try:
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):  # the console summary
                benchmark.run_benchmark(work, registry, ["benchmarks/seed_phases.py"], jobs=1)
        except Exception as exc:  # noqa: BLE001 - a run of some cells only: the summary may not take them yet
            if not scored_cells:
                raise
            return f"{type(exc).__name__}: {exc}"
    return None


def train_bases(preset: str, seed: int, results: Path, strategies: tuple[str, ...]) -> None:
    """The seed's bases trained into ``results/.cache`` by a run in another process (untimed)."""
    command = [str(Path(sys.executable).with_name("pemma-bench")), "run", "--stream", "centers", "--preset", preset,
               "--seed", str(seed), "--results-dir", str(results), "--jobs", "1", "--device", "cpu",
               *[option for name in strategies for option in ("--strategy", name)]]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def table(record: dict[str, Any]) -> str:
    """The phases as a Markdown table."""
    total_wall = sum(entry["wall_s"] for entry in record["phases"].values())
    total_cpu = sum(entry["cpu_s"] for entry in record["phases"].values())
    lines = ["| phase | wall (s) | CPU (s) | share of wall |", "| --- | ---: | ---: | ---: |"]
    for phase, entry in record["phases"].items():
        lines.append(f"| {phase} | {entry['wall_s']:.1f} | {entry['cpu_s']:.1f} | {entry['wall_s'] / total_wall:.0%} |")
    lines.append(f"| **seed** | **{total_wall:.1f}** | **{total_cpu:.1f}** | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="micro", choices=("micro", "tiny"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cached", action="store_true",
                        help="train the seed's bases first, untimed, so that the timed seed loads them")
    parser.add_argument("--strategy", action="append", dest="strategies",
                        help=f"a strategy of the run; repeatable (default: {', '.join(STRATEGIES)})")
    parser.add_argument("--scored-cells", default="",
                        help="GROUP:INPUT,...: the cells the run scores (RunConfig.scored_cells), e.g. final:ctpet as a "
                             "decide run of the Dice contrast would; default every cell")
    parser.add_argument("--results", type=Path, default=None,
                        help="results folder kept after the call (its .cache of bases is reused by the next call); "
                             "default a temporary one")
    parser.add_argument("--label", default=None, help="the record's key in the JSON (default the preset)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    strategies = tuple(args.strategies or STRATEGIES)
    scored = tuple(tuple(cell.split(":")) for cell in args.scored_cells.split(",") if cell)
    started = process_start_wall()
    clock = PhaseClock()
    clock.seconds["start-up"] = [_FIRST_LINE[0] - started, _FIRST_LINE[1]]
    load_before = load_average()
    with contextlib.ExitStack() as stack:
        folder = args.results or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="seed-phases-")))
        cached_before = (folder / ".cache").is_dir()
        if args.cached and not cached_before:
            train_bases(args.preset, args.seed, folder, strategies)
            shutil.rmtree(next(folder.glob("centers-*")))
            clock = _restarted(clock)
        failed = run_seed(args.preset, args.seed, folder, clock, strategies, scored)
    import torch

    record = {
        "preset": args.preset, "seed": args.seed, "strategies": list(strategies), "stream": "centers",
        "scored_cells": [list(cell) for cell in scored] or "every cell",
        **({"writing_failed": failed} if failed else {}),
        "bases": "loaded from the cache" if args.cached or cached_before else "trained (a decide seed trains its own)",
        "executor": "local, --jobs 1 (one process)", "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "pemma_threads": os.environ.get("PEMMA_THREADS"),
        "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
        "load_average_before": load_before, "load_average_after": load_average(), "commit": git_commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "phases": {phase: {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
                   for phase, (wall, cpu) in clock.seconds.items()},
    }
    print(table(record))
    records = json.loads(args.out.read_text(encoding="utf-8")) if args.out.is_file() else {}
    records[args.label or args.preset + ("-cached" if args.cached else "")] = record
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from pemma_cl.core.files import write_atomically

    text = json.dumps(records, indent=2) + "\n"
    write_atomically(args.out, lambda file: file.write(text.encode()))


def _restarted(clock: PhaseClock) -> PhaseClock:
    """A clock with ``clock``'s start-up, timing the rest from now (the bases were trained meanwhile)."""
    fresh = PhaseClock()
    fresh.seconds["start-up"] = list(clock.seconds["start-up"])
    return fresh

if __name__ == "__main__":
    main()
