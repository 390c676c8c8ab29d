"""The segmentation training/evaluation loop: modality dropout, per-setting evaluation, the Dice metric."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from avalanche.benchmarks import benchmark_from_datasets, with_task_labels
from avalanche.core import SupervisedPlugin
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from pemma_cl.data.dataset import avalanche_dataset
from pemma_cl.data.records import CaseRecord
from pemma_cl.evaluation.segmentation_metric import SegmentationMetric
from pemma_cl.training.template import INPUT_SETTINGS, SegmentationTemplate, drop_modalities

SIDE = 32
#: The built-in cohort's structures, and the structures of its metric rows.
HEAD_AND_NECK = ("GTVp", "GTVn")
STRUCTURES = (*HEAD_AND_NECK, "aggregated")


# ---------------------------------------------------------------------------------------------------------------
# drop_modalities


def random_masks(n: int, seed: int) -> torch.Tensor:
    """Masks mixing CT+PET, CT-only and PET-only rows (never all-False)."""
    choices = torch.tensor([[True, True], [True, False], [False, True]])
    return choices[torch.randint(0, 3, (n,), generator=torch.Generator().manual_seed(seed))]


@pytest.mark.parametrize("rate", [0.3, 0.5, 1.0])
def test_drop_modalities_only_touches_two_modality_rows(rate: float) -> None:
    mask = random_masks(400, seed=1)
    new = drop_modalities(mask, rate, torch.Generator().manual_seed(2))
    single = mask.sum(dim=1) == 1
    assert torch.equal(new[single], mask[single])  # never drops from single-modality rows
    assert (new.sum(dim=1) >= 1).all()
    changed = (new != mask).any(dim=1)
    assert (new[changed].sum(dim=1) == 1).all()  # a dropped row keeps exactly one modality
    both = ~single
    if rate == 1.0:
        assert changed[both].all()
    else:
        share = changed[both].float().mean().item()
        assert abs(share - rate) < 0.12, share
    kept_ct = new[changed][:, 0].float().mean().item()
    assert 0.3 < kept_ct < 0.7  # either modality may be the one kept
    assert not mask.equal(new) and mask.equal(random_masks(400, seed=1))  # the input is not modified


def test_drop_modalities_rate_zero_is_identity() -> None:
    mask = random_masks(100, seed=3)
    assert torch.equal(drop_modalities(mask, 0.0, torch.Generator().manual_seed(0)), mask)


def test_drop_modalities_is_reproducible_per_generator_seed() -> None:
    mask = torch.ones(200, 2, dtype=torch.bool)
    first = drop_modalities(mask, 0.5, torch.Generator().manual_seed(7))
    assert torch.equal(first, drop_modalities(mask, 0.5, torch.Generator().manual_seed(7)))
    assert not torch.equal(first, drop_modalities(mask, 0.5, torch.Generator().manual_seed(8)))


# ---------------------------------------------------------------------------------------------------------------
# SegmentationTemplate with small fake networks


class MaskRecorder(nn.Module):
    """A 1x1x1 convolution that records the modality masks (and input shapes) it is called with."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 3, kernel_size=1)
        self.calls: list[tuple[bool, torch.Tensor, tuple[int, ...]]] = []

    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, modality_mask.clone(), tuple(x.shape)))
        return self.conv(x * modality_mask[:, :, None, None, None].to(x.dtype))


class LabelOracle(nn.Module):
    """Reads the label back from the CT channel (see ``oracle_cases``) and returns matching logits."""

    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))
        self.window_shapes: set[tuple[int, ...]] = set()

    def forward(self, x: torch.Tensor, modality_mask: torch.Tensor) -> torch.Tensor:
        self.window_shapes.add(tuple(x.shape[2:]))
        levels = torch.tensor([0.2, 0.4, 0.6])[None, :, None, None, None]
        return -((x[:, :1] - levels) ** 2) * 100


def oracle_cases(cases: list[CaseRecord]) -> list[CaseRecord]:
    """Cases whose CT encodes the label: -100, 0, 100 HU (0.2, 0.4, 0.6 after the CT window)."""
    return [CaseRecord(c.case_id, c.centre, ct=c.label.astype("float32") * 100 - 100, pet=c.pet, label=c.label,
                       spacing=c.spacing) for c in cases]


