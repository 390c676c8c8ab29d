"""The scripts that generate the documentation's pages (docs/gen_cli.py, docs/gen_api.py, docs/gen_results.py).

The pages themselves are checked by .ci/docs (regenerated, compared with the committed ones, built strictly); these
tests pin what the scripts render, on hand-made inputs.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from markdown_blocks import code_blocks

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
#: The one page that may name commits and issues: the history kept per release.
CHANGELOG = DOCS / "changelog.md"
#: A commit hash: 7 to 40 lowercase hex digits, at least one letter and one digit (so no date, no plain number),
#: standing alone (not inside a longer word, a file name or an identifier). Example ids in the pages are written as
#: placeholders (``<fingerprint>``), never as hex, so that this rule stays this simple.
COMMIT_HASH = re.compile(r"(?<![0-9A-Za-z_])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?![0-9A-Za-z_])")
#: A reference to the project's issue tracker ("issue 23", "issues 12", "issue #12").
ISSUE_NUMBER = re.compile(r"\bissues?\s+#?\d+", re.IGNORECASE)
#: The width of the site's content column in characters: a longer code line is cut on the built page.
CODE_COLUMNS = 88


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


def _pages(*, generated: bool) -> list[Path]:
    pages = sorted(DOCS.rglob("*.md"))
    return pages if generated else [p for p in pages if "_generated" not in p.parts and p.parent.name != "api"
                                    and p != DOCS / "reference" / "cli.md"]


@pytest.mark.parametrize("pattern", [COMMIT_HASH, ISSUE_NUMBER], ids=["commit-hash", "issue-number"])
def test_no_commit_hash_or_issue_number_outside_the_changelog(pattern: re.Pattern[str]) -> None:
    found = [f"{page.relative_to(REPO)}:{number}: {match.group(0)}"
             for page in [*_pages(generated=True), REPO / "README.md"] if page != CHANGELOG
             for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             for match in pattern.finditer(line)]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(("line", "flagged"), [
    ("at commit `e416bf1` (a clean tree)", ["e416bf1"]),
    ("run on 20261204, seed 100, 2e-3, 1566 cases", []),  # dates and numbers have no letter
    ("results/.centers-seed0.partial-<fingerprint>/, a .pt file, deadbeef", []),  # no digit in a word
    ("in a clone of de76a388fb078d9683a73a96af6d58cd3132f633.", ["de76a388fb078d9683a73a96af6d58cd3132f633"]),
    ("the changelog's #the-real-data-path-at-2bbda4f", ["2bbda4f"]),
])
def test_commit_hash_rule(line: str, flagged: list[str]) -> None:
    assert COMMIT_HASH.findall(line) == flagged


def test_code_lines_fit_the_content_column() -> None:
    long = [f"{page.relative_to(REPO)}:{block.first_line + i}: {len(line)} characters"
            for page in _pages(generated=False)
            for block in code_blocks(page.read_text(encoding="utf-8"))
            for i, line in enumerate(block.lines) if len(line) > CODE_COLUMNS]
    assert not long, "\n".join(long)


def test_code_blocks_are_read_inside_admonitions_too() -> None:
    text = "a\n\n```bash\nx --y\n```\n\n!!! note\n    ```text\n    one\n    two\n    ```\n"
    blocks = code_blocks(text)
    assert [(b.language, b.first_line, b.lines) for b in blocks] == [("bash", 4, ("x --y",)),
                                                                     ("text", 9, ("one", "two"))]


def test_seed_ranges_join_consecutive_seeds(gen_results: ModuleType) -> None:
    assert gen_results.seed_ranges([2, 0, 1]) == "0–2"
    assert gen_results.seed_ranges([0, 2, 3, 4, 9]) == "0, 2–4, 9 (5)"
