"""Volumes of any shape: training on patches of the preset's size, whole-volume evaluation by sliding window,
padding of small volumes, the centred patch of prognosis, and the cubic path left exactly as it was."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from avalanche.training.plugins import EvaluationPlugin
from monai.metrics import compute_hausdorff_distance
from torch import nn

from pemma_cl.data import patches
from pemma_cl.data.dataset import CaseDataset, case_tensors
from pemma_cl.data.patches import CENTRED, RANDOM, WHOLE, random_patch
from pemma_cl.data.records import CaseRecord
from pemma_cl.evaluation.per_case import CASE_COLUMNS
from pemma_cl.evaluation.segmentation_metric import SegmentationMetric
from pemma_cl.models.presets import PRESETS
from pemma_cl.streams.build import build_stream
from pemma_cl.streams.spec import ExperienceSpec, PretrainSpec, StreamSpec
from pemma_cl.training.bases import SharedBases
from pemma_cl.training.template import SegmentationTemplate, batches_of_one_shape

#: Positions in a metric's per-case row (CASE_COLUMNS less seed and strategy).
DICE, HD95 = (CASE_COLUMNS.index(name) - 2 for name in ("dice", "hd95"))

PATCH = PRESETS["micro"].img_size  # 32
LARGE = (48, 40, 36)
#: The labelled blob of a large case: 4x4x4 voxels near a corner (a patch centred elsewhere can miss it).
BLOB = (slice(40, 44), slice(2, 6), slice(28, 32))
SPACING = (2.0, 3.0, 4.0)
#: The patch centred on ``BLOB`` in a ``LARGE`` volume: its centre of mass (41.5, 3.5, 29.5) rounds to (42, 4, 30), and
#: the patch is moved inside the 48x40x36 volume: centre (32, 16, 20).
CENTRED_ON_BLOB = (slice(None), slice(16, 48), slice(0, 32), slice(4, 36))


def blob_case(case_id: str, shape=LARGE, blob=BLOB, hot_extra: int = 0, centre: str = "A") -> CaseRecord:
    """A case whose label 1 is ``blob``; its CT encodes the label (100 HU inside, -1000 outside: 0.6 and 0 after the
    window) and its PET is hot (SUV 10, 1.0 after scaling) over the blob extended by ``hot_extra`` voxels along x."""
    label = np.zeros(shape, dtype=np.uint8)
    label[blob] = 1
    pet = np.zeros(shape, dtype=np.float32)
    z, y, x = blob
    pet[z, y, x.start:x.stop + hot_extra] = 10.0
    ct = np.where(label > 0, 100.0, -1000.0).astype(np.float32)
    return CaseRecord(case_id, centre, ct=ct, pet=pet, label=label, spacing=SPACING)


def draws(dataset: CaseDataset, seed: int, n: int = 6) -> list[tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(seed)
    return [dataset[0][:2] for _ in range(n)]


def test_random_patches_have_the_patch_shape_and_crop_image_and_label_together() -> None:
    dataset = CaseDataset([blob_case("c0")], ("ct", "pet"), patch=PATCH, sampling=RANDOM)
    assert dataset.shapes == [(PATCH,) * 3]
    has_blob = []
    for x, y in draws(dataset, seed=0, n=20):
        assert x.shape == (2, PATCH, PATCH, PATCH) and y.shape == (1, PATCH, PATCH, PATCH)
        assert type(x) is torch.Tensor and y.dtype == torch.int64
        assert torch.equal(x[0] > 0.3, y[0] == 1)  # the CT channel encodes the label: cropped at the same place
        has_blob.append(bool(y.any()))
    assert any(has_blob) and not all(has_blob)  # background-centred patches miss the corner blob, some do not


def test_positive_patches_contain_foreground() -> None:
    x, y = case_tensors(blob_case("c0"))
    for seed in range(8):
        _, cropped = random_patch(x, y, PATCH, seed, pos=1.0, neg=0.0)
        assert cropped.shape == (1, PATCH, PATCH, PATCH) and cropped.sum() > 0, seed


def test_random_patches_are_reproducible_per_seed() -> None:
    dataset = CaseDataset([blob_case("c0")], ("ct", "pet"), patch=PATCH, sampling=RANDOM)
    first, again, other = draws(dataset, 1), draws(dataset, 1), draws(dataset, 2)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, other))


def test_prognosis_reads_the_patch_centred_on_the_foreground() -> None:
    x, y = case_tensors(blob_case("c0"))
    dataset = CaseDataset([blob_case("c0"), blob_case("empty", blob=(slice(0, 0),) * 3)], ("ct", "pet"),
                          patch=PATCH, sampling=CENTRED)
    served, label = dataset[0][:2]
    assert torch.equal(served, x[CENTRED_ON_BLOB]) and torch.equal(label, y[CENTRED_ON_BLOB])
    assert int(label.sum()) == 64 and torch.equal(dataset[0][0], served)  # the whole blob, the same every time
    # no foreground: the volume's centre
    empty_x, _ = case_tensors(blob_case("empty", blob=(slice(0, 0),) * 3))
    assert torch.equal(dataset[1][0], empty_x[:, 8:40, 4:36, 2:34])


def test_a_volume_smaller_than_the_patch_is_padded_with_the_normalised_minimum() -> None:
    small = blob_case("small", shape=(20, 20, 20), blob=(slice(8, 12),) * 3)
    x, y = case_tensors(small)
    for sampling in (RANDOM, CENTRED):
        served, label = CaseDataset([small], ("ct", "pet"), patch=PATCH, sampling=sampling)[0][:2]
        assert served.shape == (2, PATCH, PATCH, PATCH) and label.shape == (1, PATCH, PATCH, PATCH)
        inside = (slice(None), slice(6, 26), slice(6, 26), slice(6, 26))  # symmetric: 6 voxels before, 6 after
        assert torch.equal(served[inside], x) and torch.equal(label[inside], y)
        outside = torch.ones(PATCH, PATCH, PATCH, dtype=torch.bool)
        outside[inside[1:]] = False
        # CT air maps to the window's minimum, 0, which is what the padding holds; PET and label 0
        assert float(x[0].min()) == 0.0 and (served[:, outside] == 0).all() and (label[:, outside] == 0).all()
    assert CaseDataset([small], ("ct", "pet"), patch=PATCH, sampling=WHOLE).shapes == [(20, 20, 20)]


def one_experience_spec() -> StreamSpec:
    return StreamSpec(name="shapes", description="volumes of several shapes",
                      pretrain=PretrainSpec(centres=("A",), modalities=("ct",)),
                      experiences=(ExperienceSpec(name="A", centres=("A",), modalities=("ct", "pet"), task=1),),
                      path=Path("shapes.yaml"))


def test_the_run_says_once_that_small_volumes_are_padded(capsys, monkeypatch) -> None:
    monkeypatch.setattr(patches, "_said", set())
    train = [blob_case("t0"), blob_case("t1", shape=(20, 20, 20), blob=(slice(8, 12),) * 3)]
    evaluated = [blob_case("e0", shape=(20, 24, 40), blob=(slice(8, 12),) * 3)]
    build_stream(one_experience_spec(), train, evaluated, patch=PATCH)
    build_stream(one_experience_spec(), train, evaluated, patch=PATCH)
    assert capsys.readouterr().err.splitlines() == [
        "2 cases are smaller than the patch (32x32x32) in some axis and are padded"]
    build_stream(one_experience_spec(), train[:1], [blob_case("e1")], patch=PATCH)
    assert capsys.readouterr().err == ""


def test_a_stream_trains_segmentation_on_patches_scores_it_whole_and_gives_prognosis_the_centred_patch() -> None:
    spec = one_experience_spec()
    spec = StreamSpec(name="kinds", description="", pretrain=spec.pretrain, path=spec.path, experiences=(
        *spec.experiences, ExperienceSpec(name="RFS", centres=("A",), modalities=("ct", "pet"), task=2,
                                          kind="prognosis")))
    train = [replace(blob_case(f"t{i}"), rfs_days=100.0 * (i + 1), relapse=i % 2) for i in range(4)]
    evaluated = [replace(blob_case(f"e{i}"), rfs_days=100.0 * (i + 1), relapse=i % 2) for i in range(4)]
    stream = build_stream(spec, train, evaluated, patch=PATCH)
    segmentation, prognosis = stream.benchmark.train_stream
    assert segmentation.dataset[0][0].shape == (2, PATCH, PATCH, PATCH)
    assert torch.equal(prognosis.dataset[0][0], case_tensors(train[0])[0][CENTRED_ON_BLOB])
    assert stream.benchmark.test_stream[0].dataset[0][0].shape == (2, *LARGE)
    assert stream.benchmark.tracked_stream[0].dataset[0][0].shape == (2, *LARGE)
    assert torch.equal(stream.benchmark.test_stream[1].dataset[0][0], case_tensors(evaluated[0])[0][CENTRED_ON_BLOB])


def test_batches_of_one_shape_keep_the_order() -> None:
    a, b = (32, 32, 32), (48, 40, 36)
    assert batches_of_one_shape([a, a, a, b, a, a], 2) == [[0, 1], [2], [3], [4, 5]]
    assert batches_of_one_shape([a] * 5, 8) == [[0, 1, 2, 3, 4]]


class PetThreshold(nn.Module):
    """Predicts structure 1 wherever the (unmasked) PET channel is hot: a voxel-wise rule, so the sliding window's
    blending of overlapping windows leaves it exact. Records the input shapes it is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor) -> torch.Tensor:
        self.shapes.append(tuple(x.shape[2:]))
        hot = (x[:, 1:2] * modality_mask[:, 1, None, None, None, None].to(x.dtype) > 0.5).to(x.dtype)
        return torch.cat([1 - hot, hot, hot * 0 - 1], dim=1) + self.weight * 0