def make_template(model: nn.Module, metric: SegmentationMetric | None = None, **kwargs) -> SegmentationTemplate:
    evaluator = EvaluationPlugin(*([metric] if metric else []), loggers=[])
    return SegmentationTemplate(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                train_mb_size=2, eval_mb_size=2, train_epochs=1, device="cpu",
                                evaluator=evaluator, **{"roi_size": SIDE, **kwargs})


def test_evaluation_runs_every_minibatch_under_each_input_setting(stream_data) -> None:
    model = MaskRecorder()
    metric = SegmentationMetric(stream_data.names, stream_data.centres, stream_data.eval_cases,
                                structures=HEAD_AND_NECK)
    make_template(model, metric).eval(stream_data.benchmark.test_stream)
    n_exp = len(stream_data.names)
    assert [c[0] for c in model.calls] == [False] * (3 * n_exp)
    for i, (_, mask, _) in enumerate(model.calls):  # one test case per experience: ct, pet, ctpet in turn
        setting = tuple(INPUT_SETTINGS)[i % 3]
        assert mask.tolist() == [list(INPUT_SETTINGS[setting])] * 2, (i, setting)  # one case runs as a pair
    rows = metric.rows
    assert len(rows) == n_exp * 3 * len(STRUCTURES)
    assert {(r["eval_experience"], r["input"], r["structure"]) for r in rows} == {
        (e, s, k) for e in range(n_exp) for s in INPUT_SETTINGS for k in STRUCTURES}
    assert all(r["trained_through"] == -1 and r["trained_through_name"] == "base" for r in rows)
    assert [r["centre"] for r in rows[::9]] == ["HGJ", "CHUV"]
    # per-case rows: each experience's cases by the stream's case list, with the reference voxels of their labels
    cases = metric.case_rows
    assert len(cases) == sum(len(c) for c in stream_data.eval_cases) * 3 * 2
    for exp, members in enumerate(stream_data.eval_cases):
        data = stream_data.benchmark.test_stream[exp].dataset
        for index, (case_id, centre) in enumerate(members):
            label = data[index][1]
            expected = {(centre, structure): int((label == k).sum()) for k, structure in ((1, "GTVp"), (2, "GTVn"))}
            mine = [r for r in cases if r[2] == exp and r[5] == case_id]
            assert len(mine) == 3 * 2 and {(r[4], r[7]): r[11] for r in mine} == expected, case_id
    for r in rows:
        assert r["n_cases"] == 1
        assert math.isnan(r["dice"]) or 0.0 <= r["dice"] <= 1.0


def test_oracle_scores_dice_one_through_the_sliding_window(tiny_cohort) -> None:
    cases = oracle_cases([c for c in tiny_cohort if c.centre == "HGJ"])
    benchmark = with_task_labels(benchmark_from_datasets(train=[avalanche_dataset(cases, ("ct", "pet"), 1)],
                                                         test=[avalanche_dataset(cases, ("ct", "pet"), 1)]))
    model = LabelOracle()
    metric = SegmentationMetric(["HGJ"], ["HGJ"], [[(c.case_id, c.centre) for c in cases]], structures=HEAD_AND_NECK)
    make_template(model, metric, roi_size=16).eval(benchmark.test_stream)
    assert model.window_shapes == {(16, 16, 16)}  # 32^3 volumes were evaluated window by window
    assert len(metric.rows) == 3 * len(STRUCTURES)
    for row in metric.rows:
        assert row["n_cases"] == len(cases)
        if row["structure"] != "GTVn":
            assert row["dice"] == 1.0 and row["dice_case_mean"] == 1.0, row
        else:
            assert row["dice"] == 1.0 or math.isnan(row["dice"]), row


def ct_only_and_both_streams(tiny_cohort):
    """Two training experiences on the same four HGJ cases: CT only, then CT+PET."""
    cases = [c for c in tiny_cohort if c.centre == "HGJ"][:4]
    train = [avalanche_dataset(cases, ("ct",), 1), avalanche_dataset(cases, ("ct", "pet"), 2)]
    return with_task_labels(benchmark_from_datasets(train=train, test=train)).train_stream


@pytest.mark.parametrize("rate", [0.0, 1.0])
def test_training_applies_modality_dropout_to_two_modality_samples_only(tiny_cohort, rate) -> None:
    ct_only, both = ct_only_and_both_streams(tiny_cohort)
    model = MaskRecorder()
    strategy = make_template(model, modality_dropout=rate)
    strategy.train(ct_only)
    ct_masks = torch.cat([m for training, m, _ in model.calls if training])
    assert len(ct_masks) == 4 and (ct_masks == torch.tensor([True, False])).all()
    model.calls.clear()
    strategy.train(both)
    masks = torch.cat([m for training, m, _ in model.calls if training])
    assert len(masks) == 4
    if rate == 0.0:
        assert masks.all()
    else:
        assert (masks.sum(dim=1) == 1).all()


