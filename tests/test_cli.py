"""The ``pemma-bench`` command line, with a fake runner so that nothing trains."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from pemma_cl import __version__
from pemma_cl.cli.app import app
from pemma_cl.core.errors import UserError
from pemma_cl.report.seeds import aggregate
from pemma_cl.run.config import DEFAULT_STRATEGIES, PRESETS, RunConfig
from pemma_cl.strategy_api import registry
from pemma_cl.strategy_api.registry import Registry, register_strategy
from pemma_cl.streams.spec import benchmarks_dir

PLUGINS = Path(__file__).parent / "plugins"
EXAMPLE = PLUGINS / "example_plugin.py"
BROKEN = PLUGINS / "broken_plugin.py"
HEAVY_MODULES = ("torch", "monai", "avalanche", "peft", "pandas", "matplotlib")


@pytest.fixture(autouse=True)
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give every test its own empty registry, without installed entry points (tested in test_registry)."""
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "entry_points", lambda group: [])


@pytest.fixture
def runner_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[RunConfig, Registry, list[str]]]:
    """Install a fake ``pemma_cl.run.benchmark`` that records its calls and returns ``<results_dir>/run-1``."""
    calls: list[tuple[RunConfig, Registry, list[str]]] = []

    def run_benchmark(work: Any, registry: Registry, command: list[str], *execution: Any) -> Path:
        calls.append((work.config, registry, command))
        print("training progress")
        return work.config.results_dir / "run-1"

    fake_runner(monkeypatch, run_benchmark)
    return calls


