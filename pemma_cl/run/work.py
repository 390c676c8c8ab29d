"""A run in progress: its hidden partial folder, one file per finished (seed, strategy) unit, and resuming.

A run is a grid of units, one per (seed, strategy). Each unit's result is written to the partial folder the
moment it finishes, so a crash, Ctrl-C or ``kill -9`` loses at most the unit that was running::

    <results>/.<prefix>.partial-<fingerprint>/
        config.json                              the run's configuration (RunConfig.to_dict())
        progress.json                            first start time, fingerprint, attempts
        seeds/seed<S>/data.json                  what the seed's data were (for the manifest)
        seeds/seed<S>/units/<strategy>.json      a finished unit: metric rows, per-case rows, costs, evaluation protocol
        seeds/seed<S>/logs/<strategy>/           the unit's Avalanche logger output, if any

One process at a time owns a partial folder: it holds the folder's lock (``<results>/.locks/<folder name>.lock``,
:mod:`pemma_cl.core.locks`) from opening the folder until the run is published or stops. The same command started
meanwhile waits for it (then, the folder being published, starts afresh); ``run --resume`` of a folder in use
refuses, naming its owner.

The folder's name holds a fingerprint of the configuration and of the code (the suite's and the plugins'
source), so running the same command again finds it and runs only the unfinished units; a changed setting or
changed code starts afresh instead of mixing results of two versions. When every unit is done the runner
writes the run's files into the folder and publishes it under its final name (see
:func:`pemma_cl.run.folders.publish`).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pemma_cl.core.errors import UserError
from pemma_cl.core.locks import hold, release
from pemma_cl.run.config import RunConfig
from pemma_cl.run.folders import FolderWriter, run_prefix

__all__ = ["UnitResult", "WorkFolder", "fingerprint"]

#: Packages whose Python source is part of the fingerprint: the suite and its built-in strategies (installed as
#: pemma_cl.strategies, which a checkout keeps in the top-level strategies/ folder).
_CODE_PACKAGES: tuple[str, ...] = ("pemma_cl", "pemma_cl.strategies")
PROGRESS = "progress.json"
CONFIG = "config.json"


@dataclass(frozen=True)
class UnitResult:
    """What one strategy produced under one seed."""

    rows: list[dict[str, Any]]
    costs: dict[str, Any]
    evaluation: str
    #: C-index rows of prognosis experiences (:data:`pemma_cl.evaluation.prognosis_metric.PROGNOSIS_COLUMNS`).
    prognosis: list[dict[str, Any]] = field(default_factory=list)
    #: Per prognosis experience, the final model's risk, time and event of each test case (Kaplan-Meier plots).
    predictions: dict[str, dict[str, list]] = field(default_factory=dict)
    #: Per-case rows, lists in the order of :data:`pemma_cl.evaluation.per_case.CASE_COLUMNS`.
    cases: list[list[Any]] = field(default_factory=list)
    #: The torch threads the unit ran with (CPU float sums depend on them); None if not recorded.
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation": self.evaluation, "costs": self.costs, "rows": self.rows, "prognosis": self.prognosis,
                "predictions": self.predictions, "cases": self.cases, "threads": self.threads}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> UnitResult:
        return cls(rows=raw["rows"], costs=raw["costs"], evaluation=raw["evaluation"],
                   prognosis=raw.get("prognosis", []), predictions=raw.get("predictions", {}),
                   cases=raw.get("cases", []), threads=raw.get("threads"))


def run_label(config: RunConfig) -> str:
    """The stream's name, with ``-val`` for runs reported on validation cases."""
    return config.stream.name if config.eval_on == "test" else f"{config.stream.name}-{config.eval_on}"


def fingerprint(config: RunConfig) -> str:
    """Hash of everything that decides a run's numbers: its configuration (less where it is written) and the
    source of the suite, the built-in strategies and the plugin files."""
    digest = hashlib.sha256()
    settings = {key: value for key, value in config.to_dict().items() if key != "results_dir"}
    digest.update(json.dumps(settings, sort_keys=True).encode())
    roots = {Path(str(importlib.resources.files(package))) for package in _CODE_PACKAGES}
    sources = sorted({path for root in roots for path in root.rglob("*.py")})
    for path in [*sources, *config.plugin_files]:
        try:
            digest.update(Path(path).read_bytes())
        except OSError as exc:
            raise UserError(f"{path}: cannot read it: {exc.strerror}") from None
    return digest.hexdigest()[:12]


def _lock_path(folder: Path) -> Path:
    """The lock of a partial folder: outside it (the folder is renamed when published, a lock file must stay)."""
    return folder.parent / ".locks" / f"{folder.name}.lock"


