"""HD95 per structure (pemma_cl.evaluation.hd95) against hand-computed distances.

The shapes are thin square plates (one voxel thick) rather than cubes: every surface voxel of a
plate has its counterpart in the other plate straight across, at exactly the offset, and no
nearer one, so each surface distance (hence the 95th percentile) is the offset itself. Two offset
cubes would mix distances 0 (shared side faces) with the offset, and HD95 would depend on
MONAI's quantile interpolation.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from pemma_cl.evaluation.hd95 import HausdorffAccumulator

SHAPE = (12, 12, 12)
HEAD_AND_NECK = {1: "GTVp", 2: "GTVn"}


def plate(axis: int, position: int, label: int = 1, shape=SHAPE, volume: np.ndarray | None = None) -> np.ndarray:
    """A 4 x 4 plate of ``label``, one voxel thick along ``axis``, at index ``position`` on that axis."""
    out = np.zeros(shape, dtype=np.int64) if volume is None else volume
    index = [slice(4, 8)] * 3
    index[axis] = slice(position, position + 1)
    out[tuple(index)] = label
    return out


def batch(*volumes: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(volumes))


def pair(offset: int, axis: int = 0, label: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(pred, target): the same plate, the prediction shifted by ``offset`` voxels along ``axis``."""
    return plate(axis, 2 + offset, label), plate(axis, 2, label)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("offset", [0, 1, 3])
def test_offset_plates_give_offset_in_voxels(axis, offset):
    """Without spacing HD95 is in voxels: a plate shifted by k voxels along any axis gives k."""
    pred, target = pair(offset, axis)
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    acc.update(batch(pred), batch(target))
    per_case = acc.per_case()
    assert per_case.shape == (1, 2)
    assert per_case[0, 0] == pytest.approx(offset)
    assert np.isnan(per_case[0, 1])  # GTVn in neither: left out


@pytest.mark.parametrize("axis, expected", [(0, 2 * 3.0), (1, 2 * 1.5), (2, 2 * 0.5)])
def test_anisotropic_spacing_is_in_mm_along_z_y_x(axis, expected):
    """spacing is [z, y, x], the order of the arrays' axes: a 2-voxel shift along axis a is 2 * spacing[a] mm."""
    pred, target = pair(2, axis)
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=(3.0, 1.5, 0.5))
    acc.update(batch(pred), batch(target))
    assert acc.per_case()[0, 0] == pytest.approx(expected)
    assert acc.result()["GTVp"] == pytest.approx(expected)


def test_structures_are_measured_separately():
    """GTVp (label 1) and GTVn (label 2) each get their own distance, in label order."""
    target = plate(0, 1, label=1)
    plate(0, 8, label=2, volume=target)
    pred = plate(0, 2, label=1)  # GTVp shifted by 1
    plate(0, 11, label=2, volume=pred)  # GTVn shifted by 3
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=(2.0, 2.0, 2.0))
    acc.update(batch(pred), batch(target))
    np.testing.assert_allclose(acc.per_case(), [[2.0, 6.0]])


def test_labels_outside_structures_are_background():
    """A label value that is not a structure (3) neither creates nor hides a surface."""
    pred, target = pair(1)
    pred = pred.copy()
    pred[0, 0, 0] = 3
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    acc.update(batch(pred), batch(target))
    assert acc.per_case()[0, 0] == pytest.approx(1.0)
    assert np.isnan(acc.per_case()[0, 1])


def test_both_empty_is_left_out():
    """A structure absent from both prediction and reference gives no value and is not counted."""
    empty = np.zeros(SHAPE, dtype=np.int64)
    p1, t1 = pair(1)
    p4, t4 = pair(4)
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    acc.update(batch(p1, empty, p4), batch(t1, empty, t4))
    per_case = acc.per_case()
    assert per_case.shape == (3, 2)
    assert np.count_nonzero(~np.isnan(per_case[:, 0])) == 2  # case 1 left out for GTVp
    assert np.isnan(per_case[:, 1]).all()  # GTVn never present
    result = acc.result()
    assert result["GTVp"] == pytest.approx(2.5)  # median of {1, 4}, the empty case not a 0
    assert result["n_cases"] == 3


@pytest.mark.parametrize("spacing", [None, (2.0, 1.0, 0.5)])
def test_one_empty_gives_volume_diagonal(spacing):
    """Missed (empty prediction) or hallucinated (empty reference) structure: the volume's diagonal."""
    shape = (8, 10, 12)
    steps = spacing or (1.0, 1.0, 1.0)
    diagonal = math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, steps)))  # sqrt(392) mm, sqrt(308) voxels
    empty = np.zeros(shape, dtype=np.int64)
    gtvp = plate(0, 2, label=1, shape=shape)
    gtvn = plate(0, 5, label=2, shape=shape)
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=spacing)
    acc.update(batch(empty, gtvn), batch(gtvp, empty))  # case 0 misses GTVp, case 1 hallucinates GTVn
    per_case = acc.per_case()
    assert per_case[0, 0] == pytest.approx(diagonal)
    assert np.isnan(per_case[0, 1])
    assert np.isnan(per_case[1, 0])
    assert per_case[1, 1] == pytest.approx(diagonal)
    assert acc.result()["aggregated"] == pytest.approx(diagonal)