def fake_runner(monkeypatch: pytest.MonkeyPatch, run_benchmark: Callable[..., Path]) -> None:
    """Replace ``pemma_cl.run.benchmark`` by a module whose ``open_work`` wraps the config and ``run_benchmark`` is given."""
    module = types.ModuleType("pemma_cl.run.benchmark")
    module.open_work = lambda config: types.SimpleNamespace(config=config)  # type: ignore[attr-defined]
    module.run_benchmark = run_benchmark  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pemma_cl.run.benchmark", module)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def assert_user_error(result: Result, *fragments: str) -> str:
    """Check the one-line ``error:`` contract and return the message."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_version_and_help() -> None:
    assert invoke("--version").stdout == f"pemma-bench {__version__}\n"
    help_text = invoke("--help").stdout
    for command in ("list", "run", "synth", "prepare", "plot", "report"):
        assert command in help_text
    assert "Usage" in invoke().output


def test_list_shows_streams_strategies_and_unavailable_plugins() -> None:
    result = invoke("list", "--plugin", EXAMPLE, "--plugin", BROKEN)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "streams:" in out and "strategies:" in out and "unavailable plugins:" in out
    assert "  paper             " in out and "  paper-ct          " in out and "  centers-ct        " in out
    words = " ".join(out.split())  # the texts wrap to the terminal's width
    assert ("centers CT-pretrained base, then one experience per HECKTOR centre with CT+PET "
            "(PET first arrives at MDA) (7 experiences: 7 segmentation)") in words
    assert re.search(r"modalities .*? \(4 experiences: 1 segmentation, 3 prognosis\)", words)
    assert (f"example-plugin Example file plugin (registration only, cannot train) [file:{EXAMPLE}]") in words
    assert f"file:{BROKEN}: ModuleNotFoundError: No module named 'pemma_cl_missing_dependency'" in words


@dataclass(frozen=True)
class RegOptions:
    lambda_: float = 100.0
    budget: int = 4


@pytest.fixture
def two_families() -> None:
    """A regulariser with options (reg-a) and a reference without (ref-b)."""
    register_strategy("reg-a", "A regulariser", family="regularisation", options=RegOptions)(print)
    register_strategy("ref-b", "A reference", family="reference")(print)


def test_list_groups_strategies_by_family_with_their_options(two_families) -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("strategies: reference:\n  ref-b") < out.index("strategies: regularisation:\n  reg-a")
    assert "\n  reg-a  A regulariser [module:builtins]\n           options: lambda=100.0, budget=4\n" in out


def test_run_all_strategies_with_options_from_a_file_and_set(tmp_path: Path, runner_calls: list[Any],
                                                              two_families) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text("strategies:\n  reg-a: {lambda: 5, budget: 2}\n", encoding="utf-8")
    result = invoke("run", "--stream", "paper", "--strategy", "all", "--config", config_file, "--set", "reg-a.budget=3")
    assert result.exit_code == 0, result.output
    config = runner_calls[0][0]
    assert config.strategies == ("ref-b", "reg-a")
    assert config.strategy_options == {"reg-a": {"lambda": 5.0, "budget": 3}}
    assert config.to_dict()["strategy_options"] == {"reg-a": {"lambda": 5.0, "budget": 3}}  # what config.json holds
    assert RunConfig.from_dict(config.to_dict()) == config
    assert_user_error(invoke("run", "--stream", "paper", "--strategy", "ref-b", "--set", "reg-a.budget=3"),
                      "error: --set reg-a.budget=3: 'reg-a' is not one of the run's strategies (ref-b)")
    assert_user_error(invoke("run", "--stream", "paper", "--strategy", "reg-a", "--set", "reg-a.budget=x"),
                      "error: --set reg-a.budget=x: reg-a.budget: expected an integer, got 'x'")
    assert len(runner_calls) == 1


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_run_refuses_a_non_finite_float_option_on_the_command_line(runner_calls: list[Any], two_families,
                                                                   value: str) -> None:
    shown = {"1e999": "inf"}.get(value, value)
    assert_user_error(invoke("run", "--stream", "paper", "--strategy", "reg-a", "--set", f"reg-a.lambda={value}"),
                      f"error: --set reg-a.lambda={value}: reg-a.lambda: expected a finite number, got {shown}")
    assert runner_calls == []


@pytest.mark.parametrize(("yaml_value", "shown"), [(".nan", "nan"), (".inf", "inf"), ("-.inf", "-inf"),
                                                   ("1.0e+999", "inf")])
def test_run_refuses_a_non_finite_float_in_a_config_or_stream_file(tmp_path: Path, runner_calls: list[Any],
                                                                   two_families, yaml_value: str, shown: str) -> None:
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"strategies:\n  reg-a: {{lambda: {yaml_value}}}\n", encoding="utf-8")
    assert_user_error(invoke("run", "--stream", "paper", "--strategy", "reg-a", "--config", config_file),
                      f"error: --config '{config_file}': strategies.reg-a: reg-a.lambda: expected a finite number, "
                      f"got {shown}")
    stream_file = tmp_path / "scaled.yaml"
    text = (benchmarks_dir() / "paper.yaml").read_text().replace("name: paper", "name: scaled")
    stream_file.write_text(f"{text}synthetic_scale: {yaml_value}\n", encoding="utf-8")
    assert_user_error(invoke("run", "--stream", stream_file, "--strategy", "reg-a"),
                      f"error: {stream_file}: synthetic_scale: expected a number in (0, 20], got {shown}")
    assert runner_calls == []


def test_list_without_plugins_has_no_unavailable_section() -> None:
    result = invoke("list")
    assert result.exit_code == 0
    assert "strategies:\n  (none)\n" in result.stdout
    assert "unavailable plugins" not in result.stdout


PROBE = """
import json, sys
args = sys.argv[1:]
code = 0
from pemma_cl.cli.app import main
if args:
    try:
        main()
    except SystemExit as exc:
        code = exc.code
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize(
    "args",
    [[], ["--help"], ["list"], ["list", "--plugin", str(EXAMPLE), "--plugin", str(BROKEN)], ["synth", "--help"],
     ["prepare", "--help"]],
)
def test_import_help_and_list_stay_light(args: list[str]) -> None:
    probe = PROBE.format(heavy=repr(HEAVY_MODULES))
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stderr.splitlines()[-1]) == []


