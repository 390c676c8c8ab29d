"""Strategy options: declared as dataclasses, resolved from defaults, a config file and --set, errors in one line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.strategy_api import registry
from pemma_cl.strategy_api.options import describe, instantiate, read_config_file, resolve
from pemma_cl.strategy_api.registry import StrategyEntry, register_strategy


@dataclass(frozen=True)
class Knobs:
    lambda_: float = 1.0
    budget: int = 8
    online: bool = False
    mode: str = "separate"

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"budget: expected a positive number, got {self.budget}")


def build(ctx):
    raise AssertionError("never built")


ENTRIES = {"knobs": StrategyEntry("knobs", "x", build, "builtin", options=Knobs),
           "plain": StrategyEntry("plain", "y", build, "builtin")}


def test_defaults_are_resolved_for_every_strategy_with_options() -> None:
    assert resolve(ENTRIES, {}, []) == {"knobs": {"lambda": 1.0, "budget": 8, "online": False, "mode": "separate"}}
    assert describe(Knobs) == "lambda=1.0, budget=8, online=false, mode=separate"
    assert describe(None) == ""


def test_set_overrides_the_config_file_which_overrides_defaults() -> None:
    resolved = resolve(ENTRIES, {"knobs": {"lambda": 5, "budget": 3}}, ["knobs.budget=4", "knobs.online=yes",
                                                                        "knobs.mode=online"])
    assert resolved["knobs"] == {"lambda": 5.0, "budget": 4, "online": True, "mode": "online"}
    assert isinstance(resolved["knobs"]["lambda"], float)  # a YAML integer is accepted for a float option


@pytest.mark.parametrize(
    ("from_file", "assignments", "message"),
    [
        ({}, ["knobs.lamda=1"], "--set knobs.lamda=1: knobs.lamda: unknown option; knobs's options: lambda, budget, online, mode"),
        ({}, ["knobs.budget=2.5"], "--set knobs.budget=2.5: knobs.budget: expected an integer, got '2.5'"),
        ({}, ["knobs.online=maybe"], "knobs.online: expected true or false, got 'maybe'"),
        ({}, ["knobs.budget=0"], "options of knobs: knobs.budget: expected a positive number, got 0"),
        ({}, ["knobs=1"], "--set knobs=1: expected STRATEGY.OPTION=VALUE"),
        ({}, ["other.x=1"], "--set other.x=1: 'other' is not one of the run's strategies (knobs, plain)"),
        ({}, ["plain.x=1"], "plain.x: unknown option; plain's options: (none)"),
        ({"knobs": {"budget": "3"}}, [], "--config 'run.yaml': strategies.knobs: knobs.budget: expected an integer, got '3'"),
        ({"knobs": {"online": 1}}, [], "knobs.online: expected true or false, got 1"),
    ],
)
def test_bad_options_are_one_line_errors(from_file: dict, assignments: list[str], message: str) -> None:
    with pytest.raises(UserError) as raised:
        resolve(ENTRIES, from_file, assignments, Path("run.yaml"))
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_instantiate_builds_the_dataclass_with_defaults_for_the_rest() -> None:
    assert instantiate("knobs", Knobs, {"budget": 2}) == Knobs(budget=2)
    assert instantiate("plain", None, {}) is None
    with pytest.raises(UserError, match="strategy 'plain' has no options"):
        instantiate("plain", None, {"x": 1})


def test_config_file_block(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("strategies:\n  knobs: {lambda: 100}\n", encoding="utf-8")
    assert read_config_file(path) == {"knobs": {"lambda": 100}}
    for text, fragment in [("seeds: [1]\n", "expected a mapping with the key 'strategies'"),
                           ("strategies: [knobs]\n", "strategies: expected a mapping of strategy name"),
                           ("strategies: {knobs: 3}\n", "strategies: expected a mapping of strategy name"),
                           ("strategies: {a: [\n", "invalid YAML")]:
        path.write_text(text, encoding="utf-8")
        with pytest.raises(UserError, match=fragment):
            read_config_file(path)
    with pytest.raises(UserError, match="cannot read it"):
        read_config_file(tmp_path / "missing.yaml")


def test_registration_checks_the_options_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", {})

    @dataclass
    class NoDefault:
        budget: int

    @dataclass
    class ListOption:
        centres: list = None  # type: ignore[assignment]

    with pytest.raises(UserError, match="options: expected a dataclass"):
        register_strategy("a", "x", options=dict)
    with pytest.raises(UserError, match="option 'budget': expected a default value"):
        register_strategy("b", "x", options=NoDefault)
    with pytest.raises(UserError, match="option 'centres': type must be bool, int, float or str"):
        register_strategy("c", "x", options=ListOption)
    with pytest.raises(UserError, match="'all' is reserved"):
        register_strategy("all", "x")
