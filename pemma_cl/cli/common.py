"""What the ``pemma-bench`` commands share: the error contract, common options, loading the registry."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from pemma_cl.core.errors import UserError
from pemma_cl.core.precision import PRECISIONS
from pemma_cl.run.config import DEVICES, ON_BAD_CASE
from pemma_cl.strategy_api.registry import Registry, file_source, load_registry

PluginOption = Annotated[
    list[Path] | None,
    typer.Option("--plugin", metavar="FILE", help="Python file registering extra strategies; repeatable."),
]
DeviceOption = Annotated[
    str, typer.Option("--device", metavar="|".join(DEVICES), help="Where to run; auto picks cuda when available.")
]

PrecisionOption = Annotated[
    str, typer.Option("--precision", metavar="|".join(PRECISIONS),
                      help="Arithmetic of the forward passes: fp32, or bf16 autocast (for GPUs with bfloat16 units; "
                           "weights, gradients and losses stay fp32; changes the numbers).")
]

OnBadCaseOption = Annotated[
    str,
    typer.Option(
        "--on-bad-case", metavar="|".join(ON_BAD_CASE),
        help="Bad cases of a HECKTOR folder: refuse (list them, exit 2) or skip them (recorded with reasons).",
    ),
]

Command = TypeVar("Command", bound=Callable[..., Any])


def guarded(command: Command) -> Command:
    """Turn a :class:`UserError` into ``error: <message>`` and detail lines (exit 2), Ctrl-C into ``interrupted``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            typer.echo(f"error: {' '.join(str(exc).splitlines())}", err=True)
            for line in exc.details:
                typer.echo(f"  {line}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def registry_with(plugin_files: tuple[Path, ...]) -> Registry:
    """The registry with ``plugin_files`` loaded; a plugin file that fails to load is a user error."""
    registry = load_registry(plugin_files)
    for path in plugin_files:
        reason = registry.broken.get(file_source(path))
        if reason is not None:
            raise UserError(f"plugin '{path}' failed to load: {reason}")
    return registry
