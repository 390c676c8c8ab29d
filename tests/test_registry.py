"""The strategy plugin API: decorator, plugin files, entry points, broken plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.strategy_api import registry
from pemma_cl.strategy_api.registry import ENTRY_POINT_GROUP, Registry, StrategyEntry, load_registry, register_strategy

PLUGINS = Path(__file__).parent / "plugins"
EXAMPLE = PLUGINS / "example_plugin.py"
BROKEN = PLUGINS / "broken_plugin.py"


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every test its own empty module-level registry, without installed entry points.

    Entry-point plugins are tested in a subprocess, where module caching cannot hide registrations.
    """
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "entry_points", lambda group: [])


def never_called(context: object) -> object:
    """Stand-in build function."""
    raise AssertionError("the registry must never call a build function")


def test_decorator_registers_and_returns_the_function() -> None:
    assert register_strategy("alpha", "First\n  strategy")(never_called) is never_called
    entry = load_registry().get("alpha")
    assert entry == StrategyEntry("alpha", "First strategy", never_called, f"module:{__name__}")


def test_entries_are_sorted_by_name() -> None:
    for name in ("zeta", "alpha", "mu"):
        register_strategy(name, "x")(never_called)
    assert list(load_registry().entries) == ["alpha", "mu", "zeta"]


def test_same_source_may_register_again() -> None:
    register_strategy("alpha", "old")(never_called)
    register_strategy("alpha", "new")(never_called)
    assert load_registry().get("alpha").description == "new"


def test_clash_with_another_source_is_rejected(tmp_path: Path) -> None:
    register_strategy("example-plugin", "taken")(never_called)
    loaded = load_registry([EXAMPLE])
    assert loaded.get("example-plugin").description == "taken"
    assert loaded.broken == {f"file:{EXAMPLE}": f"strategy 'example-plugin' is already registered by module:{__name__}"}


@pytest.mark.parametrize("name", ["", "-x", "has space", "a/b", 3])
def test_invalid_names_are_rejected(name: object) -> None:
    with pytest.raises(UserError, match="expected letters, digits"):
        register_strategy(name, "x")  # type: ignore[arg-type]


def test_empty_description_is_rejected() -> None:
    with pytest.raises(UserError, match="description: expected a non-empty string"):
        register_strategy("alpha", "  ")


def test_unknown_strategy_lists_valid_names() -> None:
    register_strategy("b", "x")(never_called)
    register_strategy("a", "x")(never_called)
    with pytest.raises(UserError) as info:
        load_registry().get("nope")
    assert str(info.value) == "unknown strategy 'nope'; valid strategies: a, b"


def test_unknown_strategy_points_at_broken_plugins() -> None:
    with pytest.raises(
        UserError, match=r"valid strategies: \(none\); 1 plugin\(s\) failed to load, see 'pemma-bench list'"
    ):
        Registry(entries={}, broken={"file:x.py": "boom"}).get("nope")


def test_file_plugin_registers_a_strategy() -> None:
    entry = load_registry([EXAMPLE]).get("example-plugin")
    assert entry.source == f"file:{EXAMPLE}"
    assert entry.description == "Example file plugin (registration only, cannot train)"
    assert load_registry([EXAMPLE]).get("example-plugin").source == entry.source  # loading twice is fine


