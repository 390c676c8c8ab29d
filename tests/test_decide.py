"""``pemma-bench run --decide``: bad input refused in one line, and a real micro run that stops at its first look,
with stand-ins for the primary contrasts and each seed's value (:mod:`pemma_cl.report.contrasts`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from pemma_cl.cli.app import app

PLUGIN = Path(__file__).parent / "plugins" / "example_plugin.py"
STREAM_YAML = """\
name: dectest
description: micro --decide test stream
pretrain: {centres: [HMR], modalities: [ct]}
experiences:
  - {name: HGJ, centres: [HGJ], modalities: [ct, pet], task: 1}
  - {name: CHUV, centres: [CHUV], modalities: [ct, pet], task: 2}
"""


LEDGER_YAML = """\
family_alpha: 0.05
trials:
  - {{contrast: no-forgetting, stream: dectest, definition: "{definition}", bounds: t-calibrated, seeds: [0, 4],
     looks: [3, 5], alpha: 0.025, spent: 0.025, outcome: planned, run: null}}
"""


def contrast(name: str, stream: str, strategy: str, reference: str | None, direction: str):
    """A primary contrast of the suite's own kind, with a 0.03 margin on final CT+PET Dice or forgetting."""
    from pemma_cl.report.contrasts import PrimaryContrast

    metric = "forgetting" if direction == "below" else "final_dice"
    return PrimaryContrast(name, "a claim", stream, strategy, reference, metric, "ctpet", "aggregated", 0.03, direction)


@pytest.fixture
def contrasts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[Path, int]]:
    """Stand in for the declared contrasts and the value of one seed (:mod:`pemma_cl.report.contrasts`): one
    ``below`` contrast of stream ``dectest`` on strategy ``pemma-lora``, whose value for seed s is 0.001 + 0.0001 s
    (far below its 0.03 margin), with a planned trial in an alpha ledger (seeds 0 to 4, level 0.025). The real
    ``seed_values`` reads each seed's per-case rows from the run's partial folder. Returns the (run folder, seed) of
    each value computed."""
    calls: list[tuple[Path, int]] = []
    import pemma_cl.report.contrasts as declared

    real_seed_cases = declared.seed_cases

    def seed_cases(run_dir: Path, seed: int):
        cases = real_seed_cases(run_dir, seed)
        assert cases is not None and set(cases["strategy"]) == {"pemma-lora"}  # written before it is valued
        calls.append((run_dir, seed))
        return cases

    import pemma_cl.report.claims as claims

    def declared_contrasts(path=None):
        return [contrast("no-forgetting", "dectest", "pemma-lora", None, "below"),
                contrast("paper-only", "paper", "example-plugin", "early-fusion", "non_inferior")]

    monkeypatch.setattr(declared, "load_primary_contrasts", declared_contrasts)
    monkeypatch.setattr(claims, "load_primary_contrasts", declared_contrasts)
    import pemma_cl.run.decide as decide
    from pemma_cl.report.ledger import load_ledger

    ledger = tmp_path / "ledger.yaml"  # one planned trial: no-forgetting on seeds 0..4 at 0.025
    ledger.write_text(LEDGER_YAML.format(definition=declared_contrasts()[0].describe()), encoding="utf-8")
    monkeypatch.setattr(decide, "load_ledger", lambda: load_ledger(ledger))
    monkeypatch.setattr(declared, "seed_cases", seed_cases)
    monkeypatch.setattr(declared, "case_value", lambda cases, contrast, seed=0: 0.001 + 0.0001 * seed)
    return calls


