"""Every registered strategy through ``run_strategy`` on the micro stream, plus third-party and broken plugins."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest
import torch

from pemma_cl.core.errors import UserError
from pemma_cl.core.protocol import OFFLINE, TASK_AGNOSTIC
from pemma_cl.core.protocol import TASK_AWARE as TASK_AWARE_LABEL
from pemma_cl.evaluation.cost import parameter_budget
from pemma_cl.report.summary import METRIC_COLUMNS
from pemma_cl.run.config import DEFAULT_STRATEGIES
from pemma_cl.strategy_api import registry
from pemma_cl.strategy_api.registry import StrategyEntry, load_registry

#: Every registered strategy (timm's test over list_models), read at collection time so each gets its own test.
REGISTERED_NAMES = sorted(load_registry().entries)
N_EXPERIENCES = 2
#: The built-in strategies that pick an adapter set by the test experience's task label.
TASK_AWARE = {"pemma-lora", "pemma-dora", "separate-models"}
#: The built-in strategies on PEMMA's frozen CT base besides the ``pemma-*`` ones.
FROZEN_BASE = {"o-lora", "inflora"}
N_ROWS = (N_EXPERIENCES + 1) * N_EXPERIENCES * 3 * 3  # model states x test experiences x inputs x structures


def base_state(model) -> tuple[str, dict[str, torch.Tensor]]:
    """(kind, weights) of the shared base inside a strategy's model, with peft's wrapping undone."""
    if hasattr(model, "get_base_model"):  # PEMMA with peft adapters
        state = model.get_base_model().base.state_dict()
        return "ct", {k.replace(".base_layer.", "."): v for k, v in state.items() if "lora_" not in k}
    if hasattr(model, "active_network"):  # separate-models: the last network evaluated
        return base_state(model.active_network)
    if hasattr(model, "network"):  # MaskedInputNetwork (early fusion)
        return ("ct" if model.channels == [0] else "fusion"), model.network.state_dict()
    return "ct", model.base.state_dict()  # plain PemmaNetwork


def assert_rows_complete(rows: list[dict], name: str) -> None:
    assert len(rows) == N_ROWS
    assert all(set(row) == set(METRIC_COLUMNS) and row["strategy"] == name for row in rows)
    keys = {(r["trained_through"], r["eval_experience"], r["input"], r["structure"]) for r in rows}
    assert len(keys) == N_ROWS  # no duplicated (state, experience, input, structure)
    assert {r["trained_through"] for r in rows} == set(range(-1, N_EXPERIENCES))
    assert {r["input"] for r in rows} == {"ct", "pet", "ctpet"}
    for r in rows:
        assert math.isnan(r["dice"]) or 0.0 <= r["dice"] <= 1.0
        assert r["n_cases"] == 1


def test_builtin_strategies_are_registered() -> None:
    builtin = {name for name, e in load_registry().entries.items() if e.source == "builtin"}
    assert set(DEFAULT_STRATEGIES) | {"ewc", "mas", "lwf", "replay", "agem", "cumulative", "joint"} <= builtin


@pytest.mark.parametrize("name", REGISTERED_NAMES)
def test_builtin_strategy_runs_through_the_stream(name: str, run_entry, registered_entries, shared_bases) -> None:
    run = run_entry(registered_entries[name])
    assert_rows_complete(run.rows, name)

    cost = run.cost
    assert 0 < cost["trainable_pct"] <= 100
    assert cost["bytes_per_task"] == 4 * cost["trainable_params"]  # float32
    assert cost["train_seconds"] > 0
    assert run.evaluation == {"joint": OFFLINE, **dict.fromkeys(TASK_AWARE, TASK_AWARE_LABEL)}.get(name, TASK_AGNOSTIC)
    if name.startswith("pemma-") or name in FROZEN_BASE:
        assert cost["trainable_pct"] < 100
        budget = parameter_budget(run.model)
        assert (budget["trainable"], budget["total"]) == (cost["trainable_params"], cost["total_params"])
    else:
        assert cost["trainable_pct"] == 100

    kind, state = base_state(run.model)
    start = shared_bases.get(kind).state_dict()
    assert state.keys() == start.keys()
    unchanged = all(torch.equal(state[k], v) for k, v in start.items())
    if name.startswith("pemma-") or name in FROZEN_BASE:
        assert unchanged, "PEMMA must never train the shared CT base"
    else:
        assert not unchanged, f"{name} trains every parameter, including its base"


def test_every_builtin_starts_from_the_same_ct_base(run_entry, registered_entries) -> None:
    """Before training, PEMMA (adapters disabled) and full fine-tuning (PEMMA at init) are the CT base; so is
    early fusion under CT and CT+PET input (after CT-only pre-training its PET weights are zero)."""
    names = sorted(registered_entries)

    def before_training(name: str, inputs: tuple[str, ...]) -> list[tuple]:
        return [(r["eval_experience"], r["input"], r["structure"], None if math.isnan(r["dice"]) else r["dice"])
                for r in run_entry(registered_entries[name]).rows if r["trained_through"] == -1 and r["input"] in inputs]

    reference = before_training("pemma-lora", ("ct", "pet", "ctpet"))
    assert len(reference) == N_EXPERIENCES * 3 * 3
    for name in names:
        if name == "early-fusion":
            assert before_training(name, ("ct", "ctpet")) == before_training("pemma-lora", ("ct", "ctpet"))
        else:
            assert before_training(name, ("ct", "pet", "ctpet")) == reference, name


EWC_PLUGIN = '''
    """A third-party strategy: PEMMA's architecture trained with Avalanche's EWC plugin."""
    from pemma_cl.strategy_api.registry import register_strategy


    @register_strategy("ewc-test", "Test plugin: PEMMA trained with EWC")
    def build(ctx):
        from avalanche.training.plugins import EWCPlugin

        from pemma_cl.models.pemma import PemmaNetwork

        return ctx.make_strategy(PemmaNetwork(ctx.bases.get("ct"), ctx.preset), plugins=[EWCPlugin(ewc_lambda=1.0)])
'''


@pytest.fixture
def private_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test stay in that test."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_third_party_file_plugin_runs_through_run_strategy(tmp_path: Path, private_registry, run_entry) -> None:
    path = tmp_path / "ewc_plugin.py"
    path.write_text(textwrap.dedent(EWC_PLUGIN), encoding="utf-8")
    loaded = load_registry([path])
    assert loaded.broken == {}
    entry = loaded.get("ewc-test")
    assert entry.source == f"file:{path}"
    run = run_entry(entry)
    assert_rows_complete(run.rows, "ewc-test")
    assert run.cost["trainable_pct"] == 100
    ewc = next(p for p in run.strategy.plugins if type(p).__name__ == "EWCPlugin")
    assert set(ewc.importances) == {0, 1}  # importances were computed after each experience


def test_a_build_that_raises_is_a_user_error_naming_the_strategy(stream_data, ctx_settings) -> None:
    from pemma_cl.run.unit import run_strategy

    def build(ctx):
        raise RuntimeError("boom")

    entry = StrategyEntry("broken-build", "raises", build, "file:/plugins/broken.py")
    with pytest.raises(UserError, match=r"strategy 'broken-build' \(file:/plugins/broken.py\) failed to build: "
                                        r"RuntimeError: boom"):
        run_strategy(entry, stream_data, ctx_settings)


def test_a_build_context_carries_the_run_settings(stream_data, ctx_settings, micro_preset) -> None:
    from pemma_cl.run.unit import run_strategy

    seen = []

    def build(ctx):
        seen.append(ctx)
        raise UserError("stop after inspecting the context")

    with pytest.raises(UserError, match="stop after"):
        run_strategy(StrategyEntry("inspect", "x", build, "builtin"), stream_data, ctx_settings)
    ctx = seen[0]
    assert (ctx.name, ctx.preset, ctx.seed, ctx.epochs, ctx.task_labels) == ("inspect", micro_preset, 0, 1, [1, 2])
    assert ctx.bases is ctx_settings["bases"]
    assert ctx.description.structure_names == ("GTVp", "GTVn") and ctx.description.num_classes == 3
    assert {type(p).__name__ for p in ctx.run_plugins} == {"ProgressPlugin", "CostPlugin"}
