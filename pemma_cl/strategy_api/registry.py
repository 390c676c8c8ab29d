"""The strategy plugin API, used by the built-in strategies and by third-party plugins alike.

A strategy is a *build function* registered under a name::

    from pemma_cl.strategy_api.registry import register_strategy

    @dataclass
    class MyOptions:                      # optional: the strategy's options and their defaults
        strength: float = 1.0

    @register_strategy("my-strategy", "One line shown by pemma-bench list", family="regularisation",
                       options=MyOptions)
    def build(context):
        from avalanche.training import Naive  # heavy imports go inside the build function
        strength = context.options.strength  # resolved from defaults, a config file and --set
        ...

Plugins reach the registry in two ways, both loaded by :func:`load_registry`:

* an installed distribution declares an entry point in the ``pemma_cl.strategies`` group whose value is
  a module (importing it runs its ``register_strategy`` calls) or a callable (registered under the entry
  point's name, described by the first line of its docstring, unless it is already registered);
  the built-in strategies are entry points of the ``pemma-cl`` distribution itself;
* a Python file passed with ``--plugin``.

A plugin that fails to load (missing dependency, syntax error, name clash...) is recorded in
:attr:`Registry.broken` and contributes nothing; it never stops the tool. Plugin modules must not import
torch at module level, so that listing strategies stays fast.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pemma_cl.core.errors import UserError
from pemma_cl.core.task_kinds import SEGMENTATION, TASK_KINDS
from pemma_cl.strategy_api.options import check_options_class

ENTRY_POINT_GROUP = "pemma_cl.strategies"
#: Entry points of this distribution are the built-in strategies.
BUILTIN_DISTRIBUTION = "pemma-cl"

BuildFunction = Callable[[Any], Any]

#: Families ``pemma-bench list`` groups strategies by, in this order; a strategy that names none is a plugin.
FAMILIES: tuple[str, ...] = ("PEMMA", "reference", "regularisation", "distillation", "rehearsal", "plugin")
DEFAULT_FAMILY = "plugin"
#: Names that select strategies rather than name one (``--strategy all``).
RESERVED_NAMES: frozenset[str] = frozenset({"all"})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_REGISTRY: dict[str, StrategyEntry] = {}
#: Source of the plugin being loaded by :func:`load_registry`; ``None`` outside of it.
_LOADING: ContextVar[str | None] = ContextVar("pemma_cl_loading_plugin", default=None)


@dataclass(frozen=True)
class StrategyEntry:
    """A registered strategy.

    Attributes:
        name: The name used on the command line.
        description: One line shown by ``pemma-bench list``.
        build: Takes the runner's context object and returns an Avalanche strategy; the registry never
            calls it.
        source: ``builtin``, ``entry-point:<distribution or module>``, ``file:<path>``, or
            ``module:<module>`` when registered outside :func:`load_registry`.
        family: what kind of method it is (one of :data:`FAMILIES`, or a plugin's own word).
        options: a dataclass whose fields (with defaults) are the strategy's options, or None
            (see :mod:`pemma_cl.strategy_api.options`).
        task_kinds: the experience kinds it can train (``segmentation``, ``prognosis``).
        frozen_earlier_tasks: training an experience changes only the parameters of its task label, and evaluation
            takes a test experience's task parameters once trained, else the last trained task's, and before any
            training the untouched base (per-task adapters picked by task label,
            :class:`~pemma_cl.training.plugins.adapters.TaskAdapterPlugin`). A run then copies an earlier
            experience's rows at a later state from the state its task was last trained at instead of recomputing
            them (:mod:`pemma_cl.evaluation.scoring`).
    """

    name: str
    description: str
    build: BuildFunction
    source: str
    family: str = DEFAULT_FAMILY
    options: type | None = None
    task_kinds: tuple[str, ...] = (SEGMENTATION,)
    frozen_earlier_tasks: bool = False

    def supports(self, kinds: Sequence[str]) -> bool:
        """Whether it can train every experience kind in ``kinds``."""
        return set(kinds) <= set(self.task_kinds)


@dataclass(frozen=True)
class Registry:
    """The strategies available to one invocation.

    Attributes:
        entries: Registered strategies by name, sorted by name.
        broken: One-line reason by plugin (its source, plus the entry point for entry points) for every
            plugin that failed to load.
    """

    entries: dict[str, StrategyEntry]
    broken: dict[str, str]

    def get(self, name: str) -> StrategyEntry:
        """Return the strategy called ``name``.

        Raises:
            UserError: If no strategy has that name; the message lists the valid ones.
        """
        if name in self.entries:
            return self.entries[name]
        hint = f"; {len(self.broken)} plugin(s) failed to load, see 'pemma-bench list'" if self.broken else ""
        valid = ", ".join(self.entries) or "(none)"
        raise UserError(f"unknown strategy {name!r}; valid strategies: {valid}{hint}")

    def select(self, names: Sequence[str], kinds: Sequence[str] = (SEGMENTATION,)) -> tuple[str, ...]:
        """The strategy names a run asked for, with ``all`` expanded to every registered strategy that can train
        the stream's experience ``kinds`` (grouped by family, as ``list`` shows them); each name is checked.

        Raises:
            UserError: If a name is unknown, or a named strategy cannot train one of ``kinds``.
        """
        chosen: list[str] = []
        for name in names:
            if name == "all":
                chosen += [e.name for _, entries in self.by_family() for e in entries
                           if e.name not in chosen and e.supports(kinds)]
                continue
            entry = self.get(name)
            if not entry.supports(kinds):
                missing = sorted(set(kinds) - set(entry.task_kinds))
                raise UserError(f"strategy {name!r} cannot train {' or '.join(missing)} experiences, which the stream "
                                f"has (it trains: {', '.join(entry.task_kinds)}); see 'pemma-bench list'")
            chosen.append(entry.name)
        return tuple(chosen)

    def unsupported(self, kinds: Sequence[str]) -> list[str]:
        """Names of the registered strategies that cannot train one of the experience ``kinds``."""
        return [name for name, entry in self.entries.items() if not entry.supports(kinds)]

    def entries_named(self, names: Sequence[str]) -> dict[str, StrategyEntry]:
        """The entries of ``names``, in that order (each checked as :meth:`get` does)."""
        return {name: self.get(name) for name in names}

    def by_family(self) -> list[tuple[str, list[StrategyEntry]]]:
        """Registered strategies grouped by family: :data:`FAMILIES` in order, then any other family by name."""
        families = sorted({e.family for e in self.entries.values()},
                          key=lambda f: (FAMILIES.index(f) if f in FAMILIES else len(FAMILIES), f))
        return [(f, [e for e in self.entries.values() if e.family == f]) for f in families]


def register_strategy(name: str, description: str, *, family: str = DEFAULT_FAMILY, options: type | None = None,
                      task_kinds: Sequence[str] = (SEGMENTATION,),
                      frozen_earlier_tasks: bool = False) -> Callable[[BuildFunction], BuildFunction]:
    """Return a decorator that registers a build function as strategy ``name``.

    Also usable as a plain call: ``register_strategy(name, description)(build)``.

    Args:
        name: Letters, digits, ``.``, ``_`` and ``-``, starting with a letter or digit; not ``all``.
        description: One line (whitespace is collapsed) shown by ``pemma-bench list``.
        family: The group ``pemma-bench list`` shows it in.
        options: A dataclass of the strategy's options, every field with a default; the build function gets
            an instance as ``context.options``.
        task_kinds: The experience kinds it can train: ``segmentation`` and, if its model and plugins handle the
            survival head and the Cox loss (:mod:`pemma_cl.training.template`), ``prognosis``.
        frozen_earlier_tasks: Whether its earlier task parameters are frozen (:attr:`StrategyEntry.frozen_earlier_tasks`;
            declare it only when that holds: the run then copies rows instead of computing them).

    Raises:
        UserError: If the name or description is invalid, or the name is already registered by another
            source; while :func:`load_registry` runs this marks the plugin as broken.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(
            f"strategy name {name!r}: expected letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if name in RESERVED_NAMES:
        raise UserError(f"strategy name {name!r} is reserved ('--strategy {name}' selects strategies)")
    if not isinstance(description, str) or not description.strip():
        raise UserError(f"strategy {name!r}: description: expected a non-empty string, got {description!r}")
    if not isinstance(family, str) or not family.strip():
        raise UserError(f"strategy {name!r}: family: expected a non-empty string, got {family!r}")
    if not task_kinds or not set(task_kinds) <= set(TASK_KINDS):
        raise UserError(f"strategy {name!r}: task_kinds: expected a non-empty subset of {list(TASK_KINDS)}, "
                        f"got {list(task_kinds)!r}")
    if not isinstance(frozen_earlier_tasks, bool):
        raise UserError(f"strategy {name!r}: frozen_earlier_tasks: expected True or False, got {frozen_earlier_tasks!r}")
    if options is not None:
        check_options_class(name, options)

    def decorator(build: BuildFunction) -> BuildFunction:
        if not callable(build):
            raise UserError(f"strategy {name!r}: expected a callable build function, got {build!r}")
        source = _LOADING.get() or f"module:{getattr(build, '__module__', '?')}"
        existing = _REGISTRY.get(name)
        if existing is not None and existing.source != source:
            raise UserError(f"strategy {name!r} is already registered by {existing.source}")
        _REGISTRY[name] = StrategyEntry(name, " ".join(description.split()), build, source, family.strip(), options,
                                        tuple(k for k in TASK_KINDS if k in task_kinds), frozen_earlier_tasks)
        return build

    return decorator


def file_source(path: Path) -> str:
    """Return the source string (and :attr:`Registry.broken` key) of the plugin file ``path``."""
    return f"file:{path}"


def load_registry(plugin_files: Sequence[Path] = ()) -> Registry:
    """Load the entry-point plugins, then each plugin file, and return the registry.

    Loading is idempotent within a process: entry-point modules are imported once, plugin files are
    executed again and replace their own earlier registrations.

    Args:
        plugin_files: Python files that call :func:`register_strategy`.
    """
    broken: dict[str, str] = {}
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: (ep.name, ep.value)):
        source = _entry_point_source(entry_point)
        reason = _load_plugin(source, lambda ep=entry_point: _load_entry_point(ep))
        if reason is not None:
            broken[f"{source} ({entry_point.name} = {entry_point.value})"] = reason
    for path in plugin_files:
        source = file_source(path)
        reason = _load_plugin(source, lambda path=path: _exec_file(path))
        if reason is not None:
            broken[source] = reason
    return Registry(entries=dict(sorted(_REGISTRY.items())), broken=broken)


def _load_plugin(source: str, load: Callable[[], None]) -> str | None:
    """Run ``load`` with ``source`` as the registering source; on failure undo its registrations.

    Returns:
        ``None`` on success, else a one-line reason.
    """
    before = dict(_REGISTRY)
    token = _LOADING.set(source)
    try:
        load()
    except (Exception, SystemExit) as exc:
        _REGISTRY.clear()
        _REGISTRY.update(before)
        message = " ".join(str(exc).split())
        return message if isinstance(exc, UserError) else f"{type(exc).__name__}: {message}"
    finally:
        _LOADING.reset(token)
    return None


def _entry_point_source(entry_point: EntryPoint) -> str:
    dist = entry_point.dist.name if entry_point.dist is not None else None
    if dist is not None and re.sub(r"[-_.]+", "-", dist).lower() == BUILTIN_DISTRIBUTION:
        return "builtin"
    return f"entry-point:{dist or entry_point.module}"


def _load_entry_point(entry_point: EntryPoint) -> None:
    value = entry_point.load()
    if inspect.ismodule(value) or any(entry.build is value for entry in _REGISTRY.values()):
        return
    if not callable(value):
        raise TypeError(f"entry point value is neither a module nor a callable: {value!r}")
    register_strategy(entry_point.name, (inspect.getdoc(value) or "").split("\n", 1)[0])(value)


def _exec_file(path: Path) -> None:
    if not path.is_file():
        raise FileNotFoundError(f"no such file '{path}'")
    module_name = "pemma_cl_plugin_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"'{path}' is not a Python file (expected a .py file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look their module up here
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
