"""The run figures, read back from the returned matplotlib figures, on hand-made metric tables.

The main table has 2 seeds, 2 strategies, 3 experiences and the 3 input settings; seed 1 is seed 0 plus
0.1 everywhere, ``replay`` is ``naive`` plus 0.05, and the inputs are offset by :data:`INPUT_OFFSET`, so every
plotted number can be worked out by hand.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pemma_cl.core.errors import UserError
from pemma_cl.stats.intervals import t_interval
from pemma_cl.report.plots.cost import plot_cost_vs_dice
from pemma_cl.report.plots.figures import PLOT_FILES, draw_all, plot_average_dice, plot_per_experience, plot_r_matrices

PNG = b"\x89PNG\r\n\x1a\n"
NAMES = ["CHUM", "CHUP", "HGJ"]
#: Seed 0, strategy ``naive``, CT+PET: R[trained_through][eval_experience] and the Dice before training.
R0 = np.array([[0.6, 0.2, 0.1], [0.4, 0.8, 0.2], [0.3, 0.5, 0.7]])
BASE0 = np.array([0.1, 0.15, 0.2])
SEED_OFFSET = 0.1
STRATEGY_OFFSET = {"naive": 0.0, "replay": 0.05}
INPUT_OFFSET = {"ct": -0.05, "pet": -0.02, "ctpet": 0.0}


def _offset(seed: int, strategy: str, inp: str) -> float:
    return SEED_OFFSET * seed + STRATEGY_OFFSET[strategy] + INPUT_OFFSET[inp]


def make_metrics(seeds=(0, 1), strategies=("naive", "replay"), inputs=("ct", "pet", "ctpet"),
                 R=R0, base=BASE0, names=NAMES) -> pd.DataFrame:
    """Tidy metric rows; the ``GTVp`` rows hold 0 and must be ignored by the plots."""
    rows = []
    T = len(R)
    for seed in seeds:
        for strategy in strategies:
            for inp in inputs:
                shift = _offset(seed, strategy, inp)
                for i in range(-1, T):
                    for j in range(T):
                        dice = (base[j] if i == -1 else R[i][j]) + shift
                        for structure, value in (("aggregated", dice), ("GTVp", 0.0)):
                            rows.append({
                                "seed": seed, "strategy": strategy, "trained_through": i,
                                "trained_through_name": "base" if i == -1 else names[i], "eval_experience": j,
                                "eval_experience_name": names[j], "centre": names[j], "input": inp,
                                "structure": structure, "dice": value, "dice_case_mean": value, "hd95": 5.0,
                                "n_cases": 4,
                            })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("plots")


@pytest.fixture(scope="module")
def metrics() -> pd.DataFrame:
    return make_metrics()


@pytest.fixture(scope="module")
def average_fig(metrics, out):
    return plot_average_dice(metrics, out / "average.png")


def _band_limits(ax) -> list[tuple[float, float]]:
    """(lowest, highest) y of each shaded band of ``ax``."""
    return [(p.vertices[:, 1].min(), p.vertices[:, 1].max()) for c in ax.collections for p in c.get_paths()]


def test_average_dice_is_mean_of_lower_triangle(average_fig, out) -> None:
    assert (out / "average.png").read_bytes()[:8] == PNG
    axes = average_fig.axes
    assert [ax.get_title() for ax in axes] == ["CT", "PET", "CT+PET"]
    ctpet = axes[2]
    assert [t.get_text() for t in ctpet.get_xticklabels()] == NAMES
    assert ctpet.get_ylim() == (0, 1)
    assert axes[0].get_ylabel() == "average Dice over experiences seen"
    # seed 0: 0.6, (0.4 + 0.8) / 2, (0.3 + 0.5 + 0.7) / 3; seed 1 adds 0.1, so the seed mean adds 0.05
    naive = np.array([0.6, 0.6, 0.5]) + 0.05
    lines = {line.get_label(): line for line in ctpet.get_lines()}
    assert set(lines) == {"naive", "replay"}
    np.testing.assert_allclose(lines["naive"].get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(lines["naive"].get_ydata(), naive)
    np.testing.assert_allclose(lines["replay"].get_ydata(), naive + 0.05)
    ct_naive = next(line for line in axes[0].get_lines() if line.get_label() == "naive")
    np.testing.assert_allclose(ct_naive.get_ydata(), naive - 0.05)


def test_average_dice_band_is_t_interval_over_seeds(average_fig, metrics, out) -> None:
    ctpet = average_fig.axes[2]
    assert len(ctpet.collections) == 2  # one band per strategy
    lows, highs = zip(*_band_limits(ctpet))
    # every point's two seeds are 0.1 apart, so all bands are equally wide: lowest at naive's last state
    # (seeds 0.5, 0.6), highest at replay's first two (0.65, 0.75)
    assert min(lows) == pytest.approx(t_interval([0.5, 0.6]).low)
    assert max(highs) == pytest.approx(t_interval([0.65, 0.75]).high)
    one_seed = plot_average_dice(metrics[metrics["seed"] == 0], out / "one.png")
    assert all(not ax.collections for ax in one_seed.axes)
    np.testing.assert_allclose(one_seed.axes[2].get_lines()[0].get_ydata(), [0.6, 0.6, 0.5])


def test_table_without_seed_column_is_one_seed(metrics, out) -> None:
    fig = plot_average_dice(metrics[metrics["seed"] == 1].drop(columns="seed"), out / "noseed.png")
    assert not fig.axes[0].collections
    np.testing.assert_allclose(fig.axes[2].get_lines()[0].get_ydata(), [0.7, 0.7, 0.6])


def test_per_experience_panels(metrics, out) -> None:
    fig = plot_per_experience(metrics, out / "per.png")
    assert (out / "per.png").read_bytes()[:8] == PNG
    assert [ax.get_title() for ax in fig.axes] == NAMES
    assert "CT+PET" in fig.get_suptitle()
    for j, ax in enumerate(fig.axes):
        lines = {line.get_label(): line for line in ax.get_lines()}
        assert [t.get_text() for t in ax.get_xticklabels()] == ["base", *NAMES]
        np.testing.assert_allclose(lines["naive"].get_xdata(), [-1, 0, 1, 2])
        expected = np.concatenate([[BASE0[j]], R0[:, j]]) + 0.05  # seed mean of naive, CT+PET
        np.testing.assert_allclose(lines["naive"].get_ydata(), expected)
        np.testing.assert_allclose(lines["replay"].get_ydata(), expected + 0.05)
        trained = [line for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert len(trained) == 1 and list(trained[0].get_xdata()) == [j, j]
        assert len(ax.collections) == 2


def test_per_experience_other_input_and_grid(out) -> None:
    names = ["A", "B", "C", "D", "E"]
    R = np.full((5, 5), 0.5)
    fig = plot_per_experience(make_metrics(seeds=(0,), strategies=("naive",), inputs=("ct",), R=R,
                                           base=np.full(5, 0.2), names=names), out / "grid.png", input="ct")
    assert [ax.get_title() for ax in fig.axes] == names  # unused grid cells are removed
    assert "CT input" in fig.get_suptitle()
    np.testing.assert_allclose(fig.axes[0].get_lines()[0].get_ydata(), [0.15] + [0.45] * 5)
    with pytest.raises(UserError, match="no rows for input 'pet'"):
        plot_per_experience(make_metrics(seeds=(0,), inputs=("ct",)), out / "x.png", input="pet")


def test_r_matrices_show_seed_mean(metrics, out) -> None:
    fig = plot_r_matrices(metrics, out / "r.png")
    assert (out / "r.png").read_bytes()[:8] == PNG
    heatmaps = [ax for ax in fig.axes if ax.images]
    assert len(heatmaps) == 2 * 3 and len(fig.axes) == 2 * 3 + 1  # one shared colour bar
    titles = [ax.get_title() for ax in heatmaps]
    assert titles[0].startswith("naive") and titles[0].endswith("CT") and titles[-1].startswith("replay")
    replay_ctpet = heatmaps[-1]
    np.testing.assert_allclose(replay_ctpet.images[0].get_array(), R0 + 0.05 + 0.05)
    assert replay_ctpet.images[0].get_clim() == (0, 1)
    assert [t.get_text() for t in replay_ctpet.get_xticklabels()] == NAMES
    assert [t.get_text() for t in replay_ctpet.get_yticklabels()] == NAMES
    texts = [t.get_text() for t in replay_ctpet.texts]
    assert len(texts) == 9 and texts[0] == f"{0.6 + 0.1:.2f}"


def test_r_matrices_annotations_fit_or_go(out) -> None:
    def heatmap(T: int):
        names = [f"E{k}" for k in range(T)]
        df = make_metrics(seeds=(0,), strategies=("naive",), inputs=("ctpet",), R=np.full((T, T), 0.5),
                          base=np.full(T, 0.2), names=names)
        return next(ax for ax in plot_r_matrices(df, out / f"r{T}.png").axes if ax.images)

    eight = heatmap(8)
    assert len(eight.texts) == 64 and all(5 <= t.get_fontsize() <= 9 for t in eight.texts)
    assert not heatmap(12).texts


@pytest.mark.parametrize("plot", [plot_average_dice, plot_per_experience, plot_r_matrices])
def test_bad_tables_raise(plot, metrics, out) -> None:
    with pytest.raises(UserError, match=r"lacks column\(s\) eval_experience_name, dice;"):
        plot(metrics.drop(columns=["dice", "eval_experience_name"]), out / "bad.png")
    with pytest.raises(UserError, match="no rows with structure 'aggregated'"):
        plot(metrics[metrics["structure"] == "GTVp"], out / "bad.png")
    assert not (out / "bad.png").exists()


def _summary() -> dict:
    def entry(params, mean, low=None, high=None):
        final = {"mean": mean, "low": low, "high": high, "n": 2}
        return {"evaluation": "task-agnostic", "inputs": {"ctpet": {"final_dice": final}},
                "costs": {"trainable_params": params}}

    return {"seeds": [0, 1], "strategies": {
        "pemma-lora": entry(12345, 0.58, 0.55, 0.61),
        "full-finetune": entry(160000, 0.42),
        "no-costs": entry(None, 0.5),
        "no-dice": entry(1000, None),
    }}


def test_cost_vs_dice_points(out) -> None:
    fig = plot_cost_vs_dice(_summary(), out / "cost.png")
    assert (out / "cost.png").read_bytes()[:8] == PNG
    (ax,) = fig.axes
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "trainable parameters per task"
    points = {line.get_label(): (line.get_xdata()[0], line.get_ydata()[0]) for line in ax.get_lines()
              if line.get_label() in {"pemma-lora", "full-finetune"}}
    assert points == {"pemma-lora": (12345, 0.58), "full-finetune": (160000, 0.42)}
    assert sorted(t.get_text() for t in ax.texts) == ["full-finetune", "pemma-lora"]
    (bar,) = ax.collections  # only pemma-lora has an interval
    segment = bar.get_segments()[0]
    assert segment[:, 1].min() == pytest.approx(0.55) and segment[:, 1].max() == pytest.approx(0.61)
    labels = [t.get_window_extent() for t in ax.texts]
    assert not labels[0].overlaps(labels[1])


def test_cost_vs_dice_needs_one_complete_strategy(out) -> None:
    summary = _summary()
    for name in ("pemma-lora", "full-finetune"):
        del summary["strategies"][name]
    with pytest.raises(UserError, match="no strategy with both"):
        plot_cost_vs_dice(summary, out / "none.png")


def test_draw_all_writes_the_four_pngs(tmp_path: Path) -> None:
    metrics = make_metrics(seeds=(0,), strategies=("naive",))
    paths = draw_all(metrics, _summary(), tmp_path / "run" / "plots")
    assert PLOT_FILES == ("average_dice.png", "per_experience.png", "r_matrices.png", "cost_vs_dice.png")
    assert paths == [tmp_path / "run" / "plots" / name for name in PLOT_FILES]
    assert all(path.read_bytes()[:8] == PNG for path in paths)