def test_run_calls_the_runner_and_prints_the_run_folder_last(
    tmp_path: Path, runner_calls: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["pemma-bench", "run", "--stream", "paper", "--strategy", "example-plugin", "--plugin", str(EXAMPLE)]
    monkeypatch.setattr(sys, "argv", argv)
    result = invoke(
        "run", "--stream", "paper", "--strategy", "example-plugin", "--seed", "7", "--preset", "paper",
        "--results-dir", tmp_path, "--epochs", "3", "--device", "cpu", "--plugin", EXAMPLE, "--on-bad-case", "skip",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == str(tmp_path / "run-1")
    [(config, loaded, command)] = runner_calls
    assert config.stream.name == "paper"
    assert config.stream.path == benchmarks_dir() / "paper.yaml"
    assert config.strategies == ("example-plugin",)
    assert (config.seeds, config.preset, config.data, config.epochs, config.device) == (
        (7,),
        "paper",
        "synthetic",
        3,
        "cpu",
    )
    assert config.results_dir == tmp_path
    assert config.plugin_files == (EXAMPLE,)
    assert config.on_bad_case == "skip"
    assert "example-plugin" in loaded.entries
    assert command == argv


def test_run_defaults(tmp_path: Path, runner_calls: list[Any]) -> None:
    for name in DEFAULT_STRATEGIES:
        register_strategy(name, "placeholder")(print)
    stream_file = tmp_path / "mine.yaml"
    stream_file.write_text((benchmarks_dir() / "paper.yaml").read_text().replace("name: paper", "name: mine"))
    result = invoke("run", "--stream", stream_file)
    assert result.exit_code == 0, result.output
    [(config, _, _)] = runner_calls
    assert config.stream.name == "mine"
    assert config.strategies == DEFAULT_STRATEGIES
    assert (config.seeds, config.preset, config.data, config.epochs, config.device, config.on_bad_case) == (
        (0,),
        "tiny",
        "synthetic",
        None,
        "auto",
        "refuse",
    )
    assert config.results_dir == Path("results") and config.eval_on == "test"
    assert config.reference == "early-fusion" and config.loggers == ()
    assert result.stdout.splitlines()[-1] == str(Path("results") / "run-1")


def test_run_with_seeds_reference_and_loggers(runner_calls: list[Any]) -> None:
    result = invoke("run", "--stream", "paper", "--plugin", EXAMPLE, "--strategy", "example-plugin", "--seeds", "0, 1,2",
                    "--reference", "example-plugin", "--logger", "csv", "--logger", "tensorboard")
    assert result.exit_code == 0, result.output
    config = runner_calls[0][0]
    assert (config.seeds, config.reference, config.loggers) == ((0, 1, 2), "example-plugin", ("csv", "tensorboard"))
    invoke("run", "--stream", "paper", "--plugin", EXAMPLE, "--strategy", "example-plugin")
    assert runner_calls[1][0].reference is None  # early fusion is not in this run: nothing to pair with


def test_run_on_validation_cases(runner_calls: list[Any]) -> None:
    result = invoke("run", "--stream", "paper", "--plugin", EXAMPLE, "--strategy", "example-plugin", "--eval-on", "val")
    assert result.exit_code == 0, result.output
    assert runner_calls[0][0].eval_on == "val"


def test_unknown_stream_fails_before_anything_is_created(tmp_path: Path, runner_calls: list[Any]) -> None:
    results = tmp_path / "results"
    result = invoke(
        "run", "--stream", "nope", "--results-dir", results, "--plugin", EXAMPLE, "--strategy", "example-plugin"
    )
    assert_user_error(result, "error: unknown stream 'nope'; valid streams: centers, centers-ct, centers-noshift, modalities, modalities-paper, paper, paper-ct")
    assert not results.exists()
    assert runner_calls == []


def test_unknown_strategy_lists_valid_names(runner_calls: list[Any]) -> None:
    result = invoke("run", "--stream", "paper", "--strategy", "nope", "--plugin", EXAMPLE)
    assert_user_error(result, "error: unknown strategy 'nope'; valid strategies: example-plugin")
    assert runner_calls == []


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("task: 3}", "task: 3", "invalid YAML: "),
        (
            "[MDA], modalities: [ct, pet]",
            "[MDA], modalities: [mri]",
            "experiences[0].modalities: expected a non-empty subset of [ct, pet], got ['mri']",
        ),
        ("[HGJ]", "[[HGJ]]", "experiences[1].centres: expected a non-empty list of distinct values"),
        ("name: HMR", "name: MDA", "experiences[2].name: expected a unique name, got 'MDA' again"),
    ],
)
def test_malformed_stream_file_names_file_and_field(
    tmp_path: Path, runner_calls: list[Any], old: str, new: str, message: str
) -> None:
    text = (benchmarks_dir() / "paper.yaml").read_text().replace("name: paper", "name: bad")
    assert old in text
    stream_file = tmp_path / "bad.yaml"
    stream_file.write_text(text.replace(old, new))
    result = invoke("run", "--stream", stream_file, "--plugin", EXAMPLE, "--strategy", "example-plugin")
    assert_user_error(result, f"error: {stream_file}: ", message)
    assert runner_calls == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--preset", "huge"], f"error: preset: expected one of [{', '.join(PRESETS)}], got 'huge'"),
        (["--device", "tpu"], "error: device: expected one of [auto, cpu, cuda], got 'tpu'"),
        (["--epochs", "0"], "error: epochs: expected a positive integer, got 0"),
        (["--data", "csv:x"], "error: data: expected 'synthetic', 'hecktor:DIR' or 'nnunet:DIR', got 'csv:x'"),
        (["--data", "hecktor:/does/not/exist"], "error: data: HECKTOR folder '/does/not/exist' does not exist"),
        (["--data", "hecktor:."], "error: data: '.' is not a HECKTOR 2022 training folder: imagesTr, labelsTr, "),
        (["--on-bad-case", "ignore"], "error: on_bad_case: expected one of [refuse, skip], got 'ignore'"),
        (["--eval-on", "train"], "error: eval_on: expected one of [test, val], got 'train'"),
        (
            ["--strategy", "example-plugin", "--strategy", "example-plugin"],
            "error: strategies: each strategy may be named once",
        ),
        (["--plugin", str(BROKEN)], f"error: plugin '{BROKEN}' failed to load: ModuleNotFoundError"),
        (["--seeds", "0,x"], "error: --seeds: expected non-negative integers separated by commas (e.g. 0,1,2), got '0,x'"),
        (["--seeds", "-1"], "error: --seeds: expected non-negative integers"),
        (["--seeds", "1,1"], "error: seeds: each seed may be named once, got [1, 1]"),
        (["--strategy", "example-plugin", "--reference", "early-fusion"],
         "error: --reference: 'early-fusion' is not one of the run's strategies (example-plugin)"),
        (["--executor", "spark"], "error: --executor: expected one of [local, ray], got 'spark'"),
        (["--ray-address", "ray://head:10001"], "error: --ray-address: only with --executor ray"),
        (["--jobs", "0"], "error: --jobs: expected a positive integer or 'auto', got '0'"),
        (["--jobs", "two"], "error: --jobs: expected a positive integer or 'auto', got 'two'"),
        (["--executor", "ray", "--jobs", "2"],
         "error: --jobs: only with --executor local (Ray gives each unit one CPU)"),
        (["--logger", "mlflow"], "error: loggers: expected distinct names from [tensorboard, csv, wandb, text], got ['mlflow']"),
    ],
)
def test_run_rejects_bad_options(runner_calls: list[Any], args: list[str], message: str) -> None:
    strategy = [] if "--strategy" in args else ["--strategy", "example-plugin"]
    result = invoke("run", "--stream", "paper", "--plugin", EXAMPLE, *strategy, *args)
    assert_user_error(result, message)
    assert runner_calls == []


