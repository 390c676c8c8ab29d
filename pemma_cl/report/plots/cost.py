"""The cost-vs-Dice figure of a run: final CT+PET Dice against trainable parameters per task, from its summary."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pemma_cl.core.errors import UserError
from pemma_cl.report.plots.canvas import new_figure, save_figure, strategy_styles
from pemma_cl.report.plots.labels import place_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_cost_vs_dice"]


def plot_cost_vs_dice(summary: dict[str, Any], out_path: Path | str) -> Figure:
    """Final CT+PET Dice against trainable parameters per task, one labelled point per strategy.

    x is ``costs.trainable_params`` (log scale), y ``inputs.ctpet.final_dice.mean`` with its interval as
    an error bar when it has one. Strategies lacking either number (or with no positive parameter count,
    which a log axis cannot show) are left out.

    Args:
        summary: a run's summary (``summary.json``), with ``strategies`` and optionally ``seeds``.
        out_path: PNG file to write.

    Returns:
        The figure, with one axes; its lines are the points, one per strategy, labelled with its name.

    Raises:
        UserError: no strategy has both numbers.
    """
    points = _cost_points(summary)
    if not points:
        raise UserError("summary has no strategy with both costs.trainable_params and inputs.ctpet.final_dice.mean")
    style = strategy_styles(list(summary["strategies"]))
    fig = new_figure(7.5, 5.0)
    ax = fig.subplots()
    for name, x, y, low, high in points:
        ax.plot([x], [y], linestyle="none", markersize=7, label=name, zorder=3, **style[name])
        if low is not None and high is not None:
            ax.errorbar([x], [y], yerr=[[y - low], [high - y]], fmt="none", ecolor=style[name]["color"], capsize=3)
    ax.set_xscale("log")
    _pad_limits(ax, points)
    ax.set_xlabel("trainable parameters per task")
    ax.set_ylabel("final Dice, CT+PET")
    ax.grid(alpha=0.3)
    ax.grid(alpha=0.1, which="minor")
    seeds = summary.get("seeds") or []
    bars = "error bars: 95% t-interval over seeds" if len(seeds) > 1 else "no interval"
    ax.set_title(f"Cost vs final Dice ({len(seeds) or '?'} seed{'' if len(seeds) == 1 else 's'}; {bars})",
                 fontsize="medium")
    place_labels(fig, ax, points)
    return save_figure(fig, out_path)


def _cost_points(summary: dict[str, Any]) -> list[tuple[str, float, float, float | None, float | None]]:
    """``(strategy, trainable params, mean, low, high)`` of the strategies that have both numbers."""
    points = []
    for name, entry in (summary.get("strategies") or {}).items():
        entry = entry or {}
        params = (entry.get("costs") or {}).get("trainable_params")
        dice = ((entry.get("inputs") or {}).get("ctpet") or {}).get("final_dice") or {}
        mean = dice.get("mean")
        if params is None or mean is None or not params > 0 or math.isnan(float(mean)):
            continue
        points.append((str(name), float(params), float(mean), dice.get("low"), dice.get("high")))
    return points


def _pad_limits(ax: Axes, points: list[tuple[str, float, float, float | None, float | None]]) -> None:
    """Room around the points for their labels: a decade-fraction on the log x axis, 0.08 Dice on y."""
    xs = [p[1] for p in points]
    ys = [v for p in points for v in (p[2], p[3], p[4]) if v is not None]
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    pad = max(0.35, 0.12 * (hi - lo))
    ax.set_xlim(10 ** (lo - pad), 10 ** (hi + pad))
    ax.set_ylim(max(0.0, min(ys) - 0.08), min(1.05, max(ys) + 0.08))
