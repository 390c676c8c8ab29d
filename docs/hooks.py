"""MkDocs hook: serve the stored runs' figures (``results/reference/<run>/plots/*.png``) as ``figures/<run>/*.png``.

The figures stay where the runs wrote them (no copy in ``docs/``); a page shows one with
``![...](../figures/centers/average_dice.png)`` (relative to the page).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


def on_files(files: Files, config) -> Files:
    """Add every stored run's plots to the site's files."""
    for png in sorted(REFERENCE.glob("*/plots/*.png")):
        run = png.parent.parent.name
        files.append(File.generated(config, f"figures/{run}/{png.name}", abs_src_path=str(png)))
    return files
