"""Figures of a run: Dice of each experience along the stream, and the results matrices.

Both functions take the tidy metric rows of :mod:`pemma_cl.summary`, plot the ``aggregated``
structure, write a PNG and return the :class:`matplotlib.figure.Figure`. They build figures with
the object-oriented API (no ``pyplot``), so they need no display, leave the global backend alone
and are safe in headless runs; matplotlib is imported on first use only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pemma_cl.errors import UserError
from pemma_cl.summary import INPUT_LABELS, INPUTS, r_matrix

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_forgetting", "plot_r_matrices"]

_LINESTYLES: tuple[str, ...] = ("-", "--", ":", "-.")
_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P")


def _aggregated_rows(df: pd.DataFrame) -> pd.DataFrame:
    rows = df[df["structure"] == "aggregated"]
    if rows.empty:
        raise UserError("metric table has no rows with structure 'aggregated' to plot")
    return rows


def _names(rows: pd.DataFrame, index: str, name: str) -> dict[int, str]:
    """Map from the integer column ``index`` to the display name in column ``name``."""
    pairs = rows[[index, name]].drop_duplicates(index).sort_values(index)
    return {int(i): str(n) for i, n in zip(pairs[index], pairs[name])}


def plot_forgetting(df: pd.DataFrame, out_path: Path | str) -> Figure:
    """Dice of each evaluated experience over the stream, one panel per input setting.

    x is the model state (``trained_through``, labelled with ``trained_through_name``), colour
    the evaluated experience, line style and marker the strategy.

    Args:
        df: metric rows (columns :data:`pemma_cl.summary.METRIC_COLUMNS`).
        out_path: PNG file to write.

    Returns:
        The figure, with one axes per input setting present (in the order ``ct``, ``pet``, ``ctpet``).
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    rows = _aggregated_rows(df)
    inputs = [i for i in INPUTS if i in set(rows["input"])]
    strategies = list(pd.unique(rows["strategy"]))
    experiences = _names(rows, "eval_experience", "eval_experience_name")
    states = _names(rows, "trained_through", "trained_through_name")
    colour = {e: colormaps["tab10"](k % 10) for k, e in enumerate(experiences)}
    style = {s: (_LINESTYLES[k % len(_LINESTYLES)], _MARKERS[k % len(_MARKERS)]) for k, s in enumerate(strategies)}

    fig = Figure(figsize=(4.5 * len(inputs) + 2, 4), layout="constrained")
    axes = fig.subplots(1, len(inputs), sharey=True, squeeze=False)[0]
    for ax, inp in zip(axes, inputs):
        for strategy in strategies:
            linestyle, marker = style[strategy]
            for experience in experiences:
                line = rows[
                    (rows["strategy"] == strategy) & (rows["input"] == inp) & (rows["eval_experience"] == experience)
                ].sort_values("trained_through")
                if not line.empty:
                    ax.plot(
                        line["trained_through"],
                        line["dice"],
                        color=colour[experience],
                        linestyle=linestyle,
                        marker=marker,
                    )
        ax.set_title(INPUT_LABELS[inp])
        ax.set_xticks(list(states), list(states.values()), rotation=30, ha="right")
        ax.set_xlabel("trained through")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("aggregated Dice")
    handles = [Line2D([], [], color=colour[e], label=f"eval: {name}") for e, name in experiences.items()]
    handles += [
        Line2D([], [], color="black", linestyle=style[s][0], marker=style[s][1], label=str(s)) for s in strategies
    ]
    fig.legend(handles=handles, loc="outside right upper")
    fig.savefig(out_path, dpi=120)
    return fig


def plot_r_matrices(df: pd.DataFrame, out_path: Path | str) -> Figure:
    """Heatmaps of the results matrix ``R[trained_through, eval_experience]``, one per (strategy, input).

    Rows of the grid are strategies, columns input settings; cells show the aggregated Dice.

    Args:
        df: metric rows (columns :data:`pemma_cl.summary.METRIC_COLUMNS`).
        out_path: PNG file to write.

    Returns:
        The figure, with one heatmap axes per (strategy, input) present, plus a colour bar.
    """
    from matplotlib.figure import Figure

    rows = _aggregated_rows(df)
    inputs = [i for i in INPUTS if i in set(rows["input"])]
    strategies = list(pd.unique(rows["strategy"]))
    names = list(_names(rows, "eval_experience", "eval_experience_name").values())

    fig = Figure(figsize=(3.2 * len(inputs) + 1.5, 3 * len(strategies) + 0.5), layout="constrained")
    grid = fig.subplots(len(strategies), len(inputs), squeeze=False)
    image = None
    for r, strategy in enumerate(strategies):
        for c, inp in enumerate(inputs):
            ax = grid[r, c]
            if not ((rows["strategy"] == strategy) & (rows["input"] == inp)).any():
                ax.set_axis_off()
                continue
            R, _ = r_matrix(rows, strategy, inp)
            image = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
            for i, j in zip(*np.nonzero(~np.isnan(R))):
                value = R[i, j]
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black")
            ticks = range(len(R))
            ax.set_xticks(ticks, names[: len(R)], rotation=30, ha="right")
            ax.set_yticks(ticks, names[: len(R)])
            ax.set_title(f"{strategy} – {INPUT_LABELS[inp]}")
            ax.set_xlabel("evaluated on")
            ax.set_ylabel("trained through")
    if image is not None:
        fig.colorbar(image, ax=grid, label="aggregated Dice", shrink=0.8)
    fig.savefig(out_path, dpi=120)
    return fig
