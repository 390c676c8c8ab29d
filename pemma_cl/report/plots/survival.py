"""Kaplan-Meier curves of test patients split at each model's median predicted risk (lifelines)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from lifelines import KaplanMeierFitter
from lifelines.statistics import logrank_test
from matplotlib.figure import Figure

from pemma_cl.report.plots.figures import new_figure, save_figure

#: File name of the figure in a run's ``plots/`` folder.
KAPLAN_MEIER_FILE = "kaplan_meier.png"


def plot_kaplan_meier(predictions: Mapping[str, Mapping[str, Mapping[str, list]]], task: str,
                      out_path: Path | str) -> Figure:
    """One panel per strategy: recurrence-free survival of the test patients whose predicted risk on ``task`` is
    above the strategy's median (high risk) and at or below it (low risk), with the log-rank p-value.

    Args:
        predictions: strategy -> task -> ``{"risk", "time", "event"}`` per test case (a unit's ``predictions``).
        task: the prognosis task whose predictions are split.
        out_path: PNG file to write.
    """
    strategies = [name for name, tasks in predictions.items() if task in tasks]
    ncols = min(3, max(1, len(strategies)))
    nrows = max(1, math.ceil(len(strategies) / ncols))
    fig = new_figure(4.2 * ncols, 3.4 * nrows)
    grid = fig.subplots(nrows, ncols, squeeze=False)
    for ax in grid.flat[len(strategies):]:
        ax.set_axis_off()
    for ax, name in zip(grid.flat, strategies):
        risk, time, event = (np.asarray(predictions[name][task][key], float) for key in ("risk", "time", "event"))
        high = risk > np.median(risk)
        for chosen, label, colour in ((~high, "low risk", "tab:blue"), (high, "high risk", "tab:red")):
            if chosen.any():
                KaplanMeierFitter().fit(time[chosen] / 365.25, event[chosen], label=f"{label} (n={chosen.sum()})") \
                    .plot_survival_function(ax=ax, color=colour, ci_show=True)
        p_value = (logrank_test(time[high], time[~high], event[high], event[~high]).p_value
                   if high.any() and (~high).any() else math.nan)
        ax.set_title(f"{name} · log-rank p = {p_value:.2g}", fontsize="medium")
        ax.set_xlabel("years")
        ax.set_ylabel("recurrence-free survival")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize="small", loc="lower left")
    fig.suptitle(f"Test patients split at each model's median predicted risk after the stream ({task})",
                 fontsize="medium")
    return save_figure(fig, out_path)