class NeedsContiguousWeights(SupervisedPlugin):
    needs_contiguous_weights = True


@pytest.mark.parametrize("plugins", [[], [NeedsContiguousWeights()]], ids=["default", "plugin-needs-contiguous"])
def test_cpu_training_uses_channels_last_unless_a_plugin_needs_contiguous_weights(tiny_cohort, plugins) -> None:
    _, both = ct_only_and_both_streams(tiny_cohort)
    model = MaskRecorder()
    weight = model.conv.weight
    strategy = make_template(model, plugins=plugins)
    seen: list[bool] = []
    strategy.forward = lambda: (seen.append(strategy.mb_x.is_contiguous(memory_format=torch.channels_last_3d)),
                                SegmentationTemplate.forward(strategy))[1]
    strategy.train(both)
    channels_last = not plugins
    assert model.conv.weight is weight and strategy.optimizer.param_groups[0]["params"][0] is weight
    layout = torch.channels_last_3d if channels_last else torch.contiguous_format
    # strides, not is_contiguous: a 1x1x1 kernel is contiguous in both layouts
    assert weight.stride() == torch.empty_like(weight, memory_format=layout).stride()
    assert seen == [channels_last] * 2 and weight.grad is not None


def test_modality_dropout_draws_follow_the_seed(tiny_cohort) -> None:
    _, both = ct_only_and_both_streams(tiny_cohort)
    model = MaskRecorder()
    make_template(model, modality_dropout=0.5, seed=3).train(both)
    masks = torch.cat([m for training, m, _ in model.calls if training])
    generator = torch.Generator().manual_seed(3)
    expected = torch.cat([drop_modalities(torch.ones(2, 2, dtype=torch.bool), 0.5, generator) for _ in range(2)])
    assert torch.equal(masks, expected)


def test_loss_dice_term_counts_the_tumour_classes_only() -> None:
    """An all-background prediction of a case with GTVp and GTVn costs the whole Dice term (1, the mean over
    GTVp and GTVn), not the 0.78 it would cost here with the background class in the mean."""
    label = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    label[0, 0, :2], label[0, 0, 6:] = 1, 2
    confident_background = one_hot_logits(torch.zeros_like(label)) * 50
    criterion = make_template(nn.Conv3d(2, 3, 1))._criterion
    cross_entropy = nn.functional.cross_entropy(confident_background, label[:, 0])
    assert criterion(confident_background, label).item() - cross_entropy.item() == pytest.approx(1.0, abs=1e-4)
    assert criterion(one_hot_logits(label) * 50, label).item() == pytest.approx(0.0, abs=1e-4)


# ---------------------------------------------------------------------------------------------------------------
# SegmentationMetric with a fake strategy


def one_hot_logits(labels: torch.Tensor, classes: int = 3) -> torch.Tensor:
    return nn.functional.one_hot(labels[:, 0], classes).permute(0, 4, 1, 2, 3).float()


def fake_strategy(exp: int, stream: str = "test", **fields) -> SimpleNamespace:
    fields = {"eval_settings": tuple(INPUT_SETTINGS), **fields}
    experience = SimpleNamespace(current_experience=exp, origin_stream=SimpleNamespace(name=stream))
    return SimpleNamespace(clock=SimpleNamespace(train_iterations=0), task_kind="segmentation",
                           experience=experience, **fields)


def test_hd95_only_at_the_final_evaluation() -> None:
    labels = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    labels[0, 0, 1:4, 1:4, 1:4] = 1
    metric = SegmentationMetric(["A", "B"], ["CHUM", "HGJ"], [[("CHUM-001", "CHUM")], [("HGJ-001", "HGJ")]],
                                structures=HEAD_AND_NECK)
    for trained_through in (-1, 0, 1):  # before training, after A, after B (the last experience)
        if trained_through >= 0:
            metric.after_training_exp(fake_strategy(trained_through))
        strategy = fake_strategy(0, mb_output=one_hot_logits(labels), mb_y=labels)
        metric.before_eval_exp(strategy)
        for strategy.mb_input_setting in INPUT_SETTINGS:
            metric.after_eval_forward(strategy)
        names = {value.name.split("/")[0] for value in metric.after_eval_exp(strategy)}
        assert names == ({"Dice", "HD95"} if trained_through == 1 else {"Dice"})
    hd95 = {row["trained_through"]: row["hd95"] for row in metric.rows if row["structure"] == "GTVp"}
    dice = {row["trained_through"]: row["dice"] for row in metric.rows if row["structure"] == "GTVp"}
    assert math.isnan(hd95[-1]) and math.isnan(hd95[0]) and hd95[1] == 0.0
    assert dice == {-1: 1.0, 0: 1.0, 1: 1.0}


