"""A results folder runs share (micro preset, real training): two runs at once, a corrupt cached base, a full disk."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from test_runner import ONE_THREAD, PEMMA_BENCH, STREAM_YAML
from typer.testing import CliRunner

import pemma_cl.core.files
from pemma_cl.cli.app import app


@pytest.fixture(scope="module")
def stream_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("streams") / "clitest.yaml"
    path.write_text(STREAM_YAML, encoding="utf-8")
    return path


def run_args(stream_file: Path, results: Path, *strategies: str) -> list[str]:
    """One seed, the given strategies, micro preset, CPU, one unit at a time."""
    return ["run", "--stream", str(stream_file), "--preset", "micro", "--seed", "0", "--device", "cpu", "--jobs", "1",
            *[a for s in strategies for a in ("--strategy", s)], "--results-dir", str(results)]


def test_two_runs_of_one_command_started_together_train_the_base_once_and_agree(stream_file, tmp_path) -> None:
    results = tmp_path / "results"
    command = [str(PEMMA_BENCH), *run_args(stream_file, results, "full-finetune")]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ONE_THREAD)
            for _ in range(2)]
    outputs = [run.communicate(timeout=600) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [err[-2000:] for _, err in outputs]
    trained = [sum(line.startswith("[base ct] experience") for line in err.splitlines()) for _, err in outputs]
    assert sorted(trained) == [0, 1]  # one trained the base; the other waited for that run, then loaded it
    first, second = (runs[0], outputs[1]) if trained[0] else (runs[1], outputs[0])
    assert f"of the same run is in use by pid {first.pid} on host " in second[1]
    folders = [Path(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert folders[0] != folders[1]
    assert (folders[0] / "metrics.csv").read_bytes() == (folders[1] / "metrics.csv").read_bytes()
    assert sorted(p.name for p in results.iterdir() if not p.name.startswith(".")) == sorted(f.name for f in folders)
    assert [p.suffix for p in sorted((results / ".cache").iterdir())] == [".json", ".lock", ".pt"]


class FullDisk:
    """A file open for writing on a full disk: a write stores half of its bytes, then fails with ENOSPC."""

    def __init__(self, file) -> None:
        self.file = file

    def __enter__(self) -> FullDisk:
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()

    def write(self, data: bytes) -> None:
        self.file.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def invoke(args: list[str]) -> SimpleNamespace:
    """``pemma-bench ARGS`` in this process, with one torch thread (several, on a busy CPU, run many times slower)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(app, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return SimpleNamespace(code=result.exit_code, stdout=result.stdout, stderr=result.stderr)


@pytest.fixture(scope="module")
def full_disk_then_resume(stream_file, tmp_path_factory) -> SimpleNamespace:
    """A run of two strategies whose second unit file meets a full disk; then its cached base truncated (as a full
    disk or a crash during a cache write would leave it) and the run resumed."""
    results = tmp_path_factory.mktemp("results")
    real_open = open

    def open_on_full_disk(file, mode="r", *args, **kwargs):  # pemma_cl.core.files' open: the second unit's write fails
        handle = real_open(file, mode, *args, **kwargs)
        return FullDisk(handle) if Path(file).name.startswith(".early-fusion.json.") else handle

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pemma_cl.core.files, "open", open_on_full_disk, raising=False)
        failed = invoke(run_args(stream_file, results, "full-finetune", "early-fusion"))
    [partial] = [p for p in results.iterdir() if ".partial-" in p.name]
    kept = (partial / "seeds/seed0/units/full-finetune.json").read_bytes()
    [weights] = (results / ".cache").glob("*.pt")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    resumed = invoke(["run", "--resume", str(partial), "--jobs", "1"])
    return SimpleNamespace(failed=failed, partial=partial, kept=kept, weights=weights, resumed=resumed)


def test_a_full_disk_is_one_line_the_finished_units_are_kept_and_resume_completes(full_disk_then_resume) -> None:
    run = full_disk_then_resume
    unit = run.partial / "seeds/seed0/units/early-fusion.json"
    assert run.failed.code == 2 and "Traceback" not in run.failed.stderr
    lines = run.failed.stderr.splitlines()
    assert lines[-1] == f"error: '{unit}': cannot write it: No space left on device"
    assert f"1 of 2 units finished and kept in {run.partial}; run the same command again" in lines[-2]
    assert json.loads(run.kept)["rows"]  # the unit finished before is whole
    assert run.resumed.code == 0, run.resumed.stderr[-3000:]
    assert "1 of 2 units already finished" in run.resumed.stderr and "[full-finetune]" not in run.resumed.stderr
    published = Path(run.resumed.stdout.strip().splitlines()[-1])
    assert not run.partial.exists() and (published / "seeds/seed0/units/full-finetune.json").read_bytes() == run.kept
    assert set(pd.read_csv(published / "metrics.csv")["strategy"]) == {"full-finetune", "early-fusion"}
    assert [p.name for p in (published / "seeds/seed0/units").iterdir() if p.name.startswith(".")] == []


def test_a_truncated_cached_base_is_said_in_one_line_and_trained_again(full_disk_then_resume) -> None:
    run = full_disk_then_resume
    said = [line for line in run.resumed.stderr.splitlines() if "corrupt" in line]
    assert said == [f"cached base '{run.weights}' is corrupt or incomplete (its weights do not match the checksum "
                    f"in {run.weights.with_suffix('.json').name}); training it again"]
    assert "[base ct] experience" in run.resumed.stderr and run.resumed.code == 0
    record = json.loads(run.weights.with_suffix(".json").read_text())
    assert record["weights_sha256"] == hashlib.sha256(run.weights.read_bytes()).hexdigest()
