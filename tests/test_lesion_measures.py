"""NSD, lesion detection and FP/FN volumes on hand-made masks, each value worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pemma_cl.evaluation.lesions import (DetectionCounts, detection_counts, detection_f1, lesions,
                                         unmatched_volumes)
from pemma_cl.evaluation.surface import surface_dice

SHAPE = (16, 16, 16)


def _mask(*boxes: tuple[slice, slice, slice]) -> np.ndarray:
    """A bool mask of SHAPE, True on each ``[z, y, x]`` box."""
    mask = np.zeros(SHAPE, dtype=bool)
    for box in boxes:
        mask[box] = True
    return mask


EMPTY = _mask()
CUBE = _mask(np.s_[2:6, 2:6, 2:6])  # 4^3 voxels
CUBE_UP = _mask(np.s_[3:7, 2:6, 2:6])  # the same cube one voxel further along z


# --- NSD -----------------------------------------------------------------------------------------------------------
# Edge voxels of a 4^3 cube: 64 - 2^3 interior = 56, by layer along z: 16 (bottom face), 12, 12 (rings), 16 (top).
# From CUBE to CUBE_UP (one voxel up): CUBE's bottom face (16) lies one voxel below CUBE_UP's bottom face; its two
# ring layers (24) coincide with CUBE_UP's rings; its top layer z=5 is a ring layer of CUBE_UP, so its 12 border
# voxels coincide and its 4 centre voxels are one voxel from that ring (in plane) and from CUBE_UP's top face.
# So 36 of 56 distances are 0 and 20 are one voxel; by symmetry the same from CUBE_UP to CUBE.

def test_nsd_of_cubes_one_voxel_apart_below_and_above_the_offset():
    # Isotropic 2 mm: the 20 + 20 off-boundary edge voxels are 2 mm away.
    assert surface_dice(CUBE_UP, CUBE, (2.0, 2.0, 2.0), 1.0) == pytest.approx(72 / 112, rel=1e-6)  # 9/14
    assert surface_dice(CUBE_UP, CUBE, (2.0, 2.0, 2.0), 2.0) == pytest.approx(1.0)  # d <= tolerance counts
    assert surface_dice(CUBE_UP, CUBE, (2.0, 2.0, 2.0), 3.0) == pytest.approx(1.0)
    assert surface_dice(CUBE, CUBE, (2.0, 2.0, 2.0), 0.0) == pytest.approx(1.0)


def test_nsd_honours_anisotropic_spacing():
    # Spacing (2, 1, 1) mm: the 16 face voxels are 2 mm away along z, the 4 centre voxels of the top layer 1 mm
    # away in plane. At 1.5 mm: (36 + 4) per direction -> 80 / 112 = 5/7.
    assert surface_dice(CUBE_UP, CUBE, (2.0, 1.0, 1.0), 1.5) == pytest.approx(80 / 112, rel=1e-6)


def test_nsd_of_empty_masks():
    assert math.isnan(surface_dice(EMPTY, EMPTY, (1.0, 1.0, 1.0), 2.0))  # nothing to score: left out
    assert surface_dice(EMPTY, CUBE, (1.0, 1.0, 1.0), 2.0) == 0.0  # missed structure
    assert surface_dice(CUBE, EMPTY, (1.0, 1.0, 1.0), 2.0) == 0.0  # hallucinated structure


def test_nsd_rejects_a_negative_tolerance_and_mismatched_shapes():
    with pytest.raises(ValueError, match="tolerance_mm"):
        surface_dice(CUBE, CUBE, (1.0, 1.0, 1.0), -1.0)
    with pytest.raises(ValueError, match="one shape"):
        surface_dice(CUBE, CUBE[:8], (1.0, 1.0, 1.0), 1.0)


# --- Detection -----------------------------------------------------------------------------------------------------

def test_lesions_are_26_connected():
    # Two voxels sharing only a corner are one lesion; a voxel two steps away is another.
    mask = _mask(np.s_[0:1, 0:1, 0:1], np.s_[1:2, 1:2, 1:2], np.s_[3:4, 3:4, 3:4])
    assert lesions(mask)[1] == 2


def test_detection_one_matched_one_missed_and_a_false_positive_blob():
    reference = _mask(np.s_[1:4, 1:4, 1:4], np.s_[10:12, 10:12, 10:12])  # lesions of 27 and 8 voxels
    pred = _mask(np.s_[1:4, 1:4, 1:4], np.s_[1:3, 10:12, 1:3])  # the first exactly (IoU 1), a blob far from both
    counts = detection_counts(pred, reference)
    assert counts == DetectionCounts(tp=1, fp=1, fn=1)
    assert detection_f1([counts]) == pytest.approx(2 / (2 + 1 + 1))  # 0.5


@pytest.mark.parametrize(("predicted", "tp"), [(29, 0), (30, 0), (31, 1)])
def test_detection_matches_strictly_above_iou_0_3(predicted, tp):
    # Reference: a 10 x 10 slab (100 voxels). Prediction inside it: three rows of 10 (IoU 30/100 = 0.30, not above
    # the threshold), less one end voxel (0.29), or plus one voxel of the fourth row (0.31).
    reference = _mask(np.s_[5:6, 0:10, 0:10])
    pred = _mask(np.s_[5:6, 0:3, 0:10])
    if predicted == 29:
        pred[5, 2, 9] = False
    elif predicted == 31:
        pred[5, 3, 0] = True
    assert int(pred.sum()) == predicted
    fp_fn = 1 - tp
    assert detection_counts(pred, reference) == DetectionCounts(tp=tp, fp=fp_fn, fn=fp_fn)


def test_detection_matches_one_to_one():
    # One predicted bar (9 voxels) bridges two reference bars of 4: IoU 4/9 = 0.44 with each, but it detects one.
    reference = _mask(np.s_[0:1, 0:1, 0:4], np.s_[0:1, 0:1, 5:9])
    pred = _mask(np.s_[0:1, 0:1, 0:9])
    assert detection_counts(pred, reference) == DetectionCounts(tp=1, fp=0, fn=1)


def test_detection_of_empty_masks_and_f1_summed_over_cases():
    two = _mask(np.s_[0:2, 0:2, 0:2], np.s_[8:10, 8:10, 8:10])
    assert detection_counts(two, EMPTY) == DetectionCounts(tp=0, fp=2, fn=0)  # every predicted lesion is an FP
    assert detection_counts(EMPTY, two) == DetectionCounts(tp=0, fp=0, fn=2)  # every reference lesion is missed
    assert detection_counts(EMPTY, EMPTY) == DetectionCounts(tp=0, fp=0, fn=0)
    assert math.isnan(detection_f1([DetectionCounts(0, 0, 0)]))  # nothing to detect, nothing claimed
    assert math.isnan(detection_f1([]))
    # Summed before the ratio: (1, 1, 1) + (0, 2, 0) -> 2 / (2 + 3 + 1) = 1/3 (the mean of per-case F1 would be 0.25).
    assert detection_f1([DetectionCounts(1, 1, 1), DetectionCounts(0, 2, 0)]) == pytest.approx(1 / 3)


# --- FP / FN volume ------------------------------------------------------------------------------------------------
SPACING = (3.0, 1.0, 0.5)  # one voxel: 1.5 mm^3 = 0.0015 mL


def test_fp_and_fn_volume_at_anisotropic_spacing():
    # Reference: lesion A (2^3 = 8 voxels) and lesion B (3^3 = 27 voxels). Prediction: a 2-voxel bar with one voxel
    # in A (touches A: neither FP nor FN, whatever its IoU) and a 1 x 2 x 5 blob (10 voxels) touching nothing.
    reference = _mask(np.s_[0:2, 0:2, 0:2], np.s_[8:11, 8:11, 8:11])
    pred = _mask(np.s_[1:2, 1:2, 1:3], np.s_[5:6, 12:14, 0:5])
    fp_ml, fn_ml = unmatched_volumes(pred, reference, SPACING)
    assert fp_ml == pytest.approx(10 * 0.0015)  # the blob: 0.015 mL
    assert fn_ml == pytest.approx(27 * 0.0015)  # lesion B: 0.0405 mL


def test_fp_and_fn_volume_of_empty_masks():
    blob = _mask(np.s_[0:2, 0:5, 0:1])  # 10 voxels
    assert unmatched_volumes(blob, EMPTY, SPACING) == pytest.approx((0.015, 0.0))
    assert unmatched_volumes(EMPTY, blob, SPACING) == pytest.approx((0.0, 0.015))
    assert unmatched_volumes(EMPTY, EMPTY, SPACING) == (0.0, 0.0)


# --- Per-case rows -------------------------------------------------------------------------------------------------

def test_per_case_rows_carry_the_measures_at_the_final_evaluation_only() -> None:
    import torch
    from test_template import HEAD_AND_NECK, fake_strategy, one_hot_logits

    from pemma_cl.evaluation.lesions import MEASURES
    from pemma_cl.evaluation.per_case import CASE_COLUMNS, case_frame
    from pemma_cl.evaluation.segmentation_metric import SegmentationMetric

    labels = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    labels[0, 0, 1:4, 1:4, 1:4] = 1  # GTVp: 27 voxels, found exactly
    labels[0, 0, 5:7, 5:7, 5:7] = 2  # GTVn: 8 voxels, missed
    prediction = torch.where(labels == 2, 0, labels)
    prediction[0, 0, 0, 0, 6:8] = 2  # a 2-voxel GTVn blob, 7 voxels (14 mm) from the reference node
    metric = SegmentationMetric(["A", "B"], ["CHUM", "HGJ"], [[("CHUM-001", "CHUM")], [("HGJ-001", "HGJ")]],
                                [(2.0, 2.0, 2.0)] * 2, structures=HEAD_AND_NECK)
    for trained_through in (-1, 1):  # before training, then after the last experience
        if trained_through >= 0:
            metric.after_training_exp(fake_strategy(trained_through))
        strategy = fake_strategy(0, eval_settings=("ct",), mb_input_setting="ct", mb_output=one_hot_logits(prediction),
                                 mb_y=labels)
        metric.before_eval_exp(strategy)
        metric.after_eval_forward(strategy)
        metric.after_eval_exp(strategy)
    rows = case_frame([[0, "naive", *row] for row in metric.case_rows]).set_index(["trained_through", "structure"])
    assert tuple(case_frame([]).columns) == CASE_COLUMNS and CASE_COLUMNS[-len(MEASURES):] == MEASURES
    assert rows.loc[(-1, "GTVp"), list(MEASURES)].isna().all() and rows.loc[(-1, "GTVn"), list(MEASURES)].isna().all()
    # One voxel is 2^3 mm^3 = 0.008 mL. GTVp: found exactly. GTVn: the blob is an FP lesion (0.016 mL), the node an
    # FN lesion (0.064 mL), and no boundary voxel is within 4 mm of the other mask's: NSD 0.
    assert rows.loc[(1, "GTVp"), list(MEASURES)].tolist() == [1.0, 1, 0, 0, 0.0, 0.0]
    assert rows.loc[(1, "GTVn"), list(MEASURES)].tolist() == pytest.approx([0.0, 0, 1, 1, 0.016, 0.064])


def test_per_case_rows_written_before_the_measures_still_read_and_summarise(tmp_path) -> None:
    import pandas as pd

    from pemma_cl.evaluation.lesions import MEASURES
    from pemma_cl.evaluation.per_case import CASE_COLUMNS, aggregated_dice, case_frame, read_cases
    from pemma_cl.run.folders import FolderWriter

    earlier = CASE_COLUMNS[:-len(MEASURES)]
    rows = [[0, "a", 1, "B", 0, "A", "HGJ", "HGJ-001", "ctpet", "GTVp", 8, 2, 0, 8, 10, 0.8, 4.5],
            [0, "a", 1, "B", 0, "A", "HGJ", "HGJ-001", "ctpet", "GTVn", 1, 1, 1, 2, 2, 0.5, None]]
    assert len(rows[0]) == len(earlier)
    FolderWriter(tmp_path).write_csv("cases.csv.gz", pd.DataFrame(rows, columns=list(earlier)))
    cases = read_cases(tmp_path)
    assert tuple(cases.columns) == CASE_COLUMNS and cases[list(MEASURES)].isna().all().all()
    assert cases[list(earlier)].equals(case_frame(rows)[list(earlier)])  # the earlier columns exactly as before
    assert cases["hd95"].tolist()[0] == 4.5 and cases["tp"].dtype == "int64"
    # GTVp 2*8 / (16 + 2) = 8/9, GTVn 2/4: their mean, as before
    assert aggregated_dice(cases) == pytest.approx((8 / 9 + 1 / 2) / 2)
