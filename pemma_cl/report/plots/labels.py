"""Naming the points of a scatter plot without the names covering each other, the points or their error bars.

Used by the cost-versus-Dice figure of :mod:`pemma_cl.report.plots.figures`, where strategies of similar cost and Dice sit close
together: each name tries a list of offsets around its point and keeps the first that overlaps nothing drawn so far.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["place_labels"]


#: Label offsets (points) tried in order, with their alignment: right, left, above, below, diagonals, further.
_LABEL_OFFSETS: tuple[tuple[float, float, str, str], ...] = tuple(
    (dx * k, dy * k, ha, va)
    for k in (1.0, 2.2, 3.6)
    for dx, dy, ha, va in (
        (7, 0, "left", "center"), (-7, 0, "right", "center"), (0, 7, "center", "bottom"),
        (0, -7, "center", "top"), (6, 6, "left", "bottom"), (6, -6, "left", "top"),
        (-6, 6, "right", "bottom"), (-6, -6, "right", "top"),
    )
)


def place_labels(fig: Figure, ax: Axes, points: list[tuple[str, float, float, float | None, float | None]]) -> None:
    """Name each point, trying offsets in turn and keeping the first that overlaps no label, point or axes edge."""
    from matplotlib.transforms import Bbox

    fig.draw_without_rendering()  # run the layout so that display coordinates are final
    renderer = fig.canvas.get_renderer()
    to_display = ax.transData.transform
    marker = 5.0 * fig.dpi / 72  # half a marker, in pixels
    taken = []
    for _, x, y, low, high in points:
        px, py = to_display((x, y))
        taken.append(Bbox.from_extents(px - marker, py - marker, px + marker, py + marker))
        if low is not None and high is not None:
            (_, y0), (_, y1) = to_display((x, low)), to_display((x, high))
            taken.append(Bbox.from_extents(px - 2, min(y0, y1), px + 2, max(y0, y1)))
    frame = ax.get_window_extent(renderer)
    for name, x, y, _, _ in sorted(points, key=lambda p: (p[2], p[1])):
        label = ax.annotate(name, (x, y), xytext=(0, 0), textcoords="offset points", fontsize="small")
        best, best_cost = None, math.inf
        for dx, dy, ha, va in _LABEL_OFFSETS:
            label.set(position=(dx, dy), ha=ha, va=va)
            box = label.get_window_extent(renderer).expanded(1.05, 1.1)
            cost = sum(_overlap(box, other) for other in taken) + 10 * _outside(box, frame)
            if cost < best_cost:
                best, best_cost = (dx, dy, ha, va, box), cost
            if cost == 0:
                break
        dx, dy, ha, va, box = best
        label.set(position=(dx, dy), ha=ha, va=va)
        taken.append(box)


def _overlap(a: Any, b: Any) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return width * height if width > 0 and height > 0 else 0.0


def _outside(box: Any, frame: Any) -> float:
    return box.width * box.height - _overlap(box, frame)
