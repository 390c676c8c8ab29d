"""Run folder writing: names, atomic files, publication under a free name, manifest contents."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.run.folders import FolderWriter, build_manifest, publish, run_name, run_prefix


def test_run_name() -> None:
    started = datetime(2026, 11, 28, 4, 5, 12)
    assert run_name("centers", [0], started) == "centers-seed0-20261128-040512"
    assert run_name("centers-val", [0, 1, 2], started) == "centers-val-seeds0-1-2-20261128-040512"
    assert run_prefix("paper", [3]) == "paper-seed3"
    # four or more consecutive seeds as a range (a decide run of 60 seeds once broke the 255-byte name limit)
    assert run_prefix("centers", list(range(200, 260))) == "centers-seeds200to259"
    assert run_prefix("centers", [*range(16), 20, 21]) == "centers-seeds0to15-20-21"
    scattered = list(range(0, 400, 3))
    name = run_prefix("centers", scattered)
    assert name.startswith("centers-seeds134of0to399-") and len(name) < 40
    assert run_prefix("centers", scattered[:-1] + [400]) != name
    with pytest.raises(UserError):
        run_name("a/b", [0], datetime(2026, 1, 1))


def test_writer_writes_json_text_csv_atomically(tmp_path: Path) -> None:
    out = FolderWriter(tmp_path / "run")
    out.write_json("manifest.json", {"x": float("nan"), "y": [1, 2]})
    out.write_text("summary.md", "# hi\n")
    out.write_csv("tables/metrics.csv", pd.DataFrame({"a": [1, 2]}))
    assert json.loads((tmp_path / "run/manifest.json").read_text()) == {"x": None, "y": [1, 2]}
    assert (tmp_path / "run/summary.md").read_text() == "# hi\n"
    assert pd.read_csv(tmp_path / "run/tables/metrics.csv")["a"].tolist() == [1, 2]
    # no temporary file is left beside the written ones
    assert sorted(p.name for p in (tmp_path / "run").rglob("*")) == ["manifest.json", "metrics.csv", "summary.md",
                                                                     "tables"]


def test_publish_takes_the_first_free_name(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()  # an empty folder must not be silently replaced either
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-1/keep.txt").write_text("old")
    work = tmp_path / ".run.partial-0"
    FolderWriter(work).write_text("new.txt", "new")
    assert publish(work, tmp_path, "run") == tmp_path / "run-2"
    assert (tmp_path / "run-2/new.txt").read_text() == "new"
    assert (tmp_path / "run-1/keep.txt").read_text() == "old"
    assert list((tmp_path / "run").iterdir()) == [] and not work.exists()


def test_paths_must_stay_inside(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        FolderWriter(tmp_path).path("../escape.txt")
    with pytest.raises(ValueError):
        FolderWriter(tmp_path).path("/etc/passwd")


def test_manifest_has_keys() -> None:
    started = datetime(2026, 11, 28, 4, 5, 12)
    manifest = build_manifest(
        ["pemma-bench", "run"], [0, 1], "cpu", started, started + timedelta(seconds=90), {"stream": "centers"}
    )
    assert set(manifest) == {
        "command", "seeds", "device", "started", "finished", "wall_seconds", "versions",
        "git_hash", "git_dirty", "platform", "hostname", "extra",
    }  # fmt: skip
    assert manifest["wall_seconds"] == 90.0 and manifest["seeds"] == [0, 1]
    assert manifest["started"] == "2026-11-28T04:05:12"
    assert set(manifest["versions"]) == {"python", "torch", "monai", "avalanche-lib", "peft", "numpy", "pandas"}
    assert manifest["versions"]["numpy"] is not None
    assert manifest["extra"] == {"stream": "centers"}
    assert manifest["git_hash"] is None or len(manifest["git_hash"]) == 40
    assert manifest["git_dirty"] in (None, True, False)
    json.dumps(manifest)  # serialisable as is
