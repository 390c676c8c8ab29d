"""Figures of a run: average Dice along the stream, Dice per experience, results matrices, and (from
:mod:`pemma_cl.report.plots.cost`) cost vs Dice.

The first three take the tidy metric rows of a run (``metrics.csv``, see :mod:`pemma_cl.report.summary`) and plot
the ``aggregated`` structure's ``dice``; a table without a ``seed`` column is one seed (seed 0). Values are
averaged over seeds; with more than one seed, lines carry a shaded band, the 95% Student-t interval over
seeds of :func:`pemma_cl.stats.intervals.t_interval`. The fourth takes the run's summary
(``summary.json``) and shows that interval as error bars. Every function writes a PNG and returns the
:class:`matplotlib.figure.Figure`. Figures are built with the object-oriented API (no ``pyplot``), so they
need no display, leave the global backend alone and are safe in headless runs; matplotlib is imported on
first use only. Each strategy keeps one colour and marker across the figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pemma_cl.core.errors import UserError
from pemma_cl.stats.intervals import t_interval
from pemma_cl.report.plots.canvas import new_figure, save_figure, strategy_styles
from pemma_cl.report.plots.cost import plot_cost_vs_dice
from pemma_cl.report.plots.survival import KAPLAN_MEIER_FILE, plot_kaplan_meier
from pemma_cl.report.summary import INPUT_LABELS, INPUTS, METRIC_COLUMNS, r_matrix

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PLOT_FILES", "draw_all", "plot_average_dice", "plot_per_experience", "plot_r_matrices"]

#: File names :func:`draw_all` writes, in the order it returns them.
PLOT_FILES: tuple[str, ...] = ("average_dice.png", "per_experience.png", "r_matrices.png", "cost_vs_dice.png")

#: Narrowest line figure (inches), so that a one-panel figure still fits its suptitle.
_MIN_WIDTH = 7.5
#: Columns the metric table must have (``seed`` is optional: a table without it is seed 0).
_REQUIRED: tuple[str, ...] = tuple(c for c in METRIC_COLUMNS if c != "seed")
#: Results-matrix panels: heatmap side in inches per experience, its bounds, and the room for labels.
_HEAT_CELL_IN, _HEAT_MIN_IN, _HEAT_MAX_IN, _HEAT_MARGIN_IN = 0.42, 2.0, 4.2, 1.4
#: Annotations are dropped above this many experiences or below this font size (points).
_ANNOTATE_MAX_T, _ANNOTATE_MIN_PT, _ANNOTATE_MAX_PT = 10, 5.0, 9.0


# --- reading the metric rows -------------------------------------------------------------------------------


class _Run:
    """The aggregated metric rows of a run, as per-seed matrices per (strategy, input).

    ``matrices[(strategy, input)]`` has shape ``(seeds, T + 1, T)``: entry ``[s, k, j]`` is seed ``s``'s
    Dice on experience ``j`` at model state ``k - 1`` (``k = 0`` is the state before any training), NaN
    where missing.
    """

    def __init__(self, df: pd.DataFrame) -> None:
        missing = [c for c in _REQUIRED if c not in df.columns]
        if missing:
            raise UserError(f"metric table lacks column(s) {', '.join(missing)}; expected {', '.join(_REQUIRED)}")
        rows = df[df["structure"] == "aggregated"]
        if rows.empty:
            raise UserError("metric table has no rows with structure 'aggregated' to plot")
        rows = rows.assign(seed=rows["seed"].fillna(0).astype(int) if "seed" in rows.columns else 0)
        self.seeds = sorted(rows["seed"].unique())
        self.strategies = [str(s) for s in pd.unique(rows["strategy"])]
        self.inputs = [i for i in INPUTS if i in set(rows["input"])]
        self.experiences = _names(rows, "eval_experience", "eval_experience_name")
        self.states = _names(rows, "trained_through", "trained_through_name")
        self.style = strategy_styles(self.strategies)
        # Every experience trained or scored: a stream's prognosis experiences are trained but have no Dice column.
        T = 1 + max([*self.experiences, *self.states])
        self.matrices: dict[tuple[str, str], np.ndarray] = {}
        for (strategy, inp), group in rows.groupby(["strategy", "input"], sort=False):
            stack = np.full((len(self.seeds), T + 1, T), math.nan)
            for seed, seed_rows in group.groupby("seed"):
                R, baseline = r_matrix(seed_rows, strategy, inp)
                s, t = self.seeds.index(seed), len(R)
                stack[s, 1 : t + 1, :t] = R
                if baseline is not None:
                    stack[s, 0, :t] = baseline
            self.matrices[(str(strategy), str(inp))] = stack

    def present(self, inp: str) -> list[str]:
        """Strategies with rows for input setting ``inp``, in order of first appearance."""
        return [s for s in self.strategies if (s, inp) in self.matrices]

    @property
    def seed_note(self) -> str:
        n = len(self.seeds)
        return "1 seed" if n == 1 else f"mean of {n} seeds, band: 95% t-interval"


def _names(rows: pd.DataFrame, index: str, name: str) -> dict[int, str]:
    """Map from the integer column ``index`` to the display name in column ``name``."""
    pairs = rows[[index, name]].drop_duplicates(index).sort_values(index)
    return {int(i): str(n) for i, n in zip(pairs[index], pairs[name])}


def _estimates(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, low and high over seeds (axis 0) of each column of ``samples``; NaN where undefined."""
    samples = np.asarray(samples, dtype=float)
    estimates = [t_interval(column) for column in samples.reshape(len(samples), -1).T]
    mean, low, high = (
        np.array([math.nan if v is None else v for v in values], dtype=float).reshape(samples.shape[1:])
        for values in zip(*((e.mean, e.low, e.high) for e in estimates))
    )
    return mean, low, high


