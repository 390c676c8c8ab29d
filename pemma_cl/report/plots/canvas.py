"""A blank figure and its file: the object-oriented matplotlib API (no ``pyplot``), so no display is needed and the
global backend is left alone; matplotlib is imported on first use only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DPI = 120


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of ``width`` x ``height`` inches on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, out_path: Path | str) -> Figure:
    """Write ``fig`` as a PNG at the suite's resolution; returns it."""
    fig.savefig(out_path, dpi=_DPI)
    return fig
