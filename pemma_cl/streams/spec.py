"""Stream files (``benchmarks/<name>.yaml``, or a user's own ``.yaml``): their schema, reading and validation.

A stream file names a shared pretraining base and the ordered experiences of the continual stream::

    name: centers            # must equal the file name without .yaml
    description: one line shown by ``pemma-bench list``
    pretrain: {centres: [CHUM, CHUP], modalities: [ct]}
    experiences:
      - {name: MDA, centres: [MDA], modalities: [ct, pet], task: 1}
      - {name: MDA-PSMA, where: {centre: MDA, tracer: PSMA}, modalities: [ct, pet], task: 2}

The pretrain and each experience select their cases by the values of the data's grouping columns: ``where:`` maps a
column of the case table to one value or a list of values (a case is selected when it matches every column);
``centres: [...]`` is the shorthand for ``where: {centre: [...]}``. Names are checked against the data when the
stream is built (:mod:`pemma_cl.streams.build`): a column or value the data lacks is refused there.

Optional keys: an experience's ``kind`` (``segmentation``, the default, or ``prognosis``: recurrence-free survival
from its modalities, which may then include ``ehr``, the clinical record); ``cases_per_centre`` on the pretrain
or an experience (use only N cases of each of its centres, the first by case id of the split's parts: 20% of N
evaluated, the rest trained on; the pretrain's first N training cases; to keep a segmentation step cheap on a
large cohort); the stream's ``synthetic_scale`` (the size of the built-in synthetic cohort this
stream needs, as a multiple of HECKTOR 2022's per-centre counts; real data are used as they are),
``synthetic_shift`` (``false``: every centre of the built-in cohort has the same population and acquisition, so
nothing changes between centres: the calibration of forgetting, docs/forgetting.md), ``synthetic_tracers`` (the
PET tracers of the built-in cohort, ``[FDG]`` by default, ``[FDG, PSMA]`` for a stream where PSMA arrives:
:mod:`pemma_cl.data.synthetic.tracers`; select a tracer's cases with ``where: {tracer: PSMA}``),
``test_cases_per_centre`` (the built-in cohort's test cases per centre, generated apart from its training cohort;
default :data:`pemma_cl.data.sources.SYNTHETIC_TEST_CASES_PER_CENTRE`; real data keep their own test cases) and
``tracked_cases_per_centre`` (the test cases of each centre, the first by case id, scored at every state the
continual metrics read: forgetting, BWT and FWT rest on them; the final state scores every test case; ``all``:
every state scores every test case; default :data:`TRACKED_CASES_PER_CENTRE`).

Every mistake in such a file raises a one-line :class:`~pemma_cl.core.errors.UserError` naming the file,
the field and what was expected.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pemma_cl.core.errors import UserError
from pemma_cl.core.task_kinds import PROGNOSIS, SEGMENTATION, TASK_KINDS
from pemma_cl.data.description import CENTRE_COLUMN
from pemma_cl.data.records import EHR, MODALITIES
from pemma_cl.data.synthetic.tracers import DEFAULT_TRACERS, check_tracers

_STREAM_KEYS = ("name", "description", "pretrain", "experiences")
_PRETRAIN_KEYS = ("modalities",)
_EXPERIENCE_KEYS = ("name", "modalities", "task")
#: The keys that select cases: at least one of them (``centres`` is ``where``'s shorthand for the centre column).
_SELECTION_KEYS = ("centres", "where")
#: Keys a stream file may leave out (their defaults are those of the dataclasses below).
_OPTIONAL_STREAM_KEYS = ("synthetic_scale", "synthetic_shift", "synthetic_tracers", "test_cases_per_centre",
                         "tracked_cases_per_centre")
_OPTIONAL_SUBSET_KEYS = ("cases_per_centre", *_SELECTION_KEYS)
#: Test cases of each centre scored at the intermediate states (docs/forgetting.md, "Tracked cases"): chosen from the
#: cost of a state and the noise of cross-fitted forgetting (simulated), not from any test score.
TRACKED_CASES_PER_CENTRE = 10
_OPTIONAL_EXPERIENCE_KEYS = ("kind", "cases_per_centre", *_SELECTION_KEYS)


#: A selection of cases by grouping columns other than the centre: ``((column, (value, ...)), ...)``.
Where = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class PretrainSpec:
    """The shared base every strategy starts from; not an experience of the stream. Its cases are those of
    ``centres`` (every centre when empty) that match ``where``."""

    centres: tuple[str, ...]
    modalities: tuple[str, ...]
    cases_per_centre: int | None = None
    where: Where = ()


@dataclass(frozen=True)
class ExperienceSpec:
    """One experience of the stream: the centres it draws cases from (every centre when empty) and the values of other
    grouping columns they must have (``where``), the modalities it uses, its task and kind (``segmentation`` or
    ``prognosis``); ``cases_per_centre`` keeps only N cases of each centre (see the module docstring)."""

    name: str
    centres: tuple[str, ...]
    modalities: tuple[str, ...]
    task: int
    kind: str = SEGMENTATION
    cases_per_centre: int | None = None
    where: Where = ()


@dataclass(frozen=True)
class StreamSpec:
    """A validated stream file."""

    name: str
    description: str
    pretrain: PretrainSpec
    experiences: tuple[ExperienceSpec, ...]
    path: Path
    synthetic_scale: float | None = None
    synthetic_shift: bool = True
    test_cases_per_centre: int | None = None
    tracked_cases_per_centre: int | None = None
    synthetic_tracers: tuple[str, ...] = DEFAULT_TRACERS

    @property
    def selection_columns(self) -> tuple[str, ...]:
        """The grouping columns the stream selects cases by: the centre, then its ``where`` columns in name order (a
        run splits each combination of their values apart, :func:`pemma_cl.data.splits.split_cases`)."""
        used = {column for part in (self.pretrain, *self.experiences) for column, _ in part.where}
        return (CENTRE_COLUMN, *sorted(used - {CENTRE_COLUMN}))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The task kinds of the stream's experiences, in stream order."""
        return tuple(exp.kind for exp in self.experiences)

    @classmethod
    def from_dict(cls, stream: dict[str, Any]) -> StreamSpec:
        """The stream as a run's ``config.json`` holds it (``RunConfig.to_dict``); a missing field raises KeyError."""
        return cls(
            name=stream["name"], description=stream["description"],
            pretrain=PretrainSpec(tuple(stream["pretrain"]["centres"]), tuple(stream["pretrain"]["modalities"]),
                                  stream["pretrain"].get("cases_per_centre"), _stored_where(stream["pretrain"])),
            experiences=tuple(ExperienceSpec(e["name"], tuple(e["centres"]), tuple(e["modalities"]), e["task"],
                                             e.get("kind", SEGMENTATION), e.get("cases_per_centre"), _stored_where(e))
                              for e in stream["experiences"]),
            path=Path(stream["path"]), synthetic_scale=stream.get("synthetic_scale"),
            synthetic_shift=stream.get("synthetic_shift", True),
            test_cases_per_centre=stream.get("test_cases_per_centre"),
            # a run stored before tracked cases scored every test case at every state
            tracked_cases_per_centre=stream.get("tracked_cases_per_centre"),
            synthetic_tracers=tuple(stream.get("synthetic_tracers", DEFAULT_TRACERS)))


