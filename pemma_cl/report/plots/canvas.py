"""A blank figure, its file and the strategies' styles: the object-oriented matplotlib API (no ``pyplot``), so no display is needed and the
global backend is left alone; matplotlib is imported on first use only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DPI = 120
_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


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


def strategy_styles(strategies: list[str]) -> dict[str, dict[str, Any]]:
    """Colour and marker per strategy, the same in every figure of a run: tab10 up to 10 strategies, tab20
    beyond, markers cycling apart."""
    from matplotlib import colormaps

    cmap, n = (colormaps["tab10"], 10) if len(strategies) <= 10 else (colormaps["tab20"], 20)
    return {s: {"color": cmap(k % n), "marker": _MARKERS[k % len(_MARKERS)]} for k, s in enumerate(strategies)}
