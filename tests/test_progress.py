"""The time estimate printed after a strategy's first training step."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pemma_cl.training.progress import ProgressPlugin, duration


@pytest.mark.parametrize(("seconds", "text"), [(42, "42 s"), (600, "10 min"), (5 * 3600, "5.0 h"),
                                               (3 * 86400, "3.0 days")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_estimate_counts_every_step_of_the_stream(capsys: pytest.CaptureFixture[str]) -> None:
    plugin = ProgressPlugin("s", ["A", "B"], train_sizes=[5, 8])
    strategy = SimpleNamespace(train_mb_size=2, train_epochs=3, loss=SimpleNamespace(detach=lambda: SimpleNamespace(item=lambda: 1.0)))
    for _ in range(2):
        plugin.before_training_iteration(strategy)
        plugin.after_training_iteration(strategy)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1  # said once, after the first step
    assert "(21 steps)" in lines[0]  # (ceil(5/2) + ceil(8/2)) x 3 epochs
