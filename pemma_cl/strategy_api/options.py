"""Strategy options, the timm/peft way: each strategy declares a dataclass of options with defaults.

A run resolves each strategy's options from, in increasing precedence, the dataclass defaults, the
``strategies:`` block of a ``run --config`` file and ``run --set STRATEGY.OPTION=VALUE``::

    # run --config options.yaml
    strategies:
      ewc: {lambda: 100}
      replay: {budget: 16, batch_size_mem: 2}

An option's name is its field's name, less a trailing ``_`` (the field ``lambda_`` is the option ``lambda``).
Fields are ``bool``, ``int``, ``float`` or ``str``; a dataclass may check values in ``__post_init__`` by raising
``ValueError("<option>: expected ..., got ...")``. Every mistake is a one-line :class:`UserError`. The resolved
values (every option, defaults included) are recorded in the run's ``config.json`` and manifest.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from pemma_cl.core.errors import UserError

__all__ = ["check_options_class", "describe", "instantiate", "read_config_file", "resolve"]

_TYPES: tuple[type, ...] = (bool, int, float, str)
_CONFIG_KEYS = ("strategies",)


def _fields(options: type) -> dict[str, tuple[str, type]]:
    """Option name -> (field name, type) of an options dataclass."""
    hints = typing.get_type_hints(options)
    return {f.name.rstrip("_"): (f.name, hints[f.name]) for f in dataclasses.fields(options)}


def check_options_class(strategy: str, options: type) -> None:
    """Raise a :class:`UserError` unless ``options`` is a dataclass whose fields all have defaults of a supported type."""
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise UserError(f"strategy {strategy!r}: options: expected a dataclass, got {options!r}")
    try:
        fields = _fields(options)
    except NameError as exc:
        raise UserError(f"strategy {strategy!r}: options: cannot resolve a field type ({exc})") from None
    for name, (field_name, kind) in fields.items():
        field = next(f for f in dataclasses.fields(options) if f.name == field_name)
        if kind not in _TYPES:
            raise UserError(f"strategy {strategy!r}: option {name!r}: type must be bool, int, float or str, got {kind}")
        if field.default is dataclasses.MISSING:
            raise UserError(f"strategy {strategy!r}: option {name!r}: expected a default value")


def describe(options: type | None) -> str:
    """``lambda=1000.0, mode=separate`` (the defaults), or an empty string."""
    if options is None:
        return ""
    return ", ".join(f"{name}={_format(getattr(options, field))}" for name, (field, _) in _fields(options).items())


def instantiate(strategy: str, options: type | None, values: Mapping[str, Any], where: str = "options") -> Any:
    """The options object of ``strategy`` from ``values`` (option name -> value; missing ones take their default).

    Raises:
        UserError: naming ``where``, the strategy and the option, for an unknown option or a bad value.
    """
    if options is None:
        if values:
            raise UserError(f"{where}: strategy {strategy!r} has no options, got {', '.join(values)}")
        return None
    fields = _fields(options)
    kwargs = {fields[name][0]: _value(strategy, options, name, value, where, parse=False)
              for name, value in values.items()}
    try:
        return options(**kwargs)
    except ValueError as exc:
        raise UserError(f"{where}: {strategy}.{exc}") from None


def resolve(entries: Mapping[str, Any], from_file: Mapping[str, Mapping[str, Any]], assignments: Sequence[str],
            config_file: Path | None = None) -> dict[str, dict[str, Any]]:
    """Every option of every strategy of a run: defaults, then the config file's block, then ``--set``.

    Args:
        entries: the run's strategies, name -> :class:`~pemma_cl.strategy_api.registry.StrategyEntry`.
        from_file: the ``strategies:`` block of a config file (:func:`read_config_file`).
        assignments: ``--set`` values, ``STRATEGY.OPTION=VALUE``.
        config_file: the file ``from_file`` came from, for messages.

    Returns:
        strategy -> {option: value} with every option of every strategy that declares options.

    Raises:
        UserError: naming the file entry or the ``--set`` value at fault.
    """
    given: dict[str, dict[str, Any]] = {}
    for strategy, values in from_file.items():
        where = f"--config '{config_file}': strategies.{strategy}"
        _known(strategy, entries, where)
        for option, value in values.items():
            given.setdefault(strategy, {})[option] = _value(strategy, entries[strategy].options, option, value, where,
                                                            parse=False)
    for text in assignments:
        strategy, option, value = _assignment(text)
        _known(strategy, entries, f"--set {text}")
        given.setdefault(strategy, {})[option] = _value(strategy, entries[strategy].options, option, value,
                                                        f"--set {text}", parse=True)
    resolved = {}
    for name, entry in entries.items():
        instance = instantiate(name, entry.options, given.get(name, {}), f"options of {name}")
        if instance is not None:
            resolved[name] = {option: getattr(instance, field) for option, (field, _) in _fields(entry.options).items()}
    return resolved


def _value(strategy: str, options: type | None, option: str, value: Any, where: str, parse: bool) -> Any:
    """``value`` checked against the type of ``strategy``'s ``option``; with ``parse`` (``--set``), a string is
    parsed as that type first (a YAML or JSON value must already have it)."""
    fields = _fields(options) if options is not None else {}
    if option not in fields:
        valid = ", ".join(fields) or "(none)"
        raise UserError(f"{where}: {strategy}.{option}: unknown option; {strategy}'s options: {valid}")
    kind, where = fields[option][1], f"{where}: {strategy}.{option}"
    return _checked(_parsed(value, kind, where) if parse and kind is not str else value, kind, where)


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """The ``strategies:`` block of a run config file (strategy -> {option: value}).

    Raises:
        UserError: naming the file and the field, if it cannot be read or is not of that shape.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--config '{path}': cannot read it: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"--config '{path}': invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(raw, dict) or any(key not in _CONFIG_KEYS for key in raw):
        extra = sorted(str(k) for k in raw) if isinstance(raw, dict) else raw
        raise UserError(f"--config '{path}': expected a mapping with the key 'strategies', got {extra!r}")
    block = raw.get("strategies") or {}
    if not isinstance(block, dict) or not all(isinstance(v, dict) for v in block.values()):
        raise UserError(f"--config '{path}': strategies: expected a mapping of strategy name -> "
                        f"{{option: value}}, got {block!r}")
    return {str(name): {str(k): v for k, v in values.items()} for name, values in block.items()}


def _known(strategy: str, entries: Mapping[str, Any], where: str) -> None:
    if strategy not in entries:
        raise UserError(f"{where}: {strategy!r} is not one of the run's strategies ({', '.join(entries)})")


def _assignment(text: str) -> tuple[str, str, str]:
    target, equals, value = text.partition("=")
    strategy, dot, option = target.strip().rpartition(".")
    if not equals or not dot or not strategy or not option:
        raise UserError(f"--set {text}: expected STRATEGY.OPTION=VALUE, e.g. ewc.lambda=100")
    return strategy, option, value.strip()


def _checked(value: Any, kind: type, where: str) -> Any:
    """``value`` as ``kind`` (an integer is accepted for a float)."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise UserError(f"{where}: expected {_kind_name(kind)}, got {value!r}")
    return value


def _parsed(text: str, kind: type, where: str) -> Any:
    if kind is bool:
        lowered = text.lower()
        if lowered in ("true", "yes", "1", "false", "no", "0"):
            return lowered in ("true", "yes", "1")
    else:
        try:
            return kind(text)
        except ValueError:
            pass
    raise UserError(f"{where}: expected {_kind_name(kind)}, got {text!r}")


def _kind_name(kind: type) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[kind]


def _format(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
