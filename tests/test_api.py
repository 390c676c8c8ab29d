"""The Python API: lazy exports, scoring a foreign Avalanche strategy by hand-counted Dice, progress lines (or none,
quiet), and the example script."""

from __future__ import annotations

import copy
import dataclasses
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "avalanche_naive_ewc.py"
STREAM_YAML = """\
name: apitest
description: micro API test stream
pretrain: {centres: [HMR], modalities: [ct]}
experiences:
  - {name: HGJ, centres: [HGJ], modalities: [ct, pet], task: 1}
  - {name: CHUV, centres: [CHUV], modalities: [ct, pet], task: 2}
"""


def test_import_is_light_and_every_exported_name_resolves() -> None:
    code = ("import sys, pemma_cl; assert 'torch' not in sys.modules, 'torch imported';"
            "[getattr(pemma_cl, n) for n in pemma_cl.__all__]; assert 'torch' in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_unknown_attribute_is_an_attribute_error() -> None:
    import pemma_cl

    with pytest.raises(AttributeError, match="no attribute 'centres'"):
        pemma_cl.centres  # noqa: B018


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    import pemma_cl

    folder = tmp_path_factory.mktemp("api")
    (folder / "apitest.yaml").write_text(STREAM_YAML, encoding="utf-8")
    return pemma_cl.scenario(folder / "apitest.yaml", seed=0, preset="micro", results_dir=folder, device="cpu")


class AllPrimaryTumour(nn.Module):
    """Predicts GTVp everywhere and records which input channels it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.seen: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((bool(x[:, 0].abs().sum() > 0), bool(x[:, 1].abs().sum() > 0)))
        logits = torch.zeros(len(x), 3, *x.shape[2:]) + self.weight
        logits[:, 1] = 1.0
        return logits


def test_a_foreign_strategy_is_scored_per_input_setting_with_hand_counted_dice(scenario) -> None:
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    import pemma_cl

    model = AllPrimaryTumour()
    scorer = scenario.scorer("always-gtvp")
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                     criterion=pemma_cl.segmentation_loss(), eval_mb_size=2, device="cpu",
                     evaluator=EvaluationPlugin(scorer))
    strategy.eval(scenario.test_stream)

    assert set(model.seen) == {(True, False), (False, True), (True, True)}  # CT only, PET only, CT+PET
    rows = scorer.rows
    assert {r["input"] for r in rows} == {"ct", "pet", "ctpet"} and {r["strategy"] for r in rows} == {"always-gtvp"}
    cases = scorer.cases
    assert len(cases) == 2 * 3 * sum(len(e.dataset) for e in scenario.test_stream)  # structures x settings x cases
    for experience in scenario.test_stream:
        labels = torch.stack([experience.dataset[i][1] for i in range(len(experience.dataset))])
        reference = int((labels == 1).sum())
        expected = 2 * reference / (reference + labels.numel())  # every voxel predicted GTVp
        for row in rows:
            if row["eval_experience"] == experience.current_experience and row["structure"] == "GTVp":
                assert row["dice"] == pytest.approx(expected, rel=1e-12) and row["trained_through"] == -1


def with_untrained_bases(scenario, quiet: bool):
    """``scenario`` (quiet or not) whose bases are not trained or cached yet: asking for one trains it."""
    bases = copy.copy(scenario.inputs.ctx_settings["bases"])
    bases.cache_dir, bases._weights = None, {}
    inputs = dataclasses.replace(scenario.inputs, ctx_settings={**scenario.inputs.ctx_settings, "bases": bases})
    return dataclasses.replace(scenario, inputs=inputs, quiet=quiet)


def train_first_experience(bm) -> None:
    """Avalanche's Naive from the fusion base through the first experience, then evaluated on the first test one."""
    from avalanche.training import Naive
    from avalanche.training.plugins import EvaluationPlugin

    import pemma_cl

    model = bm.base("fusion")
    strategy = Naive(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                     criterion=pemma_cl.segmentation_loss(), train_mb_size=4, train_epochs=1, eval_mb_size=4,
                     device="cpu", evaluator=EvaluationPlugin(bm.scorer("naive")))
    strategy.train(bm.train_stream[0])
    strategy.eval(bm.test_stream[:1])


def test_the_api_prints_the_progress_lines_of_run(scenario, capsys) -> None:
    bm = with_untrained_bases(scenario, quiet=False)
    capsys.readouterr()
    train_first_experience(bm)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    pretrain, train, test = (len(bm.inputs.stream.pretrain_cases), len(bm.train_stream[0].dataset),
                             len(bm.test_stream[0].dataset))
    assert lines[0] == f"[base ct] experience 1/1 (pretrain): training on {pretrain} cases"
    naive = [line for line in lines if line.startswith("[naive]")]
    assert naive[0] == f"[naive] experience 1/2 (HGJ): training on {train} cases"
    assert naive[1].startswith("[naive]   first step ") and naive[2].startswith("[naive]   epoch 1/1 loss ")
    assert naive[3].startswith(f"[naive]   evaluated 1 segmentation experience ({test} cases) x 3 inputs (")
    assert len(naive) == 4


def test_a_quiet_scenario_prints_no_progress_lines(scenario, capsys) -> None:
    bm = with_untrained_bases(scenario, quiet=True)
    capsys.readouterr()
    train_first_experience(bm)  # trains the CT base too
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")] == []


def test_summarize_gives_the_run_summary_of_the_rows() -> None:
    import pemma_cl

    rows = [{"seed": 0, "strategy": "s", "trained_through": t, "trained_through_name": str(t), "eval_experience": e,
             "eval_experience_name": str(e), "centre": "X", "input": "ct", "structure": "aggregated",
             "dice": dice, "dice_case_mean": dice, "hd95": float("nan"), "n_cases": 1}
            for (t, e), dice in {(0, 0): 0.8, (0, 1): 0.1, (1, 0): 0.5, (1, 1): 0.7}.items()]
    summary = pemma_cl.summarize(rows)["s"]["inputs"]["ct"]
    assert summary["final_dice"] == pytest.approx(0.6) and summary["forgetting"] == pytest.approx(0.3)
    assert summary["bwt"] == pytest.approx(-0.3)


def test_cases_table_names_each_case_role_and_step(scenario) -> None:
    cases = scenario.cases
    assert set(cases["role"]) == {"train", "test"}
    assert set(cases.loc[cases["centre"] == "HMR", "experiences"]) == {"pre-training"}
    assert set(cases.loc[cases["centre"] == "HGJ", "experiences"]) == {"HGJ"}
    assert len(cases) == len(scenario.inputs.train) + len(scenario.inputs.evaluated)


def test_the_example_trains_avalanche_naive_and_ewc(scenario, monkeypatch, capsys) -> None:
    """The example, on the two-experience micro stream (on `centers` it takes minutes of CPU even at `micro`)."""
    stream = scenario.spec.path
    monkeypatch.setattr(sys, "argv", [str(EXAMPLE), "--stream", str(stream), "--preset", "micro",
                                      "--results-dir", str(stream.parent)])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split() == ["strategy", "input", "final_dice", "forgetting", "bwt"]
    assert sorted((line.split()[0], line.split()[1]) for line in lines[1:]) == sorted(
        (s, i) for s in ("ewc", "naive") for i in ("ct", "ctpet", "pet"))
    for line in lines[1:]:
        assert 0.0 <= float(line.split()[2]) <= 1.0
