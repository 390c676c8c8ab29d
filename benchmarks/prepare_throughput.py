"""``pemma-bench prepare --data nnunet:DIR`` throughput, in cases per minute, with 1 and 2 worker processes.

Writes a synthetic PET/CT dataset in nnU-Net's raw layout (its own simple generator, seeded: a body ellipse in CT
and PET, a hot spherical lesion labelled 1; torso-sized, non-cubic volumes of about 96 x 56 x 72 voxels (x y z) at
4 mm, each case a few voxels larger or smaller; CT int16, PET float32, label uint8, gzip-compressed NIfTI) with a
case table of two centres and two tracers, then times ``prepare`` on it into a fresh cache for each setting:

* ``as is``: the default target, the median spacing (4 mm): every case is checked and cached voxel for voxel;
* ``resampled``: ``--spacing 3,3,3``: every case is also resampled (linear, nearest neighbour for labels).

It prints a table and writes JSON (default ``results/benchmarks/prepare_throughput.json``) with the machine's load
average before and after each timing: other jobs on the machine change every number::

    .venv/bin/python benchmarks/prepare_throughput.py --cases 16
    .venv/bin/python benchmarks/prepare_throughput.py --cases 48 --out /tmp/prepare.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from pemma_cl.core.files import write_atomically
from pemma_cl.data.nnunet.prepare import prepare_dataset

#: Volume size (x, y, z) of the typical case, and its spacing (mm).
SIZE_XYZ = (96, 56, 72)
SPACING_MM = 4.0
#: The most voxels a case's size differs from :data:`SIZE_XYZ` by, per axis.
JITTER = 6
#: The settings timed: name -> target spacing (z, y, x; None: the dataset's median).
MODES: dict[str, tuple[float, float, float] | None] = {"as is": None, "resampled": (3.0, 3.0, 3.0)}
CENTRES, TRACERS = ("north", "south"), ("FDG", "PSMA")


def synthetic_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CT (HU, int16), PET (SUV, float32) and label (uint8) of one case, arrays ``[z, y, x]``."""
    nx, ny, nz = (n + int(rng.integers(-JITTER, JITTER + 1)) for n in SIZE_XYZ)
    z, y, x = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    semi_x, semi_y = nx * rng.uniform(0.38, 0.46), ny * rng.uniform(0.36, 0.44)
    body = ((x - nx / 2) / semi_x) ** 2 + ((y - ny / 2) / semi_y) ** 2 <= 1.0
    ct = np.where(body, rng.normal(40.0, 15.0, body.shape), -1000.0)
    ct[((x - nx / 2) / 4.0) ** 2 + ((y - ny / 2 - semi_y * 0.6) / 4.0) ** 2 <= 1.0] = 700.0  # the spine
    pet = np.where(body, rng.gamma(4.0, 0.25, body.shape), 0.05)
    centre = (rng.uniform(0.2, 0.8) * nz, ny / 2 + rng.uniform(-0.4, 0.4) * semi_y,
              nx / 2 + rng.uniform(-0.5, 0.5) * semi_x)
    radius = rng.uniform(2.0, 5.0)
    lesion = ((z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius ** 2) & body
    pet[lesion] += rng.uniform(5.0, 15.0)
    return ct.astype(np.int16), pet.astype(np.float32), lesion.astype(np.uint8)


def write_dataset(root: Path, cases: int, seed: int) -> None:
    """``cases`` synthetic cases in nnU-Net's raw layout under ``root``, with ``dataset.json`` and ``cases.csv``."""
    rows = []
    for index in range(cases):
        case_id = f"case_{index:04d}"
        ct, pet, label = synthetic_case(np.random.default_rng([seed, index]))
        for path, array in ((f"imagesTr/{case_id}_0000.nii.gz", ct), (f"imagesTr/{case_id}_0001.nii.gz", pet),
                            (f"labelsTr/{case_id}.nii.gz", label)):
            image = sitk.GetImageFromArray(array)
            image.SetSpacing((SPACING_MM,) * 3)
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            sitk.WriteImage(image, str(root / path), useCompression=True)
        rows.append({"case_id": case_id, "centre": CENTRES[index % 2], "tracer": TRACERS[index // 2 % 2]})
    pd.DataFrame(rows).to_csv(root / "cases.csv", index=False)
    (root / "dataset.json").write_text(json.dumps({
        "channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "lesion": 1},
        "numTraining": cases, "file_ending": ".nii.gz"}))


def time_prepare(root: Path, cache: Path, spacing: tuple[float, float, float] | None, workers: int) -> dict:
    """One ``prepare`` into an empty ``cache``: wall seconds, cases per minute and the load around it."""
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    summary = prepare_dataset(root, None, cache, spacing, "refuse", workers)
    wall = time.perf_counter() - started
    assert summary.prepared > 0 and not summary.bad, summary
    return {"workers": workers, "cases": summary.prepared, "wall_s": round(wall, 2),
            "cases_per_min": round(60 * summary.prepared / wall, 1), "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=48, help="cases in the dataset (default 48)")
    parser.add_argument("--workers", default="1,2", help="worker counts to time, e.g. 1,2 (default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the dataset (default 0)")
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks/prepare_throughput.json"),
                        help="JSON file to write")
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="prepare-throughput-") as scratch:
        root = Path(scratch) / "Dataset900_Throughput"
        started = time.perf_counter()
        write_dataset(root, args.cases, args.seed)
        print(f"wrote {args.cases} cases in {time.perf_counter() - started:.1f} s to {root}", flush=True)
        results = [{"mode": mode, **time_prepare(root, Path(scratch) / f"cache-{i}-{n}", spacing, n)}
                   for i, (mode, spacing) in enumerate(MODES.items()) for n in workers]
    print("\n| setting | workers | cases | wall (s) | cases/min | load before | load after |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in results:
        print(f"| {row['mode']} | {row['workers']} | {row['cases']} | {row['wall_s']:.1f} | {row['cases_per_min']:.1f} "
              f"| {row['load_before']:.2f} | {row['load_after']:.2f} |")
    record = {"benchmark": "prepare_throughput", "cases": args.cases, "size_xyz": list(SIZE_XYZ),
              "size_jitter": JITTER, "spacing_mm": SPACING_MM, "seed": args.seed,
              "modes": {mode: spacing and list(spacing) for mode, spacing in MODES.items()},
              "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
              "simpleitk": sitk.Version_VersionString(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(args.out, lambda handle: handle.write(json.dumps(record, indent=2).encode() + b"\n"))
    print(f"\n{args.out}")


if __name__ == "__main__":
    main()
