"""Writing run folders: names, atomic files, publication under a free name, the manifest.

A run works in a hidden partial folder (see :mod:`pemma_cl.run.work`) that :func:`publish` renames to
``<root>/<name>`` only when every unit of the run has finished, so a folder named like a run is always complete.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import socket
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.core.files import write_atomically

__all__ = ["FolderWriter", "build_manifest", "publish", "run_name", "run_prefix"]

#: Longest seed list in a folder name; a longer one (many scattered seeds) becomes its count, ends and a hash, so
#: that a name (and its partial folder's lock file) stays within the file system's 255 bytes.
MAX_SEEDS_TEXT = 60
#: A run of this many consecutive seeds or more is written ``AtoB``.
SEED_RANGE_MIN = 4

#: Distributions whose versions go into the manifest.
MANIFEST_PACKAGES: tuple[str, ...] = ("torch", "monai", "avalanche-lib", "peft", "numpy", "pandas")


def _seeds_text(seeds: Sequence[int]) -> str:
    """``0-1-2``, with runs of :data:`SEED_RANGE_MIN` or more consecutive seeds as ``AtoB`` (``0to15-20``)."""
    parts, start = [], 0
    while start < len(seeds):
        end = start
        while end + 1 < len(seeds) and seeds[end + 1] == seeds[end] + 1:
            end += 1
        if end - start + 1 >= SEED_RANGE_MIN:
            parts.append(f"{seeds[start]}to{seeds[end]}")
        else:
            parts.extend(map(str, seeds[start:end + 1]))
        start = end + 1
    text = "-".join(parts)
    if len(text) <= MAX_SEEDS_TEXT:
        return text
    digest = hashlib.sha256(",".join(map(str, seeds)).encode()).hexdigest()[:8]
    return f"{len(seeds)}of{min(seeds)}to{max(seeds)}-{digest}"


def run_prefix(stream: str, seeds: Sequence[int]) -> str:
    """What a run's folder name starts with: ``centers-seed0``, ``centers-seeds0-1-2`` for several seeds,
    ``centers-seeds200to259`` for a run of consecutive ones (see :func:`_seeds_text`).

    Args:
        stream: name of the experience stream (with ``-val`` for runs on validation cases).
        seeds: the run's seeds.
    """
    if not stream or os.sep in stream or (os.altsep and os.altsep in stream) or stream.startswith("."):
        raise UserError(f"stream name {stream!r} cannot be used in a folder name")
    if len(seeds) == 1:
        return f"{stream}-seed{seeds[0]}"
    return f"{stream}-seeds{_seeds_text(seeds)}"


def run_name(stream: str, seeds: Sequence[int], started: datetime) -> str:
    """Folder name of a run, e.g. ``centers-seed0-20261128-040512`` (see :func:`run_prefix`)."""
    return f"{run_prefix(stream, seeds)}-{started:%Y%m%d-%H%M%S}"


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


class FolderWriter:
    """Writes the files of one folder; paths are relative to it and their parent folders are created.

    Example::

        out = FolderWriter(Path("results/.centers-seed0.partial-0123456789ab"))
        out.write_json("manifest.json", manifest)
        fig.savefig(out.path("plots/r.png"))

    Args:
        root: the folder (created on the first write).
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, relpath: str | Path) -> Path:
        """Absolute path of ``relpath`` inside the folder, with its parent folders created."""
        relpath = Path(relpath)
        if relpath.is_absolute() or ".." in relpath.parts:
            raise ValueError(f"{relpath} must be a path relative to the run folder, without '..'")
        out = self.root / relpath
        out.parent.mkdir(parents=True, exist_ok=True)
        return out

    def write_json(self, relpath: str | Path, obj: Any) -> Path:
        """Writes ``obj`` as indented JSON, atomically; NaN/inf become ``null``, numpy values plain numbers."""
        return self.write_text(relpath, json.dumps(_jsonable(obj), indent=2, allow_nan=False) + "\n")

    def write_text(self, relpath: str | Path, text: str) -> Path:
        """Writes ``text`` as UTF-8, atomically (a killed process leaves the old file or the new one)."""
        return self.write_bytes(relpath, text.encode("utf-8"))

    def write_bytes(self, relpath: str | Path, data: bytes) -> Path:
        """Writes ``data``, atomically (a killed process leaves the old file or the new one)."""
        return write_atomically(self.path(relpath), lambda file: file.write(data))

    def write_csv(self, relpath: str | Path, df: pd.DataFrame) -> Path:
        """Writes ``df`` as CSV without its index; gzipped (with a fixed header time, so equal tables give equal
        files) when ``relpath`` ends in ``.gz``."""
        text = df.to_csv(index=False)
        if Path(relpath).suffix != ".gz":
            return self.write_text(relpath, text)
        return self.write_bytes(relpath, gzip.compress(text.encode("utf-8"), mtime=0))


def publish(folder: Path, root: Path, name: str) -> Path:
    """Renames ``folder`` to the first free ``root/<name>``, ``<name>-1``, ``<name>-2``...; returns the new path."""
    suffix = 0
    while True:
        target = root / (name if suffix == 0 else f"{name}-{suffix}")
        # exists() before rename: on POSIX, rename() silently replaces an *empty* directory.
        if not target.exists():
            try:
                os.rename(folder, target)
                return target
            except OSError:
                if not target.exists():  # failed for another reason than a race on the name
                    raise
        suffix += 1


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
    seeds: Sequence[int],
    device: str,
    started: datetime,
    finished: datetime,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """What is needed to reproduce and trust a run.

    Args:
        command: the command line of the run (e.g. ``sys.argv``).
        seeds: the run's random seeds.
        device: device the run used, e.g. ``"cuda:0"``.
        started: start time.
        finished: end time.
        extra: anything else to record (stream, strategies, config...), stored under ``"extra"``.

    Returns:
        ``{"command", "seeds", "device", "started", "finished", "wall_seconds", "versions",
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
        "seeds": list(seeds),
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
