"""The run folder: everything one benchmark run writes, created atomically.

A run works in a hidden ``<root>/.<name>.partial-<random>`` folder that is renamed to
``<root>/<name>`` only when the run finishes without an exception, so a folder named like a run
is always complete. A failed or interrupted run removes its partial folder.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import platform
import shutil
import socket
import subprocess
import tempfile
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import pandas as pd

from pemma_cl.errors import UserError

__all__ = ["RunFolder", "build_manifest", "run_name"]

#: Distributions whose versions go into the manifest.
MANIFEST_PACKAGES: tuple[str, ...] = ("torch", "monai", "avalanche-lib", "peft", "numpy", "pandas")


def run_name(stream: str, seed: int, now: datetime) -> str:
    """Folder name of a run, e.g. ``centers-seed0-20261128-040512``.

    Args:
        stream: name of the experience stream.
        seed: random seed of the run.
        now: start time of the run.
    """
    if not stream or os.sep in stream or (os.altsep and os.altsep in stream) or stream.startswith("."):
        raise UserError(f"stream name {stream!r} cannot be used in a folder name")
    return f"{stream}-seed{seed}-{now:%Y%m%d-%H%M%S}"


def _jsonable(obj: Any) -> Any:
    """``obj`` with NaN/inf floats as ``None``, numpy scalars/arrays as Python values, paths as strings."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


class RunFolder:
    """Context manager owning the folder of one run.

    Example::

        with RunFolder(Path("results"), run_name("centers", 0, datetime.now())) as run:
            run.write_json("manifest.json", manifest)
            run.write_csv("metrics.csv", metrics)
        print(run.final_path)  # results/centers-seed0-...

    Writers take paths relative to the run folder; parent folders are created. Inside the
    ``with`` block files live in the partial folder; after a clean exit :attr:`final_path` is the
    published folder (``<root>/<name>``, or ``<root>/<name>-1``, ``-2``... if taken).

    Args:
        root: folder holding all runs; created if missing.
        name: name of this run's folder.
    """

    def __init__(self, root: Path | str, name: str) -> None:
        if not name or Path(name).name != name or name.startswith("."):
            raise UserError(f"run folder name {name!r} must be a plain, non-hidden folder name")
        self.root = Path(root)
        self.name = name
        self.final_path: Path | None = None
        self._partial: Path | None = None

    def __enter__(self) -> RunFolder:
        if self._partial is not None or self.final_path is not None:
            raise RuntimeError("a RunFolder can be entered only once")
        self.root.mkdir(parents=True, exist_ok=True)
        self._partial = Path(tempfile.mkdtemp(prefix=f".{self.name}.partial-", dir=self.root))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        partial, self._partial = self._partial, None
        if exc_type is not None:
            shutil.rmtree(partial, ignore_errors=True)
            return
        self.final_path = self._publish(partial)

    def _publish(self, partial: Path) -> Path:
        """Renames ``partial`` to the first free ``<name>``, ``<name>-1``, ``<name>-2``... under root."""
        suffix = 0
        while True:
            target = self.root / (self.name if suffix == 0 else f"{self.name}-{suffix}")
            # exists() before rename: on POSIX, rename() silently replaces an *empty* directory.
            if not target.exists():
                try:
                    os.rename(partial, target)
                    return target
                except OSError:
                    if not target.exists():  # failed for another reason than a race on the name
                        raise
            suffix += 1

    def path(self, relpath: str | Path) -> Path:
        """Absolute path of ``relpath`` inside the (partial) run folder, with its parent folders created.

        For writers that need a path of their own, e.g. ``fig.savefig(run.path("plots/r.png"))``.
        """
        if self._partial is None:
            raise RuntimeError("RunFolder paths are only available inside its `with` block")
        relpath = Path(relpath)
        if relpath.is_absolute() or ".." in relpath.parts:
            raise ValueError(f"{relpath} must be a path relative to the run folder, without '..'")
        out = self._partial / relpath
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def write_json(self, relpath: str | Path, obj: Any) -> Path:
        """Writes ``obj`` as indented JSON; NaN/inf become ``null``, numpy values plain numbers."""
        out = self.path(relpath)
        out.write_text(json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        return out

    def write_text(self, relpath: str | Path, text: str) -> Path:
        """Writes ``text`` as UTF-8."""
        out = self.path(relpath)
        out.write_text(text, encoding="utf-8")
        return out

    def write_csv(self, relpath: str | Path, df: pd.DataFrame) -> Path:
        """Writes ``df`` as CSV without its index."""
        out = self.path(relpath)
        df.to_csv(out, index=False)
        return out


def _git(args: list[str], cwd: Path) -> str | None:
    """Output of ``git <args>`` run in ``cwd``, or None if git is missing or fails there."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def build_manifest(
    command: list[str],
    seed: int,
    device: str,
    started: datetime,
    finished: datetime,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """What is needed to reproduce and trust a run.

    Args:
        command: the command line of the run (e.g. ``sys.argv``).
        seed: random seed.
        device: device the run used, e.g. ``"cuda:0"``.
        started: start time.
        finished: end time.
        extra: anything else to record (stream, strategies, config...), stored under ``"extra"``.

    Returns:
        ``{"command", "seed", "device", "started", "finished", "wall_seconds", "versions",
        "git_hash", "git_dirty", "platform", "hostname", "extra"}``. ``versions`` maps
        ``python`` and each of :data:`MANIFEST_PACKAGES` to its version (None if not installed);
        ``git_hash``/``git_dirty`` describe the repository holding the package (None outside one).
    """
    package_dir = Path(__file__).resolve().parent
    git_hash = _git(["rev-parse", "HEAD"], package_dir)
    status = _git(["status", "--porcelain"], package_dir) if git_hash is not None else None
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({name: _version(name) for name in MANIFEST_PACKAGES})
    return {
        "command": list(command),
        "seed": seed,
        "device": device,
        "started": started.isoformat(),
        "finished": finished.isoformat(),
        "wall_seconds": (finished - started).total_seconds(),
        "versions": versions,
        "git_hash": git_hash,
        "git_dirty": None if status is None else bool(status),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "extra": extra,
    }