def test_empty_masks_leak_no_warning_and_no_inf():
    """MONAI's empty-mask warnings and inf/nan never reach the caller."""
    empty = np.zeros(SHAPE, dtype=np.int64)
    p, t = pair(1)
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=(4.0, 4.0, 4.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        acc.update(batch(empty, p, empty), batch(t, empty, empty))
        acc.update(batch(p), batch(t))
        result = acc.result()
    assert [str(w.message) for w in caught] == []
    assert not np.isinf(acc.per_case()).any()
    assert all(not math.isinf(v) for v in result.values())


def test_median_over_cases_across_batches():
    """Per structure, the median over cases (HECKTOR 2021), accumulated over several update calls."""
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    for offsets in ([1, 5], [2]):
        pairs = [pair(k) for k in offsets]
        acc.update(batch(*(p for p, _ in pairs)), batch(*(t for _, t in pairs)))
    np.testing.assert_allclose(acc.per_case()[:, 0], [1.0, 5.0, 2.0])
    result = acc.result()
    assert result["GTVp"] == pytest.approx(2.0)  # median of {1, 5, 2}; the mean would be 8/3
    assert result["n_cases"] == 3


def test_aggregated_is_mean_of_defined_structure_medians():
    """aggregated = mean of the structures' medians; a structure never defined is NaN and left out."""
    volumes = []
    for gtvp_offset, gtvn_offset in ((1, 2), (3, 6), (5, 4)):
        target = plate(0, 0, label=1)
        plate(0, 5, label=2, volume=target)
        pred = plate(0, gtvp_offset, label=1)
        plate(0, 5 + gtvn_offset, label=2, volume=pred)
        volumes.append((pred, target))
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    acc.update(batch(*(p for p, _ in volumes)), batch(*(t for _, t in volumes)))
    result = acc.result()
    assert result["GTVp"] == pytest.approx(3.0)  # median {1, 3, 5}
    assert result["GTVn"] == pytest.approx(4.0)  # median {2, 6, 4}
    assert result["aggregated"] == pytest.approx(3.5)

    only_gtvp = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    p, t = pair(2)
    only_gtvp.update(batch(p), batch(t))
    result = only_gtvp.result()
    assert math.isnan(result["GTVn"])
    assert result["aggregated"] == pytest.approx(2.0)


def test_nothing_defined_is_nan():
    """No case with any structure (or no case at all): every score NaN, without a warning."""
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = acc.result()
        assert acc.per_case().shape == (0, 2)
        assert result["n_cases"] == 0
        assert all(math.isnan(result[k]) for k in ("GTVp", "GTVn", "aggregated"))
        empty = np.zeros(SHAPE, dtype=np.int64)
        acc.update(batch(empty, empty), batch(empty, empty))
        result = acc.result()
    assert result["n_cases"] == 2
    assert all(math.isnan(result[k]) for k in ("GTVp", "GTVn", "aggregated"))


def test_channel_dim_label_maps_accepted():
    """[B, 1, D, H, W] label maps give the same values as [B, D, H, W]."""
    pred, target = pair(3, axis=1)
    plain, channel = (HausdorffAccumulator(HEAD_AND_NECK, spacing=None) for _ in range(2))
    plain.update(batch(pred), batch(target))
    channel.update(batch(pred)[:, None], batch(target)[:, None])
    np.testing.assert_array_equal(plain.per_case(), channel.per_case())
    assert channel.per_case()[0, 0] == pytest.approx(3.0)


def test_shape_mismatch_and_bad_inputs_raise():
    """Mismatched pred/target shapes, non-label-map tensors and bad spacings are refused."""
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    with pytest.raises(ValueError, match="shapes differ"):
        acc.update(torch.zeros(1, 8, 8, 8, dtype=torch.long), torch.zeros(1, 8, 8, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="label map"):
        acc.update(torch.zeros(1, 3, 8, 8, 8, dtype=torch.long), torch.zeros(1, 3, 8, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="spacing"):
        HausdorffAccumulator(HEAD_AND_NECK, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match="spacing"):
        HausdorffAccumulator(HEAD_AND_NECK, spacing=(1.0, 0.0, 1.0))


def test_reset_forgets_cases():
    """reset() empties the accumulator."""
    acc = HausdorffAccumulator(HEAD_AND_NECK, spacing=None)
    p, t = pair(2)
    acc.update(batch(p), batch(t))
    acc.reset()
    assert acc.result()["n_cases"] == 0
    assert acc.per_case().shape == (0, 2)


def test_one_structure_gives_its_median_and_aggregated_equal_to_it():
    """A data set of one structure: its median HD95 over the cases, and ``aggregated`` the same."""
    p1, t1 = pair(1)
    p3, t3 = pair(3, axis=2)
    acc = HausdorffAccumulator({1: "lesion"}, spacing=None)
    acc.update(batch(p1, p3), batch(t1, t3))
    assert acc.per_case().tolist() == [[1.0], [3.0]]
    assert acc.result() == {"lesion": 2.0, "aggregated": 2.0, "n_cases": 2}


def test_three_structures_each_get_their_distance():
    """Labels 1, 2, 3 shifted by 1 and 2 voxels and missed (2 mm voxels): 2 mm, 4 mm and the diagonal."""
    target = plate(0, 1, label=1)
    plate(0, 5, label=2, volume=target)
    plate(0, 10, label=3, volume=target)
    pred = plate(0, 2, label=1)
    plate(0, 7, label=2, volume=pred)  # label 3 missed
    acc = HausdorffAccumulator({1: "liver", 2: "tumour", 3: "node"}, spacing=(2.0, 2.0, 2.0))
    acc.update(batch(pred), batch(target))
    diagonal = 24 * math.sqrt(3)  # 12 voxels of 2 mm along each axis
    result = acc.result()
    assert [result[k] for k in ("liver", "tumour", "node")] == pytest.approx([2.0, 4.0, diagonal])
    assert result["aggregated"] == pytest.approx((2.0 + 4.0 + diagonal) / 3)