@pytest.mark.parametrize(
    ("raised", "code", "stderr"),
    [
        (UserError("no space left for\nthe run"), 2, "error: no space left for the run\n"),
        (UserError("2 of 5 cases are bad", details=["A-1: x", "B-2: y"]), 2, "error: 2 of 5 cases are bad\n  A-1: x\n  B-2: y\n"),
        (KeyboardInterrupt(), 130, "interrupted\n"),
    ],
)
def test_errors_inside_the_runner(
    monkeypatch: pytest.MonkeyPatch, raised: BaseException, code: int, stderr: str
) -> None:
    def run_benchmark(work: Any, registry: Registry, command: list[str], *execution: Any) -> Path:
        raise raised

    fake_runner(monkeypatch, run_benchmark)
    result = invoke("run", "--stream", "paper", "--strategy", "example-plugin", "--plugin", EXAMPLE)
    assert result.exit_code == code
    assert result.stderr == stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hecktor", "/does/not/exist"], "error: --hecktor: folder '/does/not/exist' does not exist"),
        (["--hecktor", ".", "--size", "4"], "error: --size: expected an integer >= 8, got 4"),
        (["--hecktor", ".", "--workers", "0"], "error: --workers: expected a positive integer, got 0"),
        (["--hecktor", ".", "--on-bad-case", "ignore"], "error: --on-bad-case: expected one of [refuse, skip], got 'ignore'"),
        (["--hecktor", "."], "error: '.' is not a HECKTOR 2022 training folder: imagesTr, labelsTr, "),
    ],
)
def test_prepare_rejects_bad_options(args: list[str], message: str) -> None:
    assert_user_error(invoke("prepare", *args), message)