def test_whole_volumes_of_several_shapes_are_scored_case_by_case_in_order() -> None:
    # Dice of case k: TP 64 (the blob), FP 16 * extra (the hot voxels beyond it) -> 128 / (128 + 16 * extra)
    extras = {"e0": 0, "e1": 4, "e2": 2, "e3": 8}
    evaluated = [blob_case("e0"), blob_case("e1", shape=(PATCH,) * 3, blob=(slice(4, 8),) * 3, hot_extra=4),
                 blob_case("e2", shape=(20, 20, 20), blob=(slice(8, 12),) * 3, hot_extra=2),
                 blob_case("e3", shape=(96, 56, 72), blob=(slice(50, 54), slice(20, 24), slice(10, 14)), hot_extra=8)]
    train = [blob_case("t0"), blob_case("t1", shape=(20, 20, 20), blob=(slice(8, 12),) * 3), blob_case("t2")]
    stream = build_stream(one_experience_spec(), train, evaluated, patch=PATCH)
    metric = SegmentationMetric(stream.names, stream.centres, stream.eval_cases, stream.spacings,
                                structures=("GTVp", "GTVn"))
    model = PetThreshold()
    strategy = SegmentationTemplate(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                    train_mb_size=2, eval_mb_size=8, train_epochs=1, device="cpu",
                                    evaluator=EvaluationPlugin(metric, loggers=[]), roi_size=PATCH)
    strategy.train(stream.benchmark.train_stream[0])  # three volumes of two shapes: patches collate
    assert set(model.shapes) == {(PATCH,) * 3}
    model.shapes.clear()
    strategy.eval(stream.benchmark.test_stream)  # final evaluation (HD95 too) of four shapes: no collate error
    assert set(model.shapes) == {(PATCH,) * 3}  # windows (and pairs of one case), never a whole large volume
    rows = {(r[6], r[5], r[7]): r for r in metric.case_rows}  # (input, case, structure)
    assert [r[5] for r in metric.case_rows if r[6] == "ctpet" and r[7] == "GTVp"] == list(extras)
    for case in evaluated:
        extra = extras[case.case_id]
        for setting in ("pet", "ctpet"):
            row = rows[(setting, case.case_id, "GTVp")]
            assert row[8:11] == [64, 16 * extra, 0] and row[DICE] == pytest.approx(128 / (128 + 16 * extra))
            predicted = torch.as_tensor(case.pet >= 10.0)[None, None]
            reference = torch.as_tensor(case.label == 1)[None, None]
            expected = float(compute_hausdorff_distance(predicted, reference, include_background=True, percentile=95,
                                                        spacing=SPACING))
            assert row[HD95] == pytest.approx(expected) and (expected == 0.0) == (extra == 0)
        assert rows[("ct", case.case_id, "GTVp")][8:11] == [0, 0, 64]  # PET hidden: nothing found
        assert math.isnan(rows[("ctpet", case.case_id, "GTVn")][DICE])
    aggregated = next(r for r in metric.rows if r["input"] == "ctpet" and r["structure"] == "GTVp")
    assert aggregated["dice"] == pytest.approx(2 * 64 * 4 / (2 * 64 * 4 + 16 * sum(extras.values())))