def _stored_where(raw: dict[str, Any]) -> Where:
    """A stored selection (a run stored before ``where`` existed has none)."""
    return tuple((column, tuple(values)) for column, values in raw.get("where", ()))


def benchmarks_dir() -> Path:
    """Return the folder of the named stream files: the repository's ``benchmarks/``, installed as the package
    ``pemma_cl.benchmarks`` (in a checkout, an editable install maps it back to ``benchmarks/``)."""
    return Path(str(importlib.resources.files("pemma_cl.benchmarks")))


def list_streams() -> list[StreamSpec]:
    """Load every stream in :func:`benchmarks_dir`, sorted by name.

    Raises:
        UserError: If one of the files is malformed.
    """
    return [_read_stream(benchmarks_dir() / f"{name}.yaml") for name in _stream_names()]


def load_stream(name_or_path: str) -> StreamSpec:
    """Load a stream by name (looked up in :func:`benchmarks_dir`) or from a ``.yaml``/``.yml`` path.

    Raises:
        UserError: If the stream is unknown, the file is missing or its content is invalid.
    """
    if name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"stream file '{name_or_path}' does not exist")
        return _read_stream(path.resolve())
    names = _stream_names()
    if name_or_path not in names:
        raise UserError(f"unknown stream {name_or_path!r}; valid streams: {', '.join(names) or '(none)'}")
    return _read_stream(benchmarks_dir() / f"{name_or_path}.yaml")


def _stream_names() -> list[str]:
    return sorted(path.stem for path in benchmarks_dir().glob("*.yaml"))


