"""The partial folder of a run in progress: finding it again, units, and refusing to mix settings or code."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.run.config import RunConfig
from pemma_cl.run.work import UnitResult, WorkFolder, fingerprint
from pemma_cl.streams.spec import load_stream


@pytest.fixture
def config(tmp_path: Path) -> RunConfig:
    return RunConfig(stream=load_stream("paper"), strategies=("a", "b"), seeds=(0, 1), results_dir=tmp_path)


def test_fingerprint_follows_settings_and_plugin_code_not_the_results_folder(config: RunConfig, tmp_path: Path) -> None:
    assert fingerprint(config) == fingerprint(dataclasses.replace(config, results_dir=tmp_path / "elsewhere"))
    assert fingerprint(config) != fingerprint(dataclasses.replace(config, seeds=(0, 2)))
    assert fingerprint(config) != fingerprint(dataclasses.replace(config, epochs=3))
    plugin = tmp_path / "plugin.py"
    plugin.write_text("x = 1\n")
    with_plugin = dataclasses.replace(config, plugin_files=(plugin,))
    before = fingerprint(with_plugin)
    plugin.write_text("x = 2\n")
    assert fingerprint(with_plugin) != before


def test_the_same_configuration_finds_its_folder_and_units_again(config: RunConfig) -> None:
    work = WorkFolder.open(config)
    assert work.root.name.startswith(".paper-seeds0-1.partial-") and work.progress["attempts"] == 1
    assert work.done_count() == 0 and not work.is_done(0, "a")
    unit = UnitResult(rows=[{"dice": float("nan"), "seed": 0}], costs={"train_seconds": 1.5}, evaluation="task-agnostic")
    work.save_unit(0, "a", unit)

    again = WorkFolder.open(config)
    assert again.root == work.root and again.progress["attempts"] == 2 and again.started == work.started
    assert again.done_count() == 1 and again.is_done(0, "a") and not again.is_done(1, "a")
    assert again.load_unit(0, "a") == UnitResult([{"dice": None, "seed": 0}], {"train_seconds": 1.5}, "task-agnostic")
    assert again.logs_dir(0, "a") == work.root / "seeds/seed0/logs/a"

    resumed = WorkFolder.resume(work.root)
    assert resumed.config == config and resumed.progress["attempts"] == 3


def test_resume_refuses_a_folder_started_with_other_settings(config: RunConfig, tmp_path: Path) -> None:
    work = WorkFolder.open(config)
    raw = json.loads((work.root / "config.json").read_text())
    (work.root / "config.json").write_text(json.dumps({**raw, "epochs": 7}))
    with pytest.raises(UserError, match="was started with other settings or other code"):
        WorkFolder.resume(work.root)
    (work.root / "config.json").write_text(json.dumps({**raw, "seeds": "zero"}))
    with pytest.raises(UserError, match="seeds: expected one or more non-negative integers"):
        WorkFolder.resume(work.root)
    with pytest.raises(UserError, match="is not the partial folder of an unfinished run"):
        WorkFolder.resume(tmp_path / "nothing")