def test_report_prints_the_summary(tmp_path: Path) -> None:
    (tmp_path / "summary.md").write_text("# Summary\n\n| strategy | dice |\n")
    result = invoke("report", tmp_path, "--markdown")
    assert result.exit_code == 0
    assert result.stdout == "# Summary\n\n| strategy | dice |\n"


def test_report_adds_the_claims_when_the_run_has_them(tmp_path: Path) -> None:
    (tmp_path / "summary.md").write_text("| strategy | dice |\n")
    (tmp_path / "claims.md").write_text("| claim | verdict |\n")
    result = invoke("report", tmp_path, "--markdown")
    assert result.exit_code == 0
    assert result.stdout == "| strategy | dice |\n\n| claim | verdict |\n"


def test_claims_weighs_several_runs_and_refuses_a_missing_one(tmp_path: Path) -> None:
    # The claims test the strategies registered in the PEMMA family (this module's registry starts empty).
    register_strategy("pemma-lora-shared", "shared PEMMA", family="PEMMA")(lambda context: None)
    for stream, modalities, dice in (("paper", [["ct", "pet"]] * 2, 0.6), ("paper-ct", [["ct", "pet"], ["ct"]], 0.7)):
        folder = tmp_path / stream
        folder.mkdir()
        experiences = [{"name": f"E{i}", "modalities": m} for i, m in enumerate(modalities)]
        (folder / "config.json").write_text(json.dumps({"stream": {"name": stream, "experiences": experiences}}))
        results = {"final_dice": dice, "forgetting": 0.0}
        (folder / "summary.json").write_text(json.dumps(aggregate({0: {
            "pemma-lora-shared": {"evaluation": "task-agnostic", "costs": {},
                                  "inputs": {s: results for s in ("ct", "pet", "ctpet")}},
            "early-fusion": {"evaluation": "task-agnostic", "costs": {},
                             "inputs": {s: {**results, "final_dice": 0.5} for s in ("ct", "pet", "ctpet")}}}}, None)))
    result = invoke("claims", tmp_path / "paper", tmp_path / "paper-ct")
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "pemma-lora-shared" in line]
    assert any("| paper |" in row for row in rows) and any("| paper-ct |" in row for row in rows)
    assert "7.2% trainable at the paper preset" in result.stdout
    assert_user_error(invoke("claims", tmp_path / "paper", tmp_path / "nope"), "run folder", "does not exist")