def _read_stream(path: Path) -> StreamSpec:
    label = _shown(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{label}: cannot read the file: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"{label}: invalid YAML: {problem}{at}") from None

    raw = _mapping(raw, _STREAM_KEYS, label, "", _OPTIONAL_STREAM_KEYS)
    name = _text(raw["name"], label, "name")
    if name != path.stem:
        raise UserError(f"{label}: name: expected {path.stem!r} (the file name without extension), got {name!r}")
    pretrain = _mapping(raw["pretrain"], _PRETRAIN_KEYS, label, "pretrain", _OPTIONAL_SUBSET_KEYS)
    centres, where = _selection(pretrain, label, "pretrain")
    pretrain_spec = PretrainSpec(
        centres=centres,
        where=where,
        modalities=_modalities(pretrain["modalities"], label, "pretrain.modalities"),
        cases_per_centre=_optional_count(pretrain.get("cases_per_centre"), label, "pretrain.cases_per_centre"),
    )
    if "ct" not in pretrain_spec.modalities:
        raise UserError(
            f"{label}: pretrain.modalities: expected a subset that includes ct, got {pretrain['modalities']!r}"
        )
    experiences = raw["experiences"]
    if not isinstance(experiences, list) or not experiences:
        raise UserError(f"{label}: experiences: expected a non-empty list of experiences, got {experiences!r}")
    specs = tuple(_experience(item, label, f"experiences[{index}]") for index, item in enumerate(experiences))
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        if spec.name in seen:
            raise UserError(f"{label}: experiences[{index}].name: expected a unique name, got {spec.name!r} again")
        seen.add(spec.name)
    return StreamSpec(
        name=name,
        description=_text(raw["description"], label, "description"),
        pretrain=pretrain_spec,
        experiences=specs,
        path=path,
        synthetic_scale=_optional_scale(raw.get("synthetic_scale"), label),
        synthetic_shift=_flag(raw.get("synthetic_shift", True), label, "synthetic_shift"),
        test_cases_per_centre=_optional_count(raw.get("test_cases_per_centre"), label, "test_cases_per_centre"),
        tracked_cases_per_centre=_tracked_count(raw.get("tracked_cases_per_centre", TRACKED_CASES_PER_CENTRE), label),
        synthetic_tracers=check_tracers(_values(raw.get("synthetic_tracers", list(DEFAULT_TRACERS)), label,
                                                "synthetic_tracers", one_allowed=False), f"{label}: synthetic_tracers"),
    )


def _experience(raw: Any, label: str, field: str) -> ExperienceSpec:
    raw = _mapping(raw, _EXPERIENCE_KEYS, label, field, _OPTIONAL_EXPERIENCE_KEYS)
    task = raw["task"]
    if not is_int(task) or task < 1:
        raise UserError(f"{label}: {field}.task: expected a positive integer, got {task!r}")
    kind = raw.get("kind", SEGMENTATION)
    if kind not in TASK_KINDS:
        raise UserError(f"{label}: {field}.kind: expected one of {listed(TASK_KINDS)}, got {kind!r}")
    modalities = raw["modalities"]
    with_ehr = kind == PROGNOSIS and isinstance(modalities, list) and EHR in modalities
    centres, where = _selection(raw, label, field)
    return ExperienceSpec(
        name=_text(raw["name"], label, f"{field}.name"),
        centres=centres,
        where=where,
        modalities=_modalities([m for m in modalities if m != EHR] if with_ehr else modalities, label,
                               f"{field}.modalities", kind) + ((EHR,) if with_ehr else ()),
        task=task,
        kind=kind,
        cases_per_centre=_optional_count(raw.get("cases_per_centre"), label, f"{field}.cases_per_centre"),
    )


def _optional_count(raw: Any, label: str, field: str) -> int | None:
    if raw is not None and (not is_int(raw) or raw < 2):
        raise UserError(f"{label}: {field}: expected an integer of at least 2, got {raw!r}")
    return raw


def _tracked_count(raw: Any, label: str) -> int | None:
    """``all`` -> None (every test case at every state); else a count of at least 2 (cross-fitting halves them)."""
    if raw == "all":
        return None
    if not is_int(raw) or raw < 2:
        raise UserError(f"{label}: tracked_cases_per_centre: expected an integer of at least 2 or 'all', got {raw!r}")
    return raw


def _flag(raw: Any, label: str, field: str) -> bool:
    if not isinstance(raw, bool):
        raise UserError(f"{label}: {field}: expected true or false, got {raw!r}")
    return raw


