"""The alpha ledger (``benchmarks/contrasts/ledger.yaml``): every trial of every primary contrast, done and planned,
and the alpha each could spend.

A trial is one decide run's test of one contrast: its seeds, looks, the local level it is tested at (``alpha``),
what it could spend (``spent``: its ``alpha`` under t-calibrated bounds; for the runs stored before them, the
simulated actual error of their z-mapped bounds, ``results/benchmarks/sequential_error.json``) and its outcome. The
ledger is conservative: every trial counts (Bonferroni across trials, whatever was decided), so the chance of any
false decision among the ledger's decisions is at most the sum of what its trials could spend. A ledger whose
trials, done and planned, could spend more than its family level is refused. A decide run tests each contrast at
the level of the ledger's planned trial for that contrast, stream and seeds (:meth:`Ledger.levels`), and is refused
without one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pemma_cl.core.errors import UserError
from pemma_cl.stats.sequential import T_CALIBRATED, Z_MAPPED, look_schedule
from pemma_cl.streams.spec import benchmarks_dir

__all__ = ["LEDGER_FILE", "OUTCOMES", "PLANNED", "Ledger", "Trial", "load_ledger"]

#: The file, relative to the folder of the stream files.
LEDGER_FILE = Path("contrasts") / "ledger.yaml"
PLANNED = "planned"
OUTCOMES: tuple[str, ...] = ("held", "not held", "undecided", PLANNED)
#: Rounding slack of the family check (the levels are written with five or six decimals).
_SLACK = 1e-9


@dataclass(frozen=True)
class Trial:
    """One trial of one primary contrast."""

    contrast: str
    stream: str
    #: The contrast as it was (or will be) tested: :meth:`PrimaryContrast.describe`'s text.
    definition: str
    #: The bound convention: ``t-calibrated`` or ``z-mapped``.
    bounds: str
    #: First and last seed the trial may run (the last is its ``--max-seeds``-th).
    seeds: tuple[int, int]
    looks: tuple[int, ...]
    alpha: float
    spent: float
    outcome: str
    #: The stored run folder (and the record in it that holds the decision), None where not stored.
    run: str | None

    @property
    def max_seeds(self) -> int:
        return self.seeds[1] - self.seeds[0] + 1

    @property
    def planned(self) -> bool:
        return self.outcome == PLANNED


@dataclass(frozen=True)
class Ledger:
    """The ledger's family level and trials."""

    path: Path
    family_alpha: float
    trials: tuple[Trial, ...]

    @property
    def spent(self) -> float:
        """What the trials already run could spend."""
        return math.fsum(t.spent for t in self.trials if not t.planned)

    @property
    def planned(self) -> float:
        """What the planned trials could spend."""
        return math.fsum(t.spent for t in self.trials if t.planned)

    @property
    def left(self) -> float:
        """The family level neither spent nor planned."""
        return self.family_alpha - self.spent - self.planned

    def levels(self, contrasts: Sequence[Any], stream: str, seeds: Sequence[int]) -> dict[str, float]:
        """The level each of ``contrasts`` (:class:`~pemma_cl.report.contrasts.PrimaryContrast`) is tested at in a
        decide run of ``stream`` over ``seeds`` (those it may run): its planned trial's ``alpha``.

        Raises:
            UserError: one line naming the ledger, if a contrast has no planned trial for this stream and these
                seeds, or its definition differs from the one the trial was planned for.
        """
        levels = {}
        for contrast in contrasts:
            mine = [t for t in self.trials if t.planned and t.contrast == contrast.name and t.stream == stream]
            match = [t for t in mine if t.seeds == (seeds[0], seeds[-1])]
            if not match:
                have = "; its planned trials: " + ", ".join(f"seeds {t.seeds[0]}..{t.seeds[1]}" for t in mine) \
                    if mine else "; it has none"
                raise UserError(f"--decide: {self.path}: no planned trial of contrast {contrast.name!r} on stream "
                                f"{stream!r} for seeds {seeds[0]}..{seeds[-1]} (--first-seed {seeds[0]} --max-seeds "
                                f"{len(seeds)}){have}; the alpha it could spend is not in the ledger")
            [trial] = match[:1]
            if trial.definition != contrast.describe():
                raise UserError(f"--decide: {self.path}: contrast {contrast.name!r} was planned as "
                                f"{trial.definition!r}, it is now declared as {contrast.describe()!r}")
            levels[contrast.name] = trial.alpha
        return levels

    def statement(self) -> str:
        """The familywise statement the ledger supports, in one paragraph."""
        done = [t for t in self.trials if not t.planned]
        planned = [t for t in self.trials if t.planned]
        return (f"Familywise error (the alpha ledger, benchmarks/contrasts/{LEDGER_FILE.name}): every trial of a "
                f"primary contrast counts, whatever it decided. The {len(done)} trials run so far could spend "
                f"{self.spent:.4f} in all, the {len(planned)} planned ones {self.planned:.4f}, and "
                f"{max(self.left, 0):.4f} of "
                f"the family's {self.family_alpha:g} is left: the chance of any false decision among the ledger's "
                f"decisions is at most {self.spent + self.planned:.4f}, the sum of what its trials could spend "
                f"({self.spent:.4f} for the decisions made so far). A fixed-seed run's verdict (a t-test of at least 5 "
                "seeds, Holm across the primary contrasts) is not a ledger trial and is not covered by this bound.")


