"""Dice accumulation on hand-made label maps (volumes of shape 1 x 1 x 10): the built-in cohort's structures (1 = GTVp,
2 = GTVn), then data sets of one and of three structures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pemma_cl.evaluation.dice import DiceAccumulator, dice_scores

HEAD_AND_NECK = {1: "GTVp", 2: "GTVn"}


def _volume(**segments: tuple[int, int]) -> torch.Tensor:
    """A [1, 1, 10] label map: ``GTVp=(start, stop)`` / ``GTVn=(start, stop)`` fill voxel ranges."""
    vol = torch.zeros(1, 1, 10, dtype=torch.long)
    for name, (start, stop) in segments.items():
        vol[..., start:stop] = {"GTVp": 1, "GTVn": 2}[name]
    return vol


def _batch(*volumes: torch.Tensor) -> torch.Tensor:
    return torch.stack(volumes)  # [B, D, H, W]


# Case A: GTVp target 0..3 (4 voxels), pred 0..1 (2): TP 2, |P|+|G| 6, Dice 4/6.
#         GTVn target 8..9 (2), pred 9 (1): TP 1, |P|+|G| 3, Dice 2/3.
# Case B: GTVp target 0..7 (8), pred 0..7: TP 8, |P|+|G| 16, Dice 1.
#         GTVn target empty, pred 9 (1 false positive): per-case NaN, counts 0 / 1.
CASE_A = (_volume(GTVp=(0, 2), GTVn=(9, 10)), _volume(GTVp=(0, 4), GTVn=(8, 10)))
CASE_B = (_volume(GTVp=(0, 8), GTVn=(9, 10)), _volume(GTVp=(0, 8)))


def test_aggregated_dice_differs_from_mean_of_cases() -> None:
    acc = DiceAccumulator(HEAD_AND_NECK)
    acc.update(_batch(CASE_A[0], CASE_B[0]), _batch(CASE_A[1], CASE_B[1]))
    out = acc.result()
    gtvp = 2 * (2 + 8) / (6 + 16)  # 0.909...
    gtvn = 2 * 1 / (3 + 1)  # the false positive of case B counts: 0.5
    assert out["GTVp"] == pytest.approx(gtvp)
    assert out["GTVn"] == pytest.approx(gtvn)
    assert out["aggregated"] == pytest.approx((gtvp + gtvn) / 2)
    assert out["GTVp_case"] == pytest.approx((4 / 6 + 1) / 2)  # 0.833... != 0.909...
    assert out["GTVn_case"] == pytest.approx(2 / 3)  # case B has no GTVn: NaN, left out
    assert out["n_cases"] == 2
    per_case = acc.per_case()
    assert per_case.shape == (2, 2)
    assert per_case[0] == pytest.approx([4 / 6, 2 / 3])
    assert per_case[1, 0] == pytest.approx(1.0) and math.isnan(per_case[1, 1])


def test_batches_and_channel_dim_give_same_result() -> None:
    whole = DiceAccumulator(HEAD_AND_NECK)
    whole.update(_batch(CASE_A[0], CASE_B[0]), _batch(CASE_A[1], CASE_B[1]))
    split = DiceAccumulator(HEAD_AND_NECK)
    for pred, target in (CASE_A, CASE_B):
        split.update(_batch(pred).unsqueeze(1), _batch(target).unsqueeze(1))  # [B, 1, D, H, W]
    a, b = whole.result(), split.result()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], nan_ok=True)


def test_no_gtvn_anywhere_gives_nan_and_aggregated_equals_gtvp() -> None:
    acc = DiceAccumulator(HEAD_AND_NECK)
    # GTVp target 0..3, pred 2..5: TP 2, |P|+|G| 8, Dice 0.5. No GTVn in pred or target.
    acc.update(_batch(_volume(GTVp=(2, 6))), _batch(_volume(GTVp=(0, 4))))
    out = acc.result()
    assert out["GTVp"] == pytest.approx(0.5)
    assert math.isnan(out["GTVn"]) and math.isnan(out["GTVn_case"])
    assert out["aggregated"] == pytest.approx(0.5)


def test_a_structure_absent_from_every_reference_is_left_out_whatever_is_predicted() -> None:
    """HMR keeps one test case without GTVn: one false-positive GTVn voxel must not halve its aggregated Dice."""
    clean, stray = DiceAccumulator(HEAD_AND_NECK), DiceAccumulator(HEAD_AND_NECK)
    # GTVp target 0..3, pred 2..5: Dice 0.5. No GTVn in the reference; `stray` predicts one GTVn voxel (9).
    clean.update(_batch(_volume(GTVp=(2, 6))), _batch(_volume(GTVp=(0, 4))))
    stray.update(_batch(_volume(GTVp=(2, 6), GTVn=(9, 10))), _batch(_volume(GTVp=(0, 4))))
    for out in (clean.result(), stray.result()):
        assert math.isnan(out["GTVn"])
        assert out["aggregated"] == pytest.approx(0.5)


def test_reset_and_shape_checks() -> None:
    acc = DiceAccumulator(HEAD_AND_NECK)
    acc.update(_batch(CASE_A[0]), _batch(CASE_A[1]))
    acc.reset()
    out = acc.result()
    assert out["n_cases"] == 0 and math.isnan(out["aggregated"])
    with pytest.raises(ValueError, match="shapes differ"):
        acc.update(_batch(CASE_A[0]), _batch(CASE_A[1], CASE_B[1]))
    with pytest.raises(ValueError, match="label map"):
        acc.update(torch.zeros(2, 10), torch.zeros(2, 10))


def _labels(*segments: tuple[int, int, int]) -> torch.Tensor:
    """A [1, 1, 10] label map with ``(label, start, stop)`` voxel ranges."""
    vol = torch.zeros(1, 1, 10, dtype=torch.long)
    for label, start, stop in segments:
        vol[..., start:stop] = label
    return vol


def test_one_structure_gives_its_dice_and_aggregated_equal_to_it() -> None:
    acc = DiceAccumulator({1: "lesion"})
    # Case 1: target 0..3, pred 2..5 (and a stray value 2, not a structure: background): TP 2, |P|+|G| 8, Dice 1/2.
    # Case 2: target 6..7, pred 6..9: TP 2, |P|+|G| 6, Dice 2/3. Pooled: 2 * 4 / 14 = 4/7.
    acc.update(_batch(_labels((1, 2, 6), (2, 9, 10)), _labels((1, 6, 10))),
               _batch(_labels((1, 0, 4)), _labels((1, 6, 8))))
    out = acc.result()
    assert set(out) == {"lesion", "aggregated", "lesion_case", "n_cases"}
    assert out["lesion"] == out["aggregated"] == pytest.approx(4 / 7)
    assert out["lesion_case"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert acc.per_case_counts().tolist() == [[[2, 2, 2]], [[2, 2, 0]]]


def test_three_structures_each_get_their_dice_and_aggregated_is_their_mean() -> None:
    acc = DiceAccumulator({1: "liver", 2: "tumour", 3: "node"})
    # Target: liver 0..4, tumour 5..6, node 8..9. Prediction: liver 0..3, tumour 4..6, node 9.
    # liver TP 4, FN 1: 8/9; tumour TP 2, FP 1: 4/5; node TP 1, FN 1: 2/3.
    acc.update(_batch(_labels((1, 0, 4), (2, 4, 7), (3, 9, 10))), _batch(_labels((1, 0, 5), (2, 5, 7), (3, 8, 10))))
    out = acc.result()
    assert [out[k] for k in ("liver", "tumour", "node")] == pytest.approx([8 / 9, 4 / 5, 2 / 3])
    assert out["aggregated"] == pytest.approx(106 / 135)
    assert acc.per_case_counts().tolist() == [[[4, 0, 1], [2, 1, 0], [1, 0, 1]]]
    assert acc.names == ("liver", "tumour", "node")


def test_dice_scores_name_the_given_structures() -> None:
    assert dice_scores(np.array([[1, 0, 1]]), ["lesion"]) == pytest.approx({"lesion": 2 / 3, "aggregated": 2 / 3})
    with pytest.raises(ValueError, match="2 structures"):
        dice_scores(np.array([[1, 0, 1]]), ["GTVp", "GTVn"])