def _optional_scale(raw: Any, label: str) -> float | None:
    if raw is not None and (isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 < raw <= 20):
        raise UserError(f"{label}: synthetic_scale: expected a number in (0, 20], got {raw!r}")
    return None if raw is None else float(raw)


def _mapping(raw: Any, keys: tuple[str, ...], label: str, field: str, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    where = f"{label}: {field}" if field else label
    if not isinstance(raw, dict):
        raise UserError(f"{where}: expected a mapping with keys {listed(keys)}, got {raw!r}")
    unknown = sorted(str(key) for key in raw if key not in keys + optional)
    if unknown:
        raise UserError(f"{where}: unknown key {unknown[0]!r}; expected keys: {listed(keys + optional)}")
    missing = [key for key in keys if key not in raw]
    if missing:
        raise UserError(f"{where}: missing key {missing[0]!r}; expected keys: {listed(keys)}")
    return raw


def _text(raw: Any, label: str, field: str) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise UserError(f"{label}: {field}: expected a non-empty string, got {raw!r}")
    return " ".join(raw.split())


def _selection(raw: dict[str, Any], label: str, field: str) -> tuple[tuple[str, ...], Where]:
    """``(centres, where)`` of a pretrain or experience: its ``centres`` list and ``where`` mapping merged (the
    ``centre`` column of ``where`` joins the centres; an empty tuple of centres selects every centre)."""
    if not any(key in raw for key in _SELECTION_KEYS):
        raise UserError(f"{label}: {field}: missing key 'centres' or 'where'; expected the cases it selects")
    centres: tuple[str, ...] = ()
    if "centres" in raw:
        centres = _values(raw["centres"], label, f"{field}.centres", one_allowed=False)
    where = raw.get("where", {})
    if "where" in raw and (not isinstance(where, dict) or not where):
        raise UserError(f"{label}: {field}.where: expected a mapping of column -> value or list of values, "
                        f"got {where!r}")
    selection = []
    for column, values in where.items():
        if not isinstance(column, str) or not column.strip():
            raise UserError(f"{label}: {field}.where: expected column names, got {column!r}")
        values = _values(values, label, f"{field}.where.{column}", one_allowed=True)
        if column == CENTRE_COLUMN:
            if centres:
                raise UserError(f"{label}: {field}: give the centres once, in 'centres' or in 'where.centre'")
            centres = values
        else:
            selection.append((column, values))
    return centres, tuple(selection)


def _values(raw: Any, label: str, field: str, one_allowed: bool) -> tuple[str, ...]:
    """A non-empty list of distinct values (or, where ``one_allowed``, one value), as strings."""
    if one_allowed and isinstance(raw, (str, int)) and not isinstance(raw, bool):
        raw = [raw]
    if not isinstance(raw, list) or not raw or any(isinstance(v, (bool, dict, list)) or v is None for v in raw):
        what = "a value or a non-empty list of distinct values" if one_allowed else "a non-empty list of distinct values"
        raise UserError(f"{label}: {field}: expected {what}, got {raw!r}")
    values = tuple(str(v) for v in raw)
    if len(set(values)) != len(values):
        raise UserError(f"{label}: {field}: expected distinct values, got {raw!r}")
    return values


def _modalities(raw: Any, label: str, field: str, kind: str = SEGMENTATION) -> tuple[str, ...]:
    """Validate a modality list and return it in the canonical channel order of ``MODALITIES``."""
    if not _distinct_subset(raw, MODALITIES):
        extra = f" (plus {EHR!r} in a prognosis experience)" if kind == PROGNOSIS else ""
        raise UserError(f"{label}: {field}: expected a non-empty subset of {listed(MODALITIES)}{extra}, got {raw!r}")
    return tuple(modality for modality in MODALITIES if modality in raw)


def _distinct_subset(raw: Any, allowed: tuple[str, ...]) -> bool:
    return (
        isinstance(raw, list)
        and bool(raw)
        and len(set(map(str, raw))) == len(raw)
        and all(item in allowed for item in raw)
    )


def is_int(value: Any) -> bool:
    """An int that is not a bool (YAML and JSON give both)."""
    return isinstance(value, int) and not isinstance(value, bool)


def listed(items: tuple[str, ...]) -> str:
    """``[a, b, c]``: how an error message lists the accepted values."""
    return f"[{', '.join(items)}]"


def _shown(path: Path) -> str:
    """Return ``path`` relative to the working directory when it lies inside it, else unchanged."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