@pytest.fixture
def stream_file(tmp_path: Path) -> Path:
    path = tmp_path / "dectest.yaml"
    path.write_text(STREAM_YAML, encoding="utf-8")
    return path


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.mark.parametrize(("args", "message"), [
    (["--decide", "--seeds", "0,1,2"], "error: --decide: adds seeds itself (0, 1, ... look by look, up to "
                                       "--max-seeds); leave out --seeds"),
    (["--max-seeds", "5"], "error: --max-seeds: only with --decide"),
    (["--decide", "--max-seeds", "2"], "error: --max-seeds: expected at least 3 (the first look of --decide), got 2"),
    (["--decide", "--stream", "centers"], "error: --decide: stream 'centers' has no primary contrast"),
    (["--decide", "--strategy", "example-plugin"], "error: --decide: primary contrast 'no-forgetting' compares "
                                                   "pemma-lora; add --strategy pemma-lora"),
    (["--first-seed", "100"], "error: --first-seed: only with --decide"),
    (["--contrast", "no-forgetting"], "error: --contrast: only with --decide"),
    (["--decide", "--first-seed", "-1"], "error: --first-seed: expected a non-negative integer, got -1"),
    (["--decide", "--contrast", "paper-only"], "error: --contrast: 'paper-only' is not a primary contrast of stream "
                                               "'dectest' (its contrasts: no-forgetting)"),
])
def test_bad_decide_input_is_one_line_and_exit_2(contrasts, stream_file: Path, tmp_path: Path, args: list[str],
                                                 message: str) -> None:
    stream = [] if "--stream" in args else ["--stream", stream_file]
    strategy = [] if "--strategy" in args else ["--strategy", "pemma-lora"]
    results = tmp_path / "results"
    result = invoke("run", *stream, *strategy, "--plugin", PLUGIN, "--results-dir", results, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [result.stderr.splitlines()[0]] and "Traceback" not in result.output
    assert result.stderr.startswith(message), result.stderr
    assert not results.exists() and contrasts == []


def test_paper_stream_contrast_needs_its_reference(contrasts, tmp_path: Path) -> None:
    result = invoke("run", "--stream", "paper", "--strategy", "example-plugin", "--plugin", PLUGIN, "--decide",
                    "--results-dir", tmp_path)
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: --decide: primary contrast 'paper-only' compares example-plugin and "
                                     "early-fusion; add --strategy early-fusion")