def _lower_triangle_mean(stack: np.ndarray) -> np.ndarray:
    """Per seed and model state ``i >= 0``, the mean Dice over the experiences ``j <= i`` (``(seeds, T)``)."""
    R = stack[:, 1:, :]
    T = R.shape[-1]
    values = np.where(np.tril(np.ones((T, T), dtype=bool)), R, math.nan)
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    return np.where(count > 0, total / np.maximum(count, 1), math.nan)


# --- shared drawing helpers ------------------------------------------------------------------------------------


def _line_with_band(ax: Axes, x: list[int], samples: np.ndarray, style: dict[str, Any], label: str) -> None:
    """Mean over seeds of ``samples`` (``(seeds, len(x))``) as a line, with the t-interval as a band."""
    mean, low, high = _estimates(samples)
    ax.plot(x, mean, label=label, markersize=5, linewidth=1.6, **style)
    if np.isfinite(low).any():
        ax.fill_between(x, low, high, color=style["color"], alpha=0.15, linewidth=0)


def _state_axis(ax: Axes, states: dict[int, str], xlabel: str | None = "trained through") -> None:
    ax.set_xticks(list(states), list(states.values()), rotation=40, ha="right", rotation_mode="anchor")
    ax.set_xlim(min(states) - 0.3, max(states) + 0.3)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)