def test_dice_metric_rows_for_perfect_and_empty_predictions() -> None:
    labels = torch.zeros(2, 1, 8, 8, 8, dtype=torch.long)
    labels[0, 0, 1:4, 1:4, 1:4] = 1
    labels[1, 0, 5:7, 5:7, 5:7] = 2
    metric = SegmentationMetric(["A", "B"], ["CHUM", "HGJ+HMR"],
                                [[("CHUM-001", "CHUM")], [("HGJ-001", "HGJ"), ("HMR-001", "HMR")]],
                                structures=HEAD_AND_NECK)
    metric.after_training_exp(fake_strategy(1))  # the final evaluation: the one with HD95
    strategy = fake_strategy(1)
    metric.before_eval_exp(strategy)
    predictions = {"ct": one_hot_logits(labels), "pet": one_hot_logits(torch.zeros_like(labels)),
                   "ctpet": one_hot_logits(torch.where(labels == 2, 0, labels))}
    for setting, logits in predictions.items():
        strategy.mb_input_setting, strategy.mb_output, strategy.mb_y = setting, logits, labels
        metric.after_eval_forward(strategy)
    values = metric.after_eval_exp(strategy)
    assert len(values) == 2 * len(metric.rows) == 2 * 3 * len(STRUCTURES)  # Dice and HD95 of each row
    assert {v.name.split("/")[0] for v in values} == {"Dice", "HD95"}
    hd95 = {(r["input"], r["structure"]): r["hd95"] for r in metric.rows}
    diagonal = (3 * 8**2) ** 0.5  # voxels (no spacing given): a missed structure counts as the volume's diagonal
    assert hd95[("ct", "GTVp")] == hd95[("ct", "GTVn")] == hd95[("ct", "aggregated")] == 0.0
    assert hd95[("pet", "GTVp")] == pytest.approx(diagonal) and hd95[("pet", "aggregated")] == pytest.approx(diagonal)
    assert hd95[("ctpet", "GTVp")] == 0.0 and hd95[("ctpet", "aggregated")] == pytest.approx(diagonal / 2)
    dice = {(r["input"], r["structure"]): r["dice"] for r in metric.rows}
    assert dice[("ct", "GTVp")] == dice[("ct", "GTVn")] == dice[("ct", "aggregated")] == 1.0
    assert dice[("pet", "GTVp")] == dice[("pet", "GTVn")] == dice[("pet", "aggregated")] == 0.0
    assert dice[("ctpet", "GTVp")] == 1.0 and dice[("ctpet", "GTVn")] == 0.0 and dice[("ctpet", "aggregated")] == 0.5
    row = metric.rows[0]
    assert (row["trained_through"], row["trained_through_name"], row["eval_experience"],
            row["eval_experience_name"], row["centre"], row["n_cases"]) == (1, "B", 1, "B", "HGJ+HMR", 2)


