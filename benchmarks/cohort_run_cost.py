"""What a run costs on a cohort of whole, non-cubic volumes in nnU-Net's raw layout: wall time and peak memory.

Writes the synthetic torso dataset of ``benchmarks/prepare_throughput.py`` (``--cases`` cases of about 96 x 56 x 72
voxels at 4 mm, one label ``lesion``, two centres x two tracers), a four-experience stream that selects by centre and
tracer, prepares the dataset, then times ``pemma-bench run`` on it (the default strategies at ``tiny`` unless told
otherwise) as a child process. Peak memory is the largest resident set of the run and its worker processes
(``getrusage(RUSAGE_CHILDREN)``, Linux: kilobytes). It prints a table and writes JSON (default
``results/benchmarks/cohort_run_cost.json``) with the machine's load around the run: other jobs change every number::

    .venv/bin/python benchmarks/cohort_run_cost.py                                   # 48 cases, tiny, six strategies
    .venv/bin/python benchmarks/cohort_run_cost.py --cases 16 --preset micro --epochs 1 --strategy full-finetune
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_throughput import write_dataset  # noqa: E402  (the same synthetic torso cohort)

from pemma_cl.core.files import write_atomically  # noqa: E402
from pemma_cl.data.nnunet.prepare import prepare_dataset  # noqa: E402

#: The stream the run follows: a CT base on one centre's FDG cases, then CT+PET experiences selected by centre and
#: tracer (PSMA arrives last).
STREAM = """name: cohort
description: CT base on north FDG, then FDG PET/CT at both centres, then PSMA arrives at both
pretrain: {where: {centre: north, tracer: FDG}, modalities: [ct]}
experiences:
  - {name: north-FDG, where: {centre: north, tracer: FDG}, modalities: [ct, pet], task: 1}
  - {name: south-FDG, where: {centre: south, tracer: FDG}, modalities: [ct, pet], task: 2}
  - {name: north-PSMA, where: {centre: north, tracer: PSMA}, modalities: [ct, pet], task: 3}
  - {name: south-PSMA, where: {centre: south, tracer: PSMA}, modalities: [ct, pet], task: 4}
"""


def timed_run(root: Path, scratch: Path, extra: list[str]) -> dict:
    """``pemma-bench run`` of :data:`STREAM` on the dataset at ``root``: wall seconds, peak memory, exit code."""
    stream = scratch / "cohort.yaml"
    stream.write_text(STREAM)
    command = [sys.executable, "-c", "from pemma_cl.cli.app import main; main()", "run", "--stream", str(stream),
               "--data", f"nnunet:{root}",
               "--results-dir", str(scratch / "results"), *extra]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the run failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak_mb), "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2), "run_folder": done.stdout.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=48, help="cases in the dataset (default 48)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dataset (default 0)")
    parser.add_argument("--preset", default="tiny", help="the run's preset (default tiny)")
    parser.add_argument("--epochs", type=int, help="epochs per experience (default: the preset's)")
    parser.add_argument("--strategy", action="append", help="a strategy to run; repeatable (default: the six)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/cohort_run_cost.json"),
                        help="JSON file to write")
    args = parser.parse_args()
    extra = ["--preset", args.preset, *(["--epochs", str(args.epochs)] if args.epochs else [])]
    extra += [item for name in args.strategy or [] for item in ("--strategy", name)]
    with tempfile.TemporaryDirectory(prefix="cohort-run-cost-") as folder:
        scratch = Path(folder)
        root = scratch / "Dataset901_Torso"
        write_dataset(root, args.cases, args.seed)
        started = time.perf_counter()
        prepare_dataset(root, None, None, None, "refuse", os.cpu_count() or 1)
        prepare_s = time.perf_counter() - started
        print(f"wrote and prepared {args.cases} cases ({prepare_s:.1f} s to prepare); running ...", flush=True)
        result = {"prepare_s": round(prepare_s, 1), **timed_run(root, scratch, extra)}
    print("\n| cases | preset | strategies | prepare (s) | run wall (s) | peak memory (MB) | load before | load after |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| {args.cases} | {args.preset} | {', '.join(args.strategy or ['the six defaults'])} | "
          f"{result['prepare_s']:.1f} | {result['wall_s']:.1f} | {result['peak_rss_mb']} | {result['load_before']:.2f} "
          f"| {result['load_after']:.2f} |")
    record = {"benchmark": "cohort_run_cost", "cases": args.cases, "seed": args.seed, "preset": args.preset,
              "epochs": args.epochs, "strategies": args.strategy or "defaults", "cpu_count": os.cpu_count(),
              "machine": platform.machine(), "python": platform.python_version(), "stream": STREAM, **result}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out, lambda handle: handle.write(json.dumps(record, indent=2).encode() + b"\n"))
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
