"""Run folder: atomic publication, cleanup on failure, name collisions, manifest contents."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pemma_cl.errors import UserError
from pemma_cl.results import RunFolder, build_manifest, run_name


def test_run_name() -> None:
    assert run_name("centers", 0, datetime(2026, 11, 28, 4, 5, 12)) == "centers-seed0-20261128-040512"
    with pytest.raises(UserError):
        run_name("a/b", 0, datetime(2026, 1, 1))


def test_success_publishes_folder_with_files(tmp_path: Path) -> None:
    with RunFolder(tmp_path, "run") as run:
        run.write_json("manifest.json", {"x": float("nan"), "y": [1, 2]})
        run.write_text("summary.md", "# hi\n")
        run.write_csv("tables/metrics.csv", pd.DataFrame({"a": [1, 2]}))
        run.path("plots/fig.png").write_bytes(b"png")
        assert not (tmp_path / "run").exists()  # nothing looks complete while running
        partial = run.path("summary.md").parent
        assert partial.name.startswith(".run.partial-")
    assert run.final_path == tmp_path / "run"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert json.loads((tmp_path / "run/manifest.json").read_text()) == {"x": None, "y": [1, 2]}
    assert (tmp_path / "run/summary.md").read_text() == "# hi\n"
    assert pd.read_csv(tmp_path / "run/tables/metrics.csv")["a"].tolist() == [1, 2]
    assert (tmp_path / "run/plots/fig.png").read_bytes() == b"png"


def test_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(tmp_path, "run") as run:
            run.write_text("partial.txt", "half")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []
    assert run.final_path is None


def test_name_collision_gets_suffix(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()  # an empty folder must not be silently replaced either
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-1/keep.txt").write_text("old")
    with RunFolder(tmp_path, "run") as run:
        run.write_text("new.txt", "new")
    assert run.final_path == tmp_path / "run-2"
    assert (tmp_path / "run-2/new.txt").read_text() == "new"
    assert (tmp_path / "run-1/keep.txt").read_text() == "old"
    assert list((tmp_path / "run").iterdir()) == []


def test_paths_must_stay_inside(tmp_path: Path) -> None:
    run = RunFolder(tmp_path, "run")
    with pytest.raises(RuntimeError):
        run.path("x.txt")
    with run:
        with pytest.raises(ValueError):
            run.path("../escape.txt")
    with pytest.raises(UserError):
        RunFolder(tmp_path, "../run")


def test_manifest_has_keys() -> None:
    started = datetime(2026, 11, 28, 4, 5, 12)
    manifest = build_manifest(
        ["pemma-bench", "run"], 0, "cpu", started, started + timedelta(seconds=90), {"stream": "centers"}
    )
    assert set(manifest) == {
        "command", "seed", "device", "started", "finished", "wall_seconds", "versions",
        "git_hash", "git_dirty", "platform", "hostname", "extra",
    }  # fmt: skip
    assert manifest["wall_seconds"] == 90.0
    assert manifest["started"] == "2026-11-28T04:05:12"
    assert set(manifest["versions"]) == {"python", "torch", "monai", "avalanche-lib", "peft", "numpy", "pandas"}
    assert manifest["versions"]["numpy"] is not None
    assert manifest["extra"] == {"stream": "centers"}
    assert manifest["git_hash"] is None or len(manifest["git_hash"]) == 40
    assert manifest["git_dirty"] in (None, True, False)
    json.dumps(manifest)  # serialisable as is
