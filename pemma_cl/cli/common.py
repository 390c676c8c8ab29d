"""What the ``pemma-bench`` commands share: the error contract, common options, loading the registry."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from pemma_cl.core.errors import UserError
from pemma_cl.core.precision import PRECISIONS
from pemma_cl.data.nnunet.layout import parse_spacing
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
        help="Bad cases of a HECKTOR folder or nnU-Net dataset: refuse (list them, exit 2) or skip them (recorded "
             "with reasons).",
    ),
]

CaseTableOption = Annotated[
    Path | None,
    typer.Option("--case-table", metavar="FILE", help="Case table of an nnU-Net dataset (CSV: case_id, centre and "
                 "grouping columns). Default: DIR/cases.csv.", show_default=False),
]
SpacingOption = Annotated[
    str | None,
    typer.Option("--spacing", metavar="Z,Y,X", help="Target voxel spacing (mm) of an nnU-Net dataset. Default: the "
                 "dataset's median spacing per axis.", show_default=False),
]


def parsed_spacing(text: str | None) -> tuple[float, float, float] | None:
    """``--spacing Z,Y,X`` as numbers (None when not given).

    Raises:
        UserError: If the text is not three positive numbers.
    """
    return None if text is None else parse_spacing(text, "--spacing")


def column_list(text: str | None, option: str) -> tuple[str, ...] | None:
    """``COL,COL`` as column names (None when not given).

    Raises:
        UserError: If a name is empty.
    """
    if text is None:
        return None
    columns = tuple(part.strip() for part in text.split(","))
    if not all(columns):
        raise UserError(f"{option}: expected column names separated by commas, got {text!r}")
    return columns

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