def _legend(fig: Figure, run: _Run, extra: Sequence[Any] = ()) -> None:
    """Strategies (and ``extra`` handles) in one legend right of the panels, centred clear of the suptitle."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], label=s, markersize=6, linewidth=1.6, **run.style[s]) for s in run.strategies]
    fig.legend(handles=handles + list(extra), loc="outside right center", title="strategy", fontsize="small",
               frameon=False)


def _legend_height(run: _Run, extra: int = 0) -> float:
    """Inches a figure needs so that the legend clears the suptitle."""
    return 0.21 * (len(run.strategies) + extra) + 1.4


# --- the figures ---------------------------------------------------------------------------------------------------


def plot_average_dice(metrics: pd.DataFrame, out_path: Path | str) -> Figure:
    """Average Dice over the experiences seen so far, after each experience; one panel per input setting.

    For model state ``i`` (x, labelled with ``trained_through_name``) the value is the mean of
    ``R[i, j]`` over ``j <= i``, computed per seed, then averaged over seeds with the 95% t-interval as a
    band (more than one seed). One line per strategy.

    Args:
        metrics: metric rows (columns :data:`pemma_cl.report.summary.METRIC_COLUMNS`, ``seed`` optional).
        out_path: PNG file to write.

    Returns:
        The figure, with one axes per input setting present (``ct``, ``pet``, ``ctpet`` order).
    """
    run = _Run(metrics)
    states = {i: name for i, name in run.states.items() if i >= 0}
    fig = new_figure(max(3.6 * len(run.inputs) + 2.2, _MIN_WIDTH), max(4.2, _legend_height(run)))
    axes = fig.subplots(1, len(run.inputs), sharey=True, squeeze=False)[0]
    for ax, inp in zip(axes, run.inputs):
        for strategy in run.present(inp):
            averages = _lower_triangle_mean(run.matrices[(strategy, inp)])
            _line_with_band(ax, list(range(averages.shape[1])), averages, run.style[strategy], strategy)
        ax.set_title(INPUT_LABELS[inp])
        _state_axis(ax, states)
    axes[0].set_ylabel("average Dice over experiences seen")
    fig.suptitle(f"Average Dice over the experiences seen so far ({run.seed_note})", fontsize="medium")
    _legend(fig, run)
    return save_figure(fig, out_path)


def plot_per_experience(metrics: pd.DataFrame, out_path: Path | str, input: str = "ctpet") -> Figure:
    """Dice on each test experience along the stream, one panel per experience, for one input setting.

    x is the model state, from before any training (``-1``) to the last experience; a dotted vertical
    line marks the state where the panel's experience was trained. One line per strategy (mean over
    seeds, 95% t-interval band with more than one seed).

    Args:
        metrics: metric rows (columns :data:`pemma_cl.report.summary.METRIC_COLUMNS`, ``seed`` optional).
        out_path: PNG file to write.
        input: input setting to plot (``ct``, ``pet`` or ``ctpet``).

    Returns:
        The figure, with one axes per experience (up to 4 columns; unused grid cells are removed).
    """
    from matplotlib.lines import Line2D

    run = _Run(metrics)
    if input not in run.inputs:
        raise UserError(f"metric table has no rows for input {input!r}; it has {', '.join(run.inputs)}")
    T = len(run.experiences)
    nrows = math.ceil(T / 4)
    ncols = math.ceil(T / nrows)  # balanced rows: 5 experiences are 3 + 2, not 4 + 1
    fig = new_figure(max(3.3 * ncols + 2.2, _MIN_WIDTH), max(2.9 * nrows + 0.6, _legend_height(run, extra=1)))
    grid = fig.subplots(nrows, ncols, sharey=True, squeeze=False)
    for ax in grid.flat[T:]:
        ax.remove()
    for (j, name), ax in zip(run.experiences.items(), grid.flat):
        for strategy in run.present(input):
            samples = run.matrices[(strategy, input)][:, [i + 1 for i in run.states], j]
            _line_with_band(ax, list(run.states), samples, run.style[strategy], strategy)
        ax.axvline(j, color="grey", linestyle=":", linewidth=1.2)
        ax.set_title(name)
        _state_axis(ax, run.states, xlabel=None)
    for ax in grid[:, 0]:
        ax.set_ylabel("Dice")
    fig.supxlabel("trained through", fontsize="medium")
    fig.suptitle(f"Dice on each test experience, {INPUT_LABELS[input]} input ({run.seed_note})", fontsize="medium")
    _legend(fig, run, [Line2D([], [], color="grey", linestyle=":", linewidth=1.2, label="trained on it")])
    return save_figure(fig, out_path)


def plot_r_matrices(metrics: pd.DataFrame, out_path: Path | str) -> Figure:
    """Heatmaps of the results matrix ``R[trained_through, eval_experience]`` (mean over seeds).

    One heatmap per (strategy row, input column), viridis from 0 to 1, one shared colour bar. Cells are
    annotated with their value in a font sized to the cell; annotations are dropped when the cells are
    too small (more than 10 experiences).

    Args:
        metrics: metric rows (columns :data:`pemma_cl.report.summary.METRIC_COLUMNS`, ``seed`` optional).
        out_path: PNG file to write.

    Returns:
        The figure, with one heatmap axes per (strategy, input) grid cell plus the colour bar.
    """
    run = _Run(metrics)
    columns = list(run.experiences)  # the scored (segmentation) experiences
    names = list(run.experiences.values())
    rows = {i: name for i, name in run.states.items() if i >= 0}
    T = max(len(columns), len(rows))
    side = min(max(_HEAT_CELL_IN * T, _HEAT_MIN_IN), _HEAT_MAX_IN)
    fontsize = _annotation_size(side, T)
    nrows, ncols = len(run.strategies), len(run.inputs)
    height = (side + _HEAT_MARGIN_IN) * nrows + 0.5
    fig = new_figure((side + _HEAT_MARGIN_IN) * ncols + 1.2, height)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    image = None
    for (r, strategy), (c, inp) in product(enumerate(run.strategies), enumerate(run.inputs)):
        ax = grid[r, c]
        if (strategy, inp) not in run.matrices:
            ax.set_axis_off()
            continue
        R = _estimates(run.matrices[(strategy, inp)][:, 1:, :][:, list(rows)][:, :, columns])[0]
        image = ax.imshow(R, vmin=0, vmax=1, cmap="viridis")
        if fontsize is not None:
            _annotate_cells(ax, R, fontsize)
        ax.set_xticks(range(len(columns)), names, rotation=40, ha="right", rotation_mode="anchor", fontsize="small")
        ax.set_yticks(range(len(rows)), list(rows.values()), fontsize="small")
        ax.set_title(f"{strategy} · {INPUT_LABELS[inp]}", fontsize="medium")
        ax.set_xlabel("evaluated on", fontsize="small")
        ax.set_ylabel("trained through", fontsize="small")
    if image is not None:
        fig.colorbar(image, ax=grid, label=f"aggregated Dice ({'1 seed' if len(run.seeds) == 1 else 'seed mean'})",
                     shrink=min(0.9, 4.0 / height), aspect=25)
    return save_figure(fig, out_path)


def _annotation_size(side: float, T: int) -> float | None:
    """Font size (points) for the cell values of a ``T x T`` heatmap ``side`` inches wide, None to drop them."""
    if T > _ANNOTATE_MAX_T:
        return None
    size = min(_ANNOTATE_MAX_PT, 0.3 * 72 * side / T)  # "0.58" is about 2.4 font sizes wide
    return size if size >= _ANNOTATE_MIN_PT else None


def _annotate_cells(ax: Axes, R: np.ndarray, fontsize: float) -> None:
    for i, j in zip(*np.nonzero(np.isfinite(R))):
        value = R[i, j]
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                color="white" if value < 0.6 else "black")


def draw_all(metrics: pd.DataFrame, summary: dict[str, Any], plots_dir: Path,
             predictions: dict[str, dict[str, dict[str, list]]] | None = None) -> list[Path]:
    """Write the four figures of a run into ``plots_dir`` (created), named as :data:`PLOT_FILES`, and for a run with
    prognosis the Kaplan-Meier figure of its last prognosis task.

    The per-experience figure shows CT+PET, or the richest input setting present without it.

    Args:
        metrics: metric rows of the run (``metrics.csv``).
        summary: the run's summary (``summary.json``).
        plots_dir: folder to write into.
        predictions: one seed's per-strategy prognosis predictions (``seeds/seed<S>/predictions.json``), or None.

    Returns:
        The paths written, in the order of :data:`PLOT_FILES` (then the Kaplan-Meier figure).
    """
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    paths = [plots_dir / name for name in PLOT_FILES]
    plot_average_dice(metrics, paths[0])
    present = set(metrics["input"]) if "input" in metrics.columns else set()
    plot_per_experience(metrics, paths[1], input=next((i for i in reversed(INPUTS) if i in present), "ctpet"))
    plot_r_matrices(metrics, paths[2])
    plot_cost_vs_dice(summary, paths[3])
    tasks = list((summary.get("prognosis") or {}).get("tasks", {}))
    if predictions and tasks:
        paths.append(plots_dir / KAPLAN_MEIER_FILE)
        plot_kaplan_meier(predictions, tasks[-1], paths[-1])
    return paths
