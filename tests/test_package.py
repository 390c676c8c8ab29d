"""The suite as a real package: a wheel (not an editable install) carries the streams, the primary contrasts and the
built-in strategies."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILTIN = ("pemma-lora", "pemma-dora", "pemma-lora-shared", "pemma-dora-shared", "full-finetune", "early-fusion")
#: Runs ``pemma-bench list`` from the unpacked wheel, and says on stderr where pemma_cl was imported from.
LIST = "import sys, pemma_cl; print(pemma_cl.__file__, file=sys.stderr); from pemma_cl.cli.app import main; main()"


def test_the_wheel_lists_every_stream_and_builtin_strategy(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".git", ".venv", "results", "build", "*.egg-info",
                                                                "__pycache__", ".pytest_cache"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                            "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("pemma_cl-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    streams = sorted(path.stem for path in (REPO / "benchmarks").glob("*.yaml"))
    assert {f"pemma_cl/benchmarks/{name}.yaml" for name in streams} <= set(names)
    assert "pemma_cl/benchmarks/contrasts/primary.yaml" in names  # the declared primary contrasts
    assert "pemma_cl/strategies/pemma_lora.py" in names
    # Every sub-package of the checkout (pyproject lists them one by one; pemma_cl.models.backbones was once missing).
    packages = {path.relative_to(REPO).as_posix() for path in (REPO / "pemma_cl").rglob("__init__.py")}
    assert "pemma_cl/models/backbones/__init__.py" in packages and packages <= set(names)
    assert not [n for n in names if n.split("/")[0] in ("strategies", "benchmarks")]  # no generic top-level package

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    done = subprocess.run([sys.executable, "-c", LIST, "list"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(site)}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stderr.splitlines()[0]).is_relative_to(site)  # the wheel's copy, not the checkout
    for name in streams:
        assert f"\n  {name} " in done.stdout
    entries: list[str] = []  # each listed name with its text, whose lines wrap to the terminal's width
    for line in done.stdout.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            entries.append(line.strip())
        elif entries and line.startswith("   ") and not line.strip().startswith("options:"):
            entries[-1] += " " + line.strip()
    for name in BUILTIN:
        assert any(entry.split()[:1] == [name] and entry.endswith("[builtin]") for entry in entries), name