@pytest.mark.slow  # builds PEMMA at the paper preset
def test_params_counts_pemma_at_the_paper_preset() -> None:
    result = invoke("params", "--preset", "paper", "--tasks", "3")
    assert result.exit_code == 0, result.output
    lines = {line.split("  ")[1].strip(): line for line in result.stdout.splitlines()[2:]}
    assert lines["trainable / serving one task"].split()[-2:] == ["7.16%", "7.24%"]
    assert "92,802,291" in lines["frozen CT base"]
    swin = invoke("params", "--preset", "paper", "--tasks", "3", "--backbone", "swin-unetr")
    assert swin.exit_code == 0, swin.output
    assert "PEMMA on swin-unetr at the 'paper' preset" in swin.stdout and "184,320" in swin.stdout
    assert_user_error(invoke("params", "--backbone", "resnet"), "--backbone: expected one of [unetr, swin-unetr]")
    assert_user_error(invoke("params", "--preset", "huge"), "--preset: expected one of")
    assert_user_error(invoke("params", "--tasks", "0"), "--tasks: expected a positive integer, got 0")


def test_report_and_plot_need_a_run_folder(tmp_path: Path) -> None:
    assert_user_error(invoke("report", tmp_path / "nope"), f"run folder '{tmp_path / 'nope'}' does not exist")
    assert_user_error(invoke("report", tmp_path), f"{tmp_path / 'summary.json'}: not found")
    assert_user_error(invoke("report", tmp_path, "--markdown"), f"{tmp_path / 'summary.md'}: not found")
    assert_user_error(invoke("plot", tmp_path), f"{tmp_path / 'metrics.csv'}: not found")


def test_report_puts_several_runs_side_by_side(tmp_path: Path) -> None:
    for name, dice in (("run-a", 0.61), ("run-b", 0.52)):
        (tmp_path / name).mkdir()
        seed = {"early-fusion": {"evaluation": "task-agnostic", "inputs": {"ctpet": {"final_dice": dice}}, "costs": {}}}
        (tmp_path / name / "summary.json").write_text(json.dumps(aggregate({0: seed}, None)))
    shown = invoke("report", tmp_path / "run-a", tmp_path / "run-b")  # laid out for the terminal, as run prints
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.stdout.splitlines() if "early-fusion" in line]
    assert "0.610" in rows[0] and "0.520" in rows[1] and "| Run |" not in shown.stdout
    result = invoke("report", tmp_path / "run-a", tmp_path / "run-b", "--markdown")
    assert result.exit_code == 0, result.output
    assert "| Run | Strategy |" in result.stdout
    assert "| run-a | early-fusion | task-agnostic | – | – | 0.610 |" in result.stdout
    assert "| run-b | early-fusion | task-agnostic | – | – | 0.520 |" in result.stdout
    (tmp_path / "run-b" / "summary.json").write_text("{}")
    assert_user_error(invoke("report", tmp_path / "run-a", tmp_path / "run-b"), "summary.json: no 'strategies' in it")