def test_per_case_rows_name_each_case_with_its_counts_dice_and_hd95() -> None:
    labels = torch.zeros(2, 1, 8, 8, 8, dtype=torch.long)
    labels[0, 0, 1:4, 1:4, 1:4] = 1  # 27 GTVp voxels in the first case
    labels[1, 0, 5:7, 5:7, 5:7] = 2  # 8 GTVn voxels in the second
    prediction = labels.clone()
    prediction[0, 0, 1, 1:4, 1:4] = 0  # 9 GTVp voxels missed
    prediction[1, 0, 5:7, 5:7, 5:7] = 0  # GTVn missed
    prediction[1, 0, 0, 0, 0:2] = 1  # 2 GTVp voxels hallucinated
    metric = SegmentationMetric(["A", "B"], ["CHUM", "HGJ+HMR"],
                                [[("CHUM-001", "CHUM")], [("HGJ-001", "HGJ"), ("HMR-001", "HMR")]],
                                structures=HEAD_AND_NECK)
    strategy = fake_strategy(1, eval_settings=("ct",), mb_input_setting="ct")
    metric.before_eval_exp(strategy)  # trained_through -1: no HD95
    for half in (slice(0, 1), slice(1, 2)):  # two mini-batches of one case: rows follow the dataset's order
        strategy.mb_output, strategy.mb_y = one_hot_logits(prediction[half]), labels[half]
        metric.after_eval_forward(strategy)
    metric.after_eval_exp(strategy)
    rows = {(r[5], r[7]): r for r in metric.case_rows}  # (case_id, structure)
    assert [r[:8] for r in metric.case_rows] == [
        [-1, "base", 1, "B", centre, case, "ct", structure]
        for centre, case in (("HGJ", "HGJ-001"), ("HMR", "HMR-001")) for structure in ("GTVp", "GTVn")]
    assert rows[("HGJ-001", "GTVp")][8:13] == [18, 0, 9, 27, 18]  # MONAI's per-case Dice is float32
    assert rows[("HGJ-001", "GTVp")][13] == pytest.approx(36 / 45)
    assert rows[("HMR-001", "GTVp")][8:13] == [0, 2, 0, 0, 2] and math.isnan(rows[("HMR-001", "GTVp")][13])
    assert rows[("HMR-001", "GTVn")][8:14] == [0, 0, 8, 8, 0, 0.0]
    assert math.isnan(rows[("HGJ-001", "GTVn")][13]) and all(math.isnan(r[14]) for r in metric.case_rows)
    metric.after_training_exp(fake_strategy(1))  # the final evaluation: HD95 per case
    metric.before_eval_exp(strategy)
    strategy.mb_output, strategy.mb_y = one_hot_logits(prediction), labels
    metric.after_eval_forward(strategy)
    metric.after_eval_exp(strategy)
    final = {(r[5], r[7]): r[14] for r in metric.case_rows if r[0] == 1}
    diagonal = (3 * 8**2) ** 0.5
    assert final[("HMR-001", "GTVp")] == final[("HMR-001", "GTVn")] == pytest.approx(diagonal)
    assert math.isnan(final[("HGJ-001", "GTVn")]) and 0 < final[("HGJ-001", "GTVp")] < diagonal


def test_a_one_structure_data_set_gives_rows_of_that_structure_and_aggregated_equal_to_it() -> None:
    labels = torch.zeros(2, 1, 8, 8, 8, dtype=torch.long)
    labels[0, 0, 1:4, 1:4, 1:4] = 1  # 27 lesion voxels, found
    labels[1, 0, 5:7, 5:7, 5:7] = 1  # 8 lesion voxels, missed
    prediction = torch.where(torch.arange(2)[:, None, None, None, None] == 0, labels, 0)
    metric = SegmentationMetric(["A"], ["CHUM"], [[("CHUM-001", "CHUM"), ("CHUM-002", "CHUM")]],
                                structures=("lesion",))
    metric.after_training_exp(fake_strategy(0))  # the final evaluation: HD95 too
    strategy = fake_strategy(0, eval_settings=("ct",), mb_input_setting="ct", mb_output=one_hot_logits(prediction, 2),
                             mb_y=labels)
    metric.before_eval_exp(strategy)
    metric.after_eval_forward(strategy)
    metric.after_eval_exp(strategy)
    diagonal = (3 * 8**2) ** 0.5  # the missed case's HD95 (voxels)
    rows = {r["structure"]: r for r in metric.rows}
    assert list(rows) == ["lesion", "aggregated"]
    for row in rows.values():  # pooled 2 * 27 / (54 + 8); per-case mean of 1 and 0; HD95 median of 0 and the diagonal
        assert (row["dice"], row["dice_case_mean"]) == pytest.approx((27 / 31, 0.5))
        assert row["hd95"] == pytest.approx(diagonal / 2)
    assert [r[5:15] for r in metric.case_rows] == [
        ["CHUM-001", "ct", "lesion", 27, 0, 0, 27, 27, 1.0, 0.0],
        ["CHUM-002", "ct", "lesion", 0, 0, 8, 8, 0, 0.0, pytest.approx(diagonal)]]


