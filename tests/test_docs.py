"""The scripts that generate the documentation's pages (docs/gen_cli.py, docs/gen_api.py, docs/gen_results.py).

The pages themselves are checked by .ci/docs (regenerated, compared with the committed ones, built strictly); these
tests pin what the scripts render, on hand-made inputs.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen_results() -> ModuleType:
    return _script("gen_results")


def test_cli_page_has_every_command_and_every_run_option() -> None:
    page = _script("gen_cli").render()
    for command in ("list", "run", "synth", "prepare", "plot", "report", "claims", "params", "profile"):
        assert f"\n## `{command}`\n" in page
    run_section = page.split("\n## `run`\n", 1)[1].split("\n## `", 1)[0]
    for option in ("--stream NAME_OR_PATH", "--seeds, --seed LIST", "--jobs N|auto", "--executor local|ray"):
        assert f"| `{option}` |" in run_section


def test_api_pages_cover_each_subpackage_but_the_cli() -> None:
    pages = _script("gen_api").pages()
    assert "cli.md" not in pages
    assert "::: pemma_cl.evaluation.dice\n" in pages["evaluation.md"]
    assert "::: pemma_cl.models.backbones.base\n" in pages["models.md"]  # sub-packages of a sub-package too
    assert "::: pemma_cl.strategy_api.registry\n" in pages["strategy_api.md"]
    assert "::: pemma_cl.api\n" in pages["index.md"]  # the top-level modules


def test_table_right_aligns_numeric_columns(gen_results: ModuleType) -> None:
    assert gen_results.table(("name", "what", "x"), [("a", "b", 1)], numeric_from=2) == (
        "| name | what | x |\n| --- | --- | ---: |\n| a | b | 1 |")


def test_duration_rounds_to_whole_seconds(gen_results: ModuleType) -> None:
    assert gen_results._duration(825.578464) == "13 min 46 s"
    assert gen_results._duration(59.6) == "1 min 00 s"


def test_summary_tables_drop_the_definitions_paragraph(gen_results: ModuleType, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "summary.md").write_text("**Seed 0**\n\n| a |\n| --- |\n| 1 |\n\nIntervals: 95% over seeds.\n")
    monkeypatch.setattr(gen_results, "ROOT", tmp_path)
    assert gen_results.summary_tables(Path("run")) == "**Seed 0**\n\n| a |\n| --- |\n| 1 |"


def test_ablation_gap_is_against_each_cohorts_full_finetuning(gen_results: ModuleType, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / gen_results.REFERENCE / "ablation"
    folder.mkdir(parents=True)
    for name, full, lora in (("centers-val-builtin.json", 0.60, 0.50), ("centers-val-synth-seed7.json", 0.40, 0.45)):
        rows = [{"name": "full-finetune", "strategy": "full-finetune", "what": "reference", "final_dice_ctpet": full},
                {"name": "pemma-lora", "strategy": "pemma-lora", "what": "the default", "final_dice_ctpet": lora}]
        (folder / name).write_text(json.dumps({"data": "d", "stream": "centers", "seed": 0, "eval_on": "val",
                                               "results": rows}))
    monkeypatch.setattr(gen_results, "ROOT", tmp_path)
    lines = gen_results.ablation().splitlines()
    assert lines[-1] == "| `pemma-lora` | the default | 0.500 | -0.100 | 0.450 | +0.050 |"