def load_ledger(path: Path | None = None) -> Ledger:
    """The ledger of ``path`` (default: the suite's ``benchmarks/contrasts/ledger.yaml``).

    Raises:
        UserError: one line naming the file (and the trial and field), if it is not a ledger, or if its trials
            could spend more than its family level.
    """
    path = path or benchmarks_dir() / LEDGER_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: cannot read it as YAML: {' '.join(str(exc).split())}") from None
    if not isinstance(raw, dict) or set(raw) != {"family_alpha", "trials"} or not isinstance(raw["trials"], list):
        raise UserError(f"{path}: expected a mapping with family_alpha (a number) and trials (a list)")
    family = raw["family_alpha"]
    if isinstance(family, bool) or not isinstance(family, (int, float)) or not 0 < family < 1:
        raise UserError(f"{path}: field 'family_alpha': expected a number in (0, 1), got {family!r}")
    ledger = Ledger(path, float(family), tuple(_trial(path, k, entry) for k, entry in enumerate(raw["trials"])))
    if ledger.spent + ledger.planned > ledger.family_alpha + _SLACK:
        raise UserError(f"{path}: its trials could spend {ledger.spent + ledger.planned:.5f} ({ledger.spent:.5f} run, "
                        f"{ledger.planned:.5f} planned), more than the family level {ledger.family_alpha:g}")
    return ledger


_FIELDS = ("contrast", "stream", "definition", "bounds", "seeds", "looks", "alpha", "spent", "outcome", "run")


def _trial(path: Path, k: int, entry: Any) -> Trial:
    where = f"{path}: trial {k + 1}"
    if not isinstance(entry, dict) or sorted(entry) != sorted(_FIELDS):
        got = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise UserError(f"{where}: expected the fields {', '.join(_FIELDS)}, got {got}")
    for name in ("contrast", "stream", "definition"):
        if not isinstance(entry[name], str) or not entry[name]:
            raise UserError(f"{where}: field '{name}': expected a non-empty string, got {entry[name]!r}")
    choices = {"bounds": (T_CALIBRATED, Z_MAPPED), "outcome": OUTCOMES}
    for name, allowed in choices.items():
        if entry[name] not in allowed:
            raise UserError(f"{where}: field '{name}': expected one of [{', '.join(allowed)}], got {entry[name]!r}")
    seeds = entry["seeds"]
    if not (isinstance(seeds, list) and len(seeds) == 2 and all(isinstance(s, int) for s in seeds)
            and 0 <= seeds[0] < seeds[1]):
        raise UserError(f"{where}: field 'seeds': expected [first, last] seeds, first below last, got {seeds!r}")
    looks = tuple(entry["looks"]) if isinstance(entry["looks"], list) else None
    if looks != look_schedule(seeds[1] - seeds[0] + 1):
        raise UserError(f"{where}: field 'looks': expected {list(look_schedule(seeds[1] - seeds[0] + 1))} (the "
                        f"looks of {seeds[1] - seeds[0] + 1} seeds), got {entry['looks']!r}")
    for name in ("alpha", "spent"):
        if isinstance(entry[name], bool) or not isinstance(entry[name], (int, float)) or not 0 < entry[name] < 1:
            raise UserError(f"{where}: field '{name}': expected a number in (0, 1), got {entry[name]!r}")
    if entry["spent"] < entry["alpha"] or (entry["bounds"] == T_CALIBRATED and entry["spent"] != entry["alpha"]):
        raise UserError(f"{where}: field 'spent': expected its alpha {entry['alpha']} under t-calibrated bounds, and "
                        f"no less than it under z-mapped ones, got {entry['spent']!r}")
    if entry["outcome"] == PLANNED and entry["bounds"] != T_CALIBRATED:
        raise UserError(f"{where}: field 'bounds': a planned trial is tested with {T_CALIBRATED} bounds, got "
                        f"{entry['bounds']!r}")
    if entry["run"] is not None and not isinstance(entry["run"], str):
        raise UserError(f"{where}: field 'run': expected a run folder or null, got {entry['run']!r}")
    return Trial(entry["contrast"], entry["stream"], entry["definition"], entry["bounds"], (seeds[0], seeds[1]),
                 looks, float(entry["alpha"]), float(entry["spent"]), entry["outcome"], entry["run"])