def global_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()


def test_the_cubic_path_serves_the_same_tensors_and_draws_no_random_number(tiny_cohort) -> None:
    cases = tiny_cohort[:6]
    before = global_states()
    for sampling in (RANDOM, CENTRED, WHOLE):
        dataset = CaseDataset(cases, ("ct", "pet"), patch=PATCH, sampling=sampling)
        today = CaseDataset(cases, ("ct", "pet"))
        for i, case in enumerate(cases):
            x, y = case_tensors(case)
            served = dataset[i]
            assert torch.equal(served[0], x) and torch.equal(served[1], y)
            for mine, old in zip(served, today[i], strict=True):
                torch.testing.assert_close(mine, old, rtol=0, atol=0, equal_nan=True)
    after = global_states()
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]


def test_the_ct_base_pretrains_on_patches_of_larger_volumes() -> None:
    # A micro UNETR takes exactly 32^3: without patches its patch embedding would refuse these volumes.
    cases = [blob_case("p0"), blob_case("p1", shape=(96, 56, 72), blob=(slice(50, 54),) * 3), blob_case("p2")]

    def base_weights() -> dict:
        bases = SharedBases(PRESETS["micro"], cases, seed=0, device=torch.device("cpu"), cache_dir=None,
                            data_key="whole-volumes", num_classes=3)
        return bases.get("ct").state_dict()

    first, again = base_weights(), base_weights()
    assert all(torch.equal(first[k], again[k]) for k in first)  # the same seed, the same patches and weights