def test_three_structures_each_get_rows_in_label_order() -> None:
    labels = torch.zeros(1, 1, 8, 8, 8, dtype=torch.long)
    labels[0, 0, 1:3, 1:3, 1:3] = 1  # 8 voxels each
    labels[0, 0, 4:6, 4:6, 4:6] = 2
    labels[0, 0, 6:8, 6:8, 6:8] = 3
    prediction = torch.where(labels == 2, 0, labels)  # structure 2 missed
    prediction[0, 0, 0, 0, 0:2] = 3  # 2 voxels of structure 3 hallucinated
    metric = SegmentationMetric(["A"], ["CHUM"], [[("CHUM-001", "CHUM")]], structures=("liver", "tumour", "node"))
    strategy = fake_strategy(0, eval_settings=("ct",), mb_input_setting="ct", mb_output=one_hot_logits(prediction, 4),
                             mb_y=labels)
    metric.before_eval_exp(strategy)
    metric.after_eval_forward(strategy)
    metric.after_eval_exp(strategy)
    dice = {r["structure"]: r["dice"] for r in metric.rows}
    # liver found: 1; tumour missed: 0; node 2 * 8 / (16 + 2) = 8/9; aggregated their mean, 17/27
    assert list(dice) == ["liver", "tumour", "node", "aggregated"]
    assert list(dice.values()) == pytest.approx([1.0, 0.0, 8 / 9, 17 / 27])
    assert [r[7:13] for r in metric.case_rows] == [["liver", 8, 0, 0, 8, 8], ["tumour", 0, 0, 8, 8, 0],
                                                   ["node", 8, 2, 0, 8, 10]]


def test_per_case_rows_name_the_tracked_cases_of_an_experience_from_the_tracked_stream() -> None:
    labels = torch.zeros(1, 1, 4, 4, 4, dtype=torch.long)
    metric = SegmentationMetric(["A"], ["CHUM"], [[("CHUM-001", "CHUM"), ("CHUM-002", "CHUM")]],
                                tracked_cases=[[("CHUM-002", "CHUM")]], structures=HEAD_AND_NECK)
    strategy = fake_strategy(0, stream="tracked", eval_settings=("ct",), mb_input_setting="ct",
                             mb_output=one_hot_logits(labels), mb_y=labels)
    metric.before_eval_exp(strategy)
    metric.after_eval_forward(strategy)
    metric.after_eval_exp(strategy)
    assert {row[5] for row in metric.case_rows} == {"CHUM-002"} and metric.rows[0]["n_cases"] == 1
    with pytest.raises(RuntimeError, match="stream 'other'"):
        metric.before_eval_exp(fake_strategy(0, stream="other"))


def test_per_case_rows_refuse_a_case_count_other_than_the_experience_has() -> None:
    labels = torch.zeros(2, 1, 4, 4, 4, dtype=torch.long)
    metric = SegmentationMetric(["A"], ["CHUM"], [[("CHUM-001", "CHUM")]], structures=HEAD_AND_NECK)
    strategy = fake_strategy(0, eval_settings=("ct",), mb_input_setting="ct", mb_output=one_hot_logits(labels),
                             mb_y=labels)
    metric.before_eval_exp(strategy)
    metric.after_eval_forward(strategy)
    with pytest.raises(RuntimeError, match="2 cases evaluated under 'ct', 1 expected"):
        metric.after_eval_exp(strategy)


def test_data_of_more_tasks_than_a_mini_batch_holds_is_visited_once_per_epoch(tiny_cohort) -> None:
    """Cumulative and joint train on several experiences' data at once; Avalanche's task-balanced loader would need
    a mini-batch of at least one case per task (here 3 tasks, batches of 2)."""
    datasets = [avalanche_dataset(tiny_cohort[i * 5:i * 5 + 2], ("ct", "pet"), task) for i, task in enumerate((1, 2, 3))]
    union = datasets[0].concat(datasets[1]).concat(datasets[2])
    model = MaskRecorder()
    strategy = make_template(model)
    strategy.experience = SimpleNamespace(task_labels=[1, 2, 3])  # Avalanche balances tasks when it sees labels
    strategy.adapted_dataset = union
    strategy.make_train_dataloader()
    seen = [t for batch in strategy.dataloader for t in batch[-1].tolist()]
    assert sorted(seen) == [1, 1, 2, 2, 3, 3]
    strategy.adapted_dataset = datasets[0]
    strategy.make_train_dataloader()  # one task: Avalanche's own loader
    assert type(strategy.dataloader).__name__ == "TaskBalancedDataLoader"