def test_broken_file_plugin_is_recorded_not_raised() -> None:
    loaded = load_registry([BROKEN, EXAMPLE])
    assert "example-plugin" in loaded.entries
    assert loaded.broken[f"file:{BROKEN}"] == "ModuleNotFoundError: No module named 'pemma_cl_missing_dependency'"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def broken(:\n", "SyntaxError: "),
        ("raise RuntimeError('plugin\\nexploded')\n", "RuntimeError: plugin exploded"),
        ("import sys\nsys.exit(3)\n", "SystemExit: 3"),
    ],
)
def test_failing_plugin_files_are_recorded(tmp_path: Path, source: str, reason: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(source)
    broken = load_registry([path]).broken[f"file:{path}"]
    assert broken.startswith(reason)
    assert "\n" not in broken


def test_missing_and_non_python_plugin_files(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    broken = load_registry([tmp_path / "missing.py", text]).broken
    assert broken[f"file:{tmp_path / 'missing.py'}"] == f"FileNotFoundError: no such file '{tmp_path / 'missing.py'}'"
    assert "is not a Python file" in broken[f"file:{text}"]


def test_failed_plugin_leaves_no_registrations_behind(tmp_path: Path) -> None:
    register_strategy("taken", "x")(never_called)
    path = tmp_path / "half.py"
    path.write_text(
        textwrap.dedent(
            """
            from pemma_cl.strategy_api.registry import register_strategy
            register_strategy("half-a", "registered before the clash")(print)
            register_strategy("taken", "clashes")(print)
            """
        )
    )
    loaded = load_registry([path])
    assert list(loaded.entries) == ["taken"]
    assert "already registered" in loaded.broken[f"file:{path}"]


def test_builtin_strategies_are_declared_as_entry_points() -> None:
    declared = {
        ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.dist and ep.dist.name == "pemma-cl"
    }
    modules = sorted(p.stem for p in (Path(__file__).parents[1] / "strategies").glob("*.py") if not p.stem.startswith("_"))
    assert declared == {m.replace("_", "-"): f"pemma_cl.strategies.{m}" for m in modules}
    assert {"ewc", "mas", "lwf", "replay", "cumulative", "joint"} <= set(declared)


def test_list_groups_by_family_and_all_selects_every_strategy() -> None:
    register_strategy("zeta-plugin", "x")(never_called)
    register_strategy("rehearse", "x", family="rehearsal")(never_called)
    register_strategy("pemma-x", "x", family="PEMMA")(never_called)
    register_strategy("my-own", "x", family="bayesian")(never_called)
    register_strategy("alpha-plugin", "x")(never_called)
    loaded = load_registry()
    assert [(f, [e.name for e in es]) for f, es in loaded.by_family()] == [
        ("PEMMA", ["pemma-x"]), ("rehearsal", ["rehearse"]), ("plugin", ["alpha-plugin", "zeta-plugin"]),
        ("bayesian", ["my-own"])]
    assert loaded.select(["all"]) == ("pemma-x", "rehearse", "alpha-plugin", "zeta-plugin", "my-own")
    assert loaded.select(["rehearse", "all"]) == ("rehearse", "pemma-x", "alpha-plugin", "zeta-plugin", "my-own")
    with pytest.raises(UserError, match="unknown strategy 'nope'"):
        loaded.select(["all", "nope"])


def make_fake_distribution(root: Path) -> None:
    """Install ``fakeplug`` 0.1 into ``root``: a module entry point, a callable one and a broken one."""
    info = root / "fakeplug-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [{ENTRY_POINT_GROUP}]
            fake-module = fakeplug_module
            fake-callable = fakeplug_callable:build
            fake-missing = fakeplug_missing
            """
        )
    )
    (root / "fakeplug_module.py").write_text(
        textwrap.dedent(
            """
            from pemma_cl.strategy_api.registry import register_strategy

            @register_strategy("fake-module", "Registered by importing an entry-point module")
            def build(context):
                raise NotImplementedError
            """
        )
    )
    (root / "fakeplug_callable.py").write_text(
        textwrap.dedent(
            '''
            def build(context):
                """Registered from an entry-point callable.

                Only the first docstring line is the description.
                """
                raise NotImplementedError
            '''
        )
    )


def test_entry_point_plugins_are_loaded(tmp_path: Path) -> None:
    make_fake_distribution(tmp_path)
    script = textwrap.dedent(
        """
        import json, sys
        from pemma_cl.strategy_api.registry import load_registry
        loaded = load_registry()
        print(json.dumps({
            "entries": {e.name: [e.description, e.source] for e in loaded.entries.values()},
            "broken": loaded.broken,
            "torch": "torch" in sys.modules,
        }))
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout)
    assert result["entries"]["fake-module"] == ["Registered by importing an entry-point module", "entry-point:fakeplug"]
    assert result["entries"]["fake-callable"] == ["Registered from an entry-point callable.", "entry-point:fakeplug"]
    assert result["broken"]["entry-point:fakeplug (fake-missing = fakeplug_missing)"] == (
        "ModuleNotFoundError: No module named 'fakeplug_missing'"
    )
    assert result["torch"] is False
