"""Every ``pemma-bench`` command in the guides runs as written: its subcommand exists, each option it uses is one
that subcommand has (read from its ``--help``), and the streams and strategies it names exist.

The commands come from the shell blocks (```bash, ```console, ```sh) of the pages a user copies commands from. A
command is checked against its ``--help`` form rather than run, so the whole test takes seconds; training is what
the rest of the suite tests.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from markdown_blocks import code_blocks
from typer.testing import CliRunner

from pemma_cl.cli.app import app
from pemma_cl.strategy_api.registry import load_registry
from pemma_cl.streams.spec import list_streams

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
#: The pages whose shell blocks a user copies.
PAGES = (REPO / "README.md", DOCS / "index.md", DOCS / "install.md", DOCS / "running.md",
         *sorted((DOCS / "guide").glob("*.md")))
SHELL_LANGUAGES = frozenset({"bash", "console", "sh", "shell"})
#: Subcommands whose commands are not checked, and why: none today. (A command that needs the network, such as
#: a download, would be listed here; every documented command works offline.)
OFFLINE_SKIPS: dict[str, str] = {}
#: Placeholder values in the pages: a command whose stream or strategy is one of these names the reader's own.
OWN_NAMES = frozenset({"my-strategy", "my-ewc"})


@dataclass(frozen=True)
class Command:
    """One ``pemma-bench`` command of a page: where it is and its arguments after ``pemma-bench``."""

    where: str
    args: tuple[str, ...]

    @property
    def subcommand(self) -> str:
        return next(arg for arg in self.args if not arg.startswith("-"))

    @property
    def options(self) -> list[str]:
        return [arg.split("=", 1)[0] for arg in self.args if arg.startswith("--")]

    def values(self, option: str) -> list[str]:
        """The values given to ``option`` (``--x V`` or ``--x=V``)."""
        found = []
        for i, arg in enumerate(self.args):
            if arg == option and i + 1 < len(self.args):
                found.append(self.args[i + 1])
            elif arg.startswith(option + "="):
                found.append(arg.split("=", 1)[1])
        return found


def shell_commands(text: str) -> list[tuple[int, str]]:
    """The commands of a page's shell blocks with their line numbers: continuation lines joined, comments and a
    console block's output left out (``$ `` marks its commands)."""
    commands = []
    for block in code_blocks(text):
        if block.language not in SHELL_LANGUAGES:
            continue
        console = block.language == "console"
        pending, start = "", 0
        for offset, line in enumerate(block.lines):
            if not pending:
                if console and not line.startswith("$ "):
                    continue
                line = line.removeprefix("$ ")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                start = block.first_line + offset
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1].strip() + " "
                continue
            commands.append((start, pending + line.strip()))
            pending = ""
    return commands


def pemma_bench_commands(page: Path) -> list[Command]:
    """Every ``pemma-bench`` invocation of a page (after ``.venv/bin/`` or environment assignments too)."""
    found = []
    for line_number, line in shell_commands(page.read_text(encoding="utf-8")):
        for part in re.split(r"\s*(?:&&|\|\||;|\|)\s*", line):
            words = shlex.split(part, comments=True)
            at = next((i for i, w in enumerate(words) if Path(w).name == "pemma-bench"), None)
            if at is not None and len(words) > at + 1:
                found.append(Command(f"{page.relative_to(REPO)}:{line_number}", tuple(words[at + 1:])))
    return found


@cache
def help_options(subcommand: str) -> frozenset[str] | None:
    """The options ``pemma-bench SUBCOMMAND --help`` lists, or None when there is no such subcommand."""
    result = CliRunner().invoke(app, [subcommand, "--help"], env={"COLUMNS": "200"})
    if result.exit_code != 0:
        return None
    return frozenset(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", result.stdout))


COMMANDS = [command for page in PAGES for command in pemma_bench_commands(page)]


def test_the_pages_hold_commands() -> None:
    assert len(COMMANDS) >= 40
    assert {command.subcommand for command in COMMANDS} >= {"run", "list", "report", "prepare", "synth", "plot"}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.subcommand not in OFFLINE_SKIPS],
                         ids=lambda c: c.where)
def test_command_uses_options_its_subcommand_has(command: Command) -> None:
    known = help_options(command.subcommand)
    assert known is not None, f"{command.where}: no subcommand {command.subcommand!r}"
    unknown = [option for option in command.options if option not in known | {"--help"}]
    assert not unknown, f"{command.where}: pemma-bench {command.subcommand} has no {', '.join(unknown)}"


@pytest.mark.parametrize("command", [c for c in COMMANDS if c.subcommand == "run"], ids=lambda c: c.where)
def test_run_command_names_a_stream_and_known_strategies(command: Command) -> None:
    if "--resume" in command.options:
        return
    streams = command.values("--stream")
    assert streams, f"{command.where}: 'run' needs --stream (or --resume)"
    for stream in streams:
        assert stream.endswith(".yaml") or stream in {spec.name for spec in list_streams()}, (
            f"{command.where}: no stream {stream!r}")
    strategies = set(load_registry().entries) | {"all"} | (OWN_NAMES if "--plugin" in command.options else set())
    unknown = [name for name in command.values("--strategy") if name not in strategies]
    assert not unknown, f"{command.where}: no strategy {', '.join(unknown)}"


def test_commands_are_read_across_continuation_lines_and_console_prompts() -> None:
    text = ("```bash\n# a comment\nPEMMA_THREADS=2 .venv/bin/pemma-bench run --stream centers \\\n"
            "    --seeds 0,1  # trailing\n```\n\n```console\n$ pemma-bench list\noutput --not-an-option\n```\n"
            "\n```python\npemma-bench run --nope\n```\n")
    assert shell_commands(text) == [(3, "PEMMA_THREADS=2 .venv/bin/pemma-bench run --stream centers "
                                        "--seeds 0,1  # trailing"), (8, "pemma-bench list")]


def test_a_missing_stream_is_caught() -> None:
    command = Command("page.md:1", ("run", "--plugin", "my_strategy.py", "--strategy", "my-ewc"))
    with pytest.raises(AssertionError, match="needs --stream"):
        test_run_command_names_a_stream_and_known_strategies(command)


def test_an_unknown_option_or_stream_is_caught() -> None:
    with pytest.raises(AssertionError, match="has no --bogus"):
        test_command_uses_options_its_subcommand_has(Command("page.md:1", ("run", "--stream", "centers", "--bogus")))
    with pytest.raises(AssertionError, match="no stream 'nowhere'"):
        test_run_command_names_a_stream_and_known_strategies(Command("page.md:1", ("run", "--stream", "nowhere")))