def test_decide_on_micro_stops_when_every_contrast_is_decided(contrasts, stream_file: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    results = tmp_path / "results"
    args = ["run", "--stream", stream_file, "--preset", "micro", "--device", "cpu", "--strategy", "pemma-lora",
            "--decide", "--max-seeds", "5", "--jobs", "1", "--results-dir", results]
    monkeypatch.setattr(sys, "argv", ["pemma-bench", *map(str, args)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = invoke(*args)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output[-3000:]
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert folder.name.startswith("dectest-seeds0-1-2-")  # the first look's three seeds, not the five it may run
    assert [p.name for p in results.iterdir() if "partial" in p.name] == []
    # one look: its three seeds' files were in the partial folder when the contrast was valued
    # (the claims written at publication read the seeds again)
    assert [(run_dir.name.startswith(".dectest-seeds0to4.partial-"), seed) for run_dir, seed in contrasts[:3]] == [
        (True, 0), (True, 1), (True, 2)]
    assert sorted(p.name for p in (folder / "seeds").iterdir()) == ["seed0", "seed1", "seed2"]

    config = json.loads((folder / "config.json").read_text())
    assert config["seeds"] == [0, 1, 2] and config["max_seeds"] == 5
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["seeds"] == [0, 1, 2]
    decide = manifest["extra"]["decide"]
    assert decide["looks"] == [3, 5] and decide["alpha"] == 0.025 and decide["seeds_run"] == 3
    assert decide["decisions"] == {"no-forgetting": "held"}
    assert decide["stopped"] == "every primary contrast decided at look 1 (3 seeds)"
    [look] = decide["history"]
    [row] = look["contrasts"]
    # values 0.0010, 0.0011, 0.0012 against 0.03: mean 0.0011, SD 0.0001, t = -0.0289 / (0.0001 / sqrt 3)
    assert (look["look"], look["seeds"], row["n"]) == (1, 3, 3)
    assert row["mean"] == pytest.approx(0.0011) and row["t"] == pytest.approx(-0.0289 / (0.0001 / 3**0.5))
    # the level of its planned trial in the ledger (no Holm within the run), t-calibrated bounds
    assert row["local_alpha"] == 0.025 and decide["levels"] == {"no-forgetting": 0.025}
    assert decide["bounds"] == "t-calibrated" and decide["metrics"] == {"no-forgetting": "forgetting"}
    assert row["p_bound"] == pytest.approx(0.0038081, abs=1e-6) and row["decision"] == "held"
    assert "look 1 (3 seeds): no-forgetting: mean +0.0011" in result.stderr
    assert "Primary contrasts decided by --decide (looks at 3, 5 seeds, alpha 0.025 from the alpha ledger, " \
           "t-calibrated bounds): every primary " \
           "contrast decided at look 1 (3 seeds)" in result.stdout
    assert pd.read_csv(folder / "metrics.csv")["seed"].unique().tolist() == [0, 1, 2]
    # the claims take the plan's decision (three seeds would be "indicative" for a fixed-seed run), in the run and
    # when 'pemma-bench claims' reads the folder again
    for claims in (json.loads((folder / "claims.json").read_text()), _claims_of(folder)):
        [primary] = [row for row in claims if row["contrast"] == "no-forgetting"]
        assert primary["verdict"] == "held" and "repeated confidence interval" in primary["measured"]
        assert "--decide: looks at 3, 5 seeds" in primary["why"]
        assert "level 0.025 of its trial in the alpha ledger" in primary["why"]


def _claims_of(folder: Path) -> list[dict]:
    from pemma_cl.report.claims import check_claims, claims_json, load_run

    return claims_json(check_claims([load_run(folder)], {"lora": 7.2, "dora": 7.3}))


def test_a_decide_run_without_a_planned_trial_is_refused(contrasts, stream_file: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    result = invoke("run", "--stream", stream_file, "--strategy", "pemma-lora", "--decide", "--first-seed", "7",
                    "--max-seeds", "5", "--results-dir", results)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.output
    assert result.stderr.startswith(f"error: --decide: {tmp_path / 'ledger.yaml'}: no planned trial of contrast "
                                    "'no-forgetting' on stream 'dectest' for seeds 7..11 (--first-seed 7 --max-seeds "
                                    "5); its planned trials: seeds 0..4"), result.stderr
    assert not results.exists() and contrasts == []


def test_max_seeds_is_part_of_the_run_configuration(tmp_path: Path) -> None:
    from pemma_cl.core.errors import UserError
    from pemma_cl.run.config import RunConfig
    from pemma_cl.streams.spec import load_stream

    config = RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",), seeds=(0, 1, 2, 3),
                       results_dir=tmp_path, max_seeds=4)
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    older = {key: item for key, item in config.to_dict().items() if key != "max_seeds"}  # written before the field
    assert RunConfig.from_dict(older).max_seeds is None
    later = RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",), seeds=(100, 101, 102), max_seeds=4,
                      decide_contrasts=("no-forgetting-centres",))
    assert RunConfig.from_dict(json.loads(json.dumps(later.to_dict()))) == later
    with pytest.raises(UserError, match="decide_contrasts: only for a --decide run"):
        RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",), decide_contrasts=("x",))
    with pytest.raises(UserError, match=r"seeds: a --decide run has seeds 100 \.\. 103 in order, got \[100, 102\]"):
        RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",), seeds=(100, 102), max_seeds=4)
    with pytest.raises(UserError, match=r"seeds: a --decide run has seeds 0 \.\. 3 in order, got \[0, 2\]"):
        RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",), seeds=(0, 2), max_seeds=4)
    with pytest.raises(UserError, match="--max-seeds: expected at least 3"):
        RunConfig(stream=load_stream("centers"), strategies=("pemma-lora",), seeds=(0, 1), max_seeds=2)
