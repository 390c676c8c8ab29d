"""The fenced code blocks of a Markdown page, for the tests that check the documentation's code."""

from __future__ import annotations

import re
from dataclasses import dataclass

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: its language (the info string's first word, or ``""``), the line number of its first code
    line (1-based) and its lines, the fence's indentation removed."""

    language: str
    first_line: int
    lines: tuple[str, ...]


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block of ``text`` (backtick or tilde fences, indented ones inside admonitions included)."""
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = FENCE.match(lines[j])
            if closing and closing["fence"].startswith(fence) and not closing["info"].strip():
                break
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        info = opening["info"].split()
        blocks.append(CodeBlock(info[0].lstrip(".{") if info else "", i + 2, tuple(body)))
        i = j + 1
    return blocks