def test_report_recomputes_paired_differences_against_another_reference(tmp_path: Path) -> None:
    seeds = {0: (0.60, 0.50), 1: (0.70, 0.62)}  # seed: (A, B) final CT+PET Dice
    for seed, (a, b) in seeds.items():
        per_seed = {name: {"evaluation": "task-agnostic", "inputs": {"ctpet": {"final_dice": dice}}, "costs": {}}
                    for name, dice in (("A", a), ("B", b))}
        (tmp_path / f"seeds/seed{seed}").mkdir(parents=True)
        (tmp_path / f"seeds/seed{seed}/summary.json").write_text(json.dumps(per_seed))
    (tmp_path / "summary.json").write_text(json.dumps(aggregate(
        {s: json.loads((tmp_path / f"seeds/seed{s}/summary.json").read_text()) for s in seeds}, "A")))
    result = invoke("report", tmp_path, "--reference", "B", "--markdown")
    assert result.exit_code == 0, result.output
    assert "strategy minus B" in result.stdout and "| A | – | – | +0.090 ± " in result.stdout  # (0.10 + 0.08) / 2
    assert_user_error(invoke("report", tmp_path, "--reference", "C"), "--reference:", "has no strategy 'C' (it has A, B)")


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], dict, Path]]:
    """Install a fake ``pemma_cl.report.plots.figures`` recording (metric columns, summary, folder) of each ``draw_all`` call."""
    pytest.importorskip("pandas")
    calls: list[tuple[list[str], dict, Path]] = []

    def draw_all(df, summary, folder: Path, predictions=None) -> list[Path]:
        calls.append((list(df.columns), summary, folder))
        return [folder / "a.png", folder / "b.png"]

    module = types.ModuleType("pemma_cl.report.plots.figures")
    module.draw_all = draw_all  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pemma_cl.report.plots.figures", module)
    return calls


def test_plot_redraws_from_metrics_csv_and_summary(tmp_path: Path, drawn: list[Any]) -> None:
    (tmp_path / "metrics.csv").write_text("strategy,dice\npemma-lora,0.7\n")
    assert_user_error(invoke("plot", tmp_path), f"{tmp_path / 'summary.json'}: not found")
    (tmp_path / "summary.json").write_text('{"strategies": {}}')
    result = invoke("plot", tmp_path)
    assert result.exit_code == 0, result.output
    assert drawn == [(["strategy", "dice"], {"strategies": {}}, tmp_path / "plots")]
    assert result.stdout.splitlines() == [str(tmp_path / "plots" / "a.png"), str(tmp_path / "plots" / "b.png")]


def test_plot_rejects_an_empty_metrics_csv(tmp_path: Path, drawn: list[Any]) -> None:
    (tmp_path / "metrics.csv").write_text("")
    (tmp_path / "summary.json").write_text("{}")
    assert_user_error(invoke("plot", tmp_path), "metrics.csv: cannot read it as CSV")
    assert drawn == []


def test_resume_takes_nothing_but_the_folder(tmp_path: Path, runner_calls: list[Any]) -> None:
    assert_user_error(invoke("run", "--resume", tmp_path, "--stream", "paper"),
                      "--resume continues with the run's own settings", "leave out --stream")
    assert_user_error(invoke("run", "--resume", tmp_path), f"--resume: '{tmp_path}' is not the partial folder")
    assert_user_error(invoke("run"), "--stream: a stream name or .yaml file is required (or --resume RUN_DIR)")
    assert runner_calls == []


@pytest.mark.parametrize(("columns", "width"), [("60", 80), ("80", 80), ("132", 132), ("300", 200)])
def test_the_console_follows_the_terminal_within_readable_bounds(monkeypatch: pytest.MonkeyPatch, columns: str,
                                                                  width: int) -> None:
    from pemma_cl.core.terminal import console_width

    monkeypatch.setenv("COLUMNS", columns)
    assert console_width() == width


def test_list_and_help_fit_an_80_column_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for args in (("list",), ("--help",)):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert max(map(len, result.stdout.splitlines())) <= 80
    commands = invoke("--help").stdout.split("Commands:")[1]
    assert "..." not in commands and "profile" in commands  # every command's summary whole