class WorkFolder(FolderWriter):
    """The partial folder of one run (see the module docstring).

    Use :meth:`open` to find or create the folder of a configuration, :meth:`resume` to continue a given one.
    """

    def __init__(self, root: Path, config: RunConfig, progress: dict[str, Any]) -> None:
        super().__init__(root)
        self.config = config
        self.progress = progress

    @classmethod
    def open(cls, config: RunConfig) -> WorkFolder:
        """The partial folder of ``config`` under its results folder: the one an earlier attempt of the same
        command left, or a new one."""
        key = fingerprint(config)
        path = Path(config.results_dir) / f".{run_prefix(run_label(config), config.seeds)}.partial-{key}"
        hold(_lock_path(path), f"the partial folder '{path}' of the same run")
        if not (path / PROGRESS).is_file():
            writer = FolderWriter(path)
            writer.write_json(CONFIG, config.to_dict())
            writer.write_json(PROGRESS, {"started": datetime.now(timezone.utc).isoformat(), "fingerprint": key,
                                         "attempts": 0})
        return cls._attempt(path, config, key)

    @classmethod
    def resume(cls, path: Path) -> WorkFolder:
        """Continue the run whose partial folder is ``path`` (``run --resume``), with its own configuration.

        Raises:
            UserError: If ``path`` is not such a folder, another process is running it, or its settings or the
                code changed since it started.
        """
        if not (path / PROGRESS).is_file() or not (path / CONFIG).is_file():
            raise UserError(f"--resume: '{path}' is not the partial folder of an unfinished run "
                            f"(it has no {PROGRESS} and {CONFIG}); an interrupted run prints the folder to resume")
        try:
            config = RunConfig.from_dict(json.loads((path / CONFIG).read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path / CONFIG}: cannot read it: {exc}") from None
        hold(_lock_path(path), f"--resume: '{path}'", wait=False)
        if not (path / PROGRESS).is_file():  # published by the run that held it
            release(_lock_path(path))
            raise UserError(f"--resume: '{path}' was finished and published meanwhile by another run")
        return cls._attempt(path, config, fingerprint(config))

    @classmethod
    def _attempt(cls, path: Path, config: RunConfig, key: str) -> WorkFolder:
        """A new attempt at the run in ``path``, whose configuration and code have the fingerprint ``key``."""
        progress = json.loads((path / PROGRESS).read_text(encoding="utf-8"))
        if progress.get("fingerprint") != key:
            release(_lock_path(path))
            raise UserError(f"--resume: '{path}' was started with other settings or other code (fingerprint "
                            f"{progress.get('fingerprint')}, now {key}); its finished units cannot be mixed with "
                            "this version's: start a new run")
        progress["attempts"] += 1
        folder = cls(path, config, progress)
        folder.write_json(PROGRESS, progress)
        return folder

    def for_seeds(self, seeds: tuple[int, ...]) -> WorkFolder:
        """The same folder, as the run of only ``seeds`` (``run --decide`` runs its seeds look by look)."""
        return WorkFolder(self.root, replace(self.config, seeds=seeds), self.progress)

    @property
    def started(self) -> datetime:
        """When the first attempt of this run started."""
        return datetime.fromisoformat(self.progress["started"])

    def _unit(self, seed: int, strategy: str) -> str:
        return f"seeds/seed{seed}/units/{strategy}.json"

    def is_done(self, seed: int, strategy: str) -> bool:
        return (self.root / self._unit(seed, strategy)).is_file()

    def done_count(self) -> int:
        return sum(self.is_done(seed, name) for seed in self.config.seeds for name in self.config.strategies)

    def save_unit(self, seed: int, strategy: str, result: UnitResult) -> None:
        self.write_json(self._unit(seed, strategy), result.to_dict())

    def load_unit(self, seed: int, strategy: str) -> UnitResult:
        return UnitResult.from_dict(json.loads((self.root / self._unit(seed, strategy)).read_text(encoding="utf-8")))

    def save_data(self, seed: int, facts: dict[str, Any]) -> None:
        self.write_json(f"seeds/seed{seed}/data.json", facts)

    def load_data(self, seed: int) -> dict[str, Any]:
        return json.loads((self.root / f"seeds/seed{seed}/data.json").read_text(encoding="utf-8"))

    def logs_dir(self, seed: int, strategy: str) -> Path:
        """Where the unit's Avalanche loggers write."""
        return self.root / f"seeds/seed{seed}/logs/{strategy}"

    def release(self) -> None:
        """Give up the ownership of the folder (after publishing it, or when the run stops)."""
        release(_lock_path(self.root))

    def discard(self) -> None:
        """Remove the folder (a run that failed before any unit finished has nothing to resume)."""
        shutil.rmtree(self.root, ignore_errors=True)
