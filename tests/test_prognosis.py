"""Prognosis: C-index, Cox loss, EHR encoding, prognosis experiences through the template, references, summary."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TEST_SEED

from pemma_cl.data.ehr import ehr_vector, fit_clinical_fields
from pemma_cl.data.hecktor.layout import HEAD_AND_NECK_CLINICAL as EHR_FIELDS
from pemma_cl.data.sources import SYNTHETIC_DESCRIPTION
from pemma_cl.stats.cindex import bootstrap_indices, cindex_with_interval, harrell_c
from pemma_cl.training.template import cox_loss


def test_harrell_c_reads_a_higher_risk_as_an_earlier_relapse() -> None:
    time, event = [1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1]
    assert harrell_c(time, event, [4.0, 3.0, 2.0, 1.0]) == 1.0  # highest risk relapses first
    assert harrell_c(time, event, [1.0, 2.0, 3.0, 4.0]) == 0.0
    assert harrell_c(time, event, [5.0, 5.0, 5.0, 5.0]) == 0.5
    # By hand, patient 2 censored at day 2: the comparable pairs are (1,2) (1,3) (1,4) (3,4), the earlier time being
    # a relapse. Risks 3, 1, 2, 0 order all four correctly; swapping the last two makes (3,4) discordant: 3 of 4.
    censored = [1, 0, 1, 1]
    assert harrell_c(time, censored, [3.0, 1.0, 2.0, 0.0]) == 1.0
    assert harrell_c(time, censored, [3.0, 1.0, 0.0, 2.0]) == 0.75


def test_bootstrap_interval_is_paired_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(0)
    risk = rng.normal(size=200)
    time = np.exp(-risk + rng.normal(scale=0.5, size=200))
    event = (rng.random(200) < 0.6).astype(int)
    result = cindex_with_interval(time, event, risk, seed=3)
    assert result["low"] < result["cindex"] < result["high"] and result["cindex"] > 0.7
    assert result["n_cases"] == 200 and result["n_events"] == event.sum()
    assert np.array_equal(bootstrap_indices(200, 3), bootstrap_indices(200, 3))  # every model gets the same draws
    assert cindex_with_interval(time, event, risk, seed=3, interval=False)["low"] is None


def test_cox_loss_decreases_and_learns_a_known_ordering() -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(128, 1, generator=generator)
    time = torch.exp(-2.0 * x[:, 0] + 0.3 * torch.randn(128, generator=generator))  # larger x: earlier relapse
    survival = torch.stack([time, (torch.rand(128, generator=generator) < 0.7).float()], dim=1)
    model = torch.nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(-0.5)  # starts with the ordering reversed
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(100):
        loss = cox_loss(model(x)[:, 0], survival)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.3
    assert model.weight.item() > 0
    risk = model(x)[:, 0].detach().numpy()
    assert harrell_c(time.numpy(), survival[:, 1].numpy(), risk) > 0.85


def test_cox_loss_without_a_relapse_is_zero_and_stays_in_the_graph() -> None:
    risk = torch.tensor([0.3, -0.2, 1.0], requires_grad=True)
    loss = cox_loss(risk, torch.tensor([[10.0, 0.0], [20.0, 0.0], [30.0, 0.0]]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(risk.grad, torch.zeros(3))


def test_ehr_vector_carries_missing_fields_as_missing() -> None:
    record = {"age": 70, "gender": 1, "weight": None, "hpv_status": 0, "surgery": 0, "chemotherapy": 1,
              "tobacco": 1, "alcohol": None, "performance_status": 2}
    vector = ehr_vector(record, EHR_FIELDS)
    values, missing = vector[:len(EHR_FIELDS)], vector[len(EHR_FIELDS):]
    index = {name: i for i, name in enumerate(EHR_FIELDS)}
    assert vector.shape == (2 * len(EHR_FIELDS),) and vector.dtype == np.float32
    assert missing[index["weight"]] == 1 and values[index["weight"]] == 0  # not a made-up weight
    assert missing[index["hpv_status"]] == 0 and values[index["hpv_status"]] == 0  # a recorded HPV- is not missing
    assert values[index["age"]] == pytest.approx(1.0)  # (70 - 60) / 10
    assert missing.sum() == 2
    absent = ehr_vector(record, EHR_FIELDS, available=False)  # an experience without EHR: every field missing
    assert absent[:len(EHR_FIELDS)].sum() == 0 and absent[len(EHR_FIELDS):].sum() == len(EHR_FIELDS)
    assert ehr_vector({}, EHR_FIELDS)[len(EHR_FIELDS):].sum() == len(EHR_FIELDS)


def test_a_cohorts_own_clinical_columns_are_centred_and_scaled_on_the_cases_given() -> None:
    cases = [{"age": 50, "sex": 0}, {"age": 60, "sex": 1}, {"age": 70, "sex": None}, {"age": 80, "sex": 0},
             {"age": None, "sex": 0}]
    fields = fit_clinical_fields(["age", "sex", "stage"], cases)
    assert fields["age"].centre == 65 and fields["age"].scale == pytest.approx(15 / 1.349)  # median; IQR 72.5 - 57.5
    assert fields["sex"].centre == 0 and fields["sex"].scale == pytest.approx(0.25 / 1.349)  # quartiles 0, 0.25
    assert (fields["stage"].centre, fields["stage"].scale) == (0.0, 1.0)  # never recorded: left as it is
    vector = ehr_vector({"age": 65 + 15 / 1.349, "sex": None}, fields)
    assert vector.tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0, 1.0, 1.0])  # age +1 scale; sex and stage missing


@pytest.fixture(scope="module")
def prognosis_cohort():
    """64 cases of 32^3 over three centres (enough relapses for a micro prognosis experience)."""
    from pemma_cl.data.synthetic.cohort import generate_cohort

    return generate_cohort(seed=TEST_SEED, shape=(32, 32, 32), case_scale=0.5, centres=("HMR", "HGJ", "CHUV"))


@pytest.fixture(scope="module")
def prognosis_spec(micro_stream_spec):
    """Pre-train on HMR (CT); segmentation on HGJ (CT+PET, 10 cases); prognosis on every centre from CT, then
    CT+PET+EHR."""
    from pemma_cl.streams.spec import ExperienceSpec

    centres = ("HMR", "HGJ", "CHUV")
    return replace(micro_stream_spec, name="micro-prognosis", experiences=(
        ExperienceSpec("HGJ", ("HGJ",), ("ct", "pet"), 1, cases_per_centre=10),
        ExperienceSpec("RFS-CT", centres, ("ct",), 2, kind="prognosis"),
        ExperienceSpec("RFS-EHR", centres, ("ct", "pet", "ehr"), 3, kind="prognosis"),
    ))


@pytest.fixture(scope="module")
def prognosis_stream(prognosis_cohort, prognosis_spec):
    from pemma_cl.data.splits import split_cases
    from pemma_cl.streams.build import build_stream

    cases = list(prognosis_cohort)
    cases[0] = replace(cases[0], rfs_days=None, relapse=None)  # a patient without an endpoint
    train, test = split_cases(cases, TEST_SEED).for_evaluation_on("test")
    return build_stream(prognosis_spec, train, test, clinical_fields=EHR_FIELDS)


def test_a_prognosis_stream_leaves_out_cases_without_endpoint_and_carries_ehr_only_when_declared(
        prognosis_stream, prognosis_cohort) -> None:
    stream = prognosis_stream
    assert stream.kinds == ["segmentation", "prognosis", "prognosis"]
    assert stream.left_out == {prognosis_cohort[0].case_id: "no recurrence-free survival endpoint (left out of "
                                                              "prognosis experiences)"}
    segmentation, from_ct, with_ehr = (e.dataset for e in stream.benchmark.train_stream)
    assert len(segmentation) == 8  # cases_per_centre 10: 8 trained on, 2 evaluated
    assert len(from_ct) + len(stream.benchmark.test_stream[1].dataset) == len(prognosis_cohort) - 1
    x, _, mask, survival, ehr = from_ct[0][:5]
    assert mask.tolist() == [True, False] and x[1].abs().max() == 0
    assert ehr[len(EHR_FIELDS):].sum() == len(EHR_FIELDS)  # no EHR in a CT-only experience: all missing
    _, _, mask, survival, ehr = with_ehr[0][:5]
    assert mask.tolist() == [True, True] and ehr[len(EHR_FIELDS):].sum() < len(EHR_FIELDS)
    assert survival[0] > 0 and survival[1] in (0.0, 1.0)
    train, scored = stream.prognosis_cases
    assert all(c.has_endpoint for c in [*train, *scored]) and len(scored) == len(stream.benchmark.test_stream[2].dataset)


def test_the_tracked_stream_keeps_the_first_cases_of_each_centre_of_segmentation_steps_only(prognosis_cohort,
                                                                                             prognosis_spec) -> None:
    from pemma_cl.data.splits import split_cases
    from pemma_cl.streams.build import build_stream

    train, test = split_cases(list(prognosis_cohort), TEST_SEED).for_evaluation_on("test")
    every_case = (replace(prognosis_spec.experiences[0], cases_per_centre=None), *prognosis_spec.experiences[1:])
    spec = replace(prognosis_spec, experiences=every_case)
    stream = build_stream(replace(spec, tracked_cases_per_centre=2), train, test)
    tracked, full = stream.tracked_cases, stream.eval_cases
    by_centre: dict[str, list[str]] = {}
    for case_id, centre in full[0]:
        by_centre.setdefault(centre, []).append(case_id)
    assert sorted(tracked[0]) == sorted((c, centre) for centre, ids in by_centre.items() for c in sorted(ids)[:2])
    assert tracked[1:] == full[1:] and len(tracked[0]) < len(full[0])  # prognosis steps keep every case
    assert [len(e.dataset) for e in stream.benchmark.tracked_stream] == [len(cases) for cases in tracked]
    assert build_stream(replace(spec, tracked_cases_per_centre=None), train, test).tracked_cases == full


def test_a_survival_head_does_not_move_the_global_generator(micro_preset, shared_bases) -> None:
    from pemma_cl.models.pemma import PemmaNetwork

    base = shared_bases.get("ct")
    torch.manual_seed(1)
    plain = PemmaNetwork(base, micro_preset)
    after_plain = torch.rand(3)
    torch.manual_seed(1)
    with_head = PemmaNetwork(base, micro_preset, ehr_size=len(EHR_FIELDS) * 2)
    assert torch.equal(torch.rand(3), after_plain)
    assert all(torch.equal(p, with_head.state_dict()[k]) for k, p in plain.state_dict().items())
    assert hasattr(with_head, "survival_head") and not hasattr(plain, "survival_head")


def _bases_for(stream, micro_preset, tmp_path_factory):
    from pemma_cl.training.bases import SharedBases

    return SharedBases(micro_preset, stream.pretrain_cases, TEST_SEED, torch.device("cpu"),
                       cache_dir=tmp_path_factory.mktemp("prognosis-bases"), data_key="prognosis-cohort",
                       num_classes=SYNTHETIC_DESCRIPTION.num_classes)


@pytest.fixture(scope="module")
def prognosis_settings(prognosis_stream, prognosis_spec, micro_preset, tmp_path_factory) -> dict:
    return {"preset": micro_preset, "device": torch.device("cpu"), "seed": TEST_SEED, "epochs": 1,
            "task_labels": [e.task for e in prognosis_spec.experiences],
            "bases": _bases_for(prognosis_stream, micro_preset, tmp_path_factory),
            "description": SYNTHETIC_DESCRIPTION}


def test_pemma_learns_prognosis_through_adapters_and_head_only(prognosis_stream, prognosis_settings) -> None:
    """Per-task PEMMA through segmentation, then two prognosis tasks: C-index rows for the prognosis experiences
    only, Dice rows for the segmentation one only, and every parameter outside the active adapter set unchanged."""
    from conftest import RecorderPlugin

    from pemma_cl.run.unit import run_strategy
    from pemma_cl.strategy_api.registry import load_registry

    recorder = RecorderPlugin()
    entry = load_registry().get("pemma-lora")
    original_build = entry.build

    def build(ctx):
        strategy = original_build(ctx)
        strategy.plugins.append(recorder)
        return strategy

    result = run_strategy(replace(entry, build=build), prognosis_stream, prognosis_settings)
    assert {row["eval_experience"] for row in result.rows} == {0}
    # Every state the metrics need: the state after experience 0 does not score experience 2 (two steps ahead).
    assert {(r["trained_through"], r["eval_experience"]) for r in result.prognosis} == \
        {(i, j) for i in (-1, 0, 1, 2) for j in (1, 2)} - {(0, 2)}
    own = [r for r in result.prognosis if r["trained_through"] == r["eval_experience"]]
    assert all(0.0 <= r["cindex"] <= 1.0 and r["low"] is not None for r in own)
    assert {r["input"] for r in result.prognosis} == {"ct", "ct+pet+ehr"}
    assert set(result.predictions) == {"RFS-CT", "RFS-EHR"}
    segmentation, first_prognosis, second_prognosis = recorder.after_exp
    for name, value in segmentation.items():
        if "task1" in name or ("lora_" not in name and "modules_to_save" not in name):
            assert torch.equal(value, first_prognosis[name]), name  # frozen base and the segmentation adapter
            assert torch.equal(value, second_prognosis[name]), name
    moved = [n for n, v in first_prognosis.items() if "task2" in n and not torch.equal(v, second_prognosis.get(n, v))]
    assert not moved  # the first prognosis task's adapter is not touched by the second
    head = [n for n in second_prognosis if "task3" in n and "survival_head" in n]
    assert head and any(not torch.equal(second_prognosis[n], first_prognosis[n.replace("task3", "task2")])
                        for n in head)  # the last task trained its own copy of the head


def test_a_segmentation_only_strategy_is_refused_on_a_prognosis_stream() -> None:
    from pemma_cl.core.errors import UserError
    from pemma_cl.strategy_api.registry import load_registry

    registry = load_registry()
    kinds = ("segmentation", "prognosis")
    with pytest.raises(UserError, match=r"strategy 'ewc' cannot train prognosis experiences"):
        registry.select(["ewc"], kinds)
    chosen = registry.select(["all"], kinds)
    assert "pemma-lora" in chosen and "full-finetune" in chosen and "ewc" not in chosen
    assert "ewc" in registry.unsupported(kinds) and "pemma-lora" not in registry.unsupported(kinds)


def test_mask_features_by_hand(prognosis_cohort) -> None:
    from pemma_cl.evaluation.prognosis_references import mask_features

    case = replace(prognosis_cohort[1], spacing=(2.0, 2.0, 2.0), pet=np.zeros((32, 32, 32), np.float32))
    mask = np.zeros((32, 32, 32), bool)
    mask[0, 0, :10] = True  # 10 voxels of 8 mm^3 = 0.08 ml
    case.pet[0, 0, :10] = np.arange(10)  # SUV 0..9
    features = mask_features(case, mask)
    assert features["log_volume_ml"] == pytest.approx(np.log1p(0.08))
    assert features["suv_max"] == 9.0 and features["suv_mean"] == pytest.approx(4.5)
    assert features["log_tlg"] == pytest.approx(np.log1p(4.5 * 0.08))
    assert mask_features(case, np.zeros_like(mask)) == {"log_volume_ml": 0.0, "suv_max": 0.0, "suv_mean": 0.0,
                                                        "log_tlg": 0.0}


def test_references_and_ceilings_on_the_synthetic_cohort() -> None:
    from pemma_cl.data.splits import split_cases
    from pemma_cl.data.synthetic.cohort import generate_cohort
    from pemma_cl.evaluation.prognosis_references import prognosis_references

    cases = generate_cohort(seed=TEST_SEED, shape=(16, 16, 16), case_scale=1.0)  # 522 cases
    train, test = split_cases(cases, TEST_SEED).for_evaluation_on("test")
    references = prognosis_references(train, test, None, TEST_SEED, EHR_FIELDS)
    assert "CoxPH: clinical (EHR)" in references and not any("mask" in name for name in references)
    truth = references["ceiling: true latent risk"]["cindex"]
    assert truth > 0.7  # the generating risk orders relapses far better than chance
    assert references["ceiling: true tumour volume (CT)"]["cindex"] < truth
    assert 0.5 < references["CoxPH: clinical (EHR)"]["cindex"] < truth
    assert references["CoxPH: clinical (EHR)"]["features"]  # fitted on the EHR columns that vary


def test_the_ehr_reference_reads_the_datas_own_clinical_fields_and_none_without() -> None:
    from pemma_cl.data.splits import split_cases
    from pemma_cl.data.synthetic.cohort import generate_cohort
    from pemma_cl.evaluation.prognosis_references import prognosis_references

    cases = generate_cohort(seed=TEST_SEED, shape=(16, 16, 16), case_scale=0.5)
    for case in cases:
        case.clinical = {"karnofsky": 80.0 - 10 * case.relapse}  # a case table's own column
        case.truth = {}
    train, test = split_cases(cases, TEST_SEED).for_evaluation_on("test")
    masks = lambda chosen: [c.label > 0 for c in chosen]  # noqa: E731 (the true masks stand in for the base's)
    mask_only = "CoxPH: CT-base mask features (volume, SUVmax, SUVmean, TLG)"
    references = prognosis_references(train, test, masks, TEST_SEED, {})  # no clinical field declared
    assert list(references) == [mask_only]
    assert not any("karnofsky" in feature or "missing" in feature for feature in references[mask_only]["features"])
    fields = fit_clinical_fields(["karnofsky"], [c.clinical for c in train])
    declared = prognosis_references(train, test, masks, TEST_SEED, fields)
    assert list(declared) == ["CoxPH: clinical (EHR)", f"{mask_only} + EHR"]
    assert declared["CoxPH: clinical (EHR)"]["features"] == ["karnofsky"]  # never missing: the indicator is constant


def test_prognosis_summary_reads_own_final_and_forgetting_from_rows() -> None:
    from pemma_cl.report.prognosis import summarize_prognosis

    def row(trained, exp, cindex, strategy="s"):
        return {"strategy": strategy, "trained_through": trained, "eval_experience": exp,
                "eval_experience_name": f"E{exp}", "input": "ct" if exp == 1 else "ct+pet", "cindex": cindex,
                "low": cindex - 0.05, "high": cindex + 0.05}

    rows = [row(0, 1, 0.5), row(1, 1, 0.62), row(2, 1, 0.58), row(1, 2, 0.55), row(2, 2, 0.70)]
    block = summarize_prognosis({0: rows}, {0: {"CoxPH: clinical (EHR)": {"cindex": 0.6, "low": 0.55, "high": 0.65}}})
    task1, task2 = block["strategies"]["s"]["E1"], block["strategies"]["s"]["E2"]
    assert task1["own"] == {"mean": 0.62, "low": pytest.approx(0.57), "high": pytest.approx(0.67), "n": 1}
    assert task1["final"]["mean"] == 0.58 and task1["forgetting"]["mean"] == pytest.approx(0.04)
    assert task2["own"]["mean"] == 0.70 and task2["forgetting"]["mean"] == pytest.approx(0.0)
    assert block["tasks"] == {"E1": "ct", "E2": "ct+pet"}
    assert block["references"]["CoxPH: clinical (EHR)"]["mean"] == 0.6
    two_seeds = summarize_prognosis({0: rows, 1: [row(1, 1, 0.66), row(2, 1, 0.60), row(2, 2, 0.72)]}, {})
    assert two_seeds["strategies"]["s"]["E1"]["own"]["mean"] == pytest.approx(0.64)
    assert two_seeds["strategies"]["s"]["E1"]["own"]["n"] == 2  # a t-interval over seeds
    assert summarize_prognosis({0: []}, {}) is None


@pytest.mark.parametrize(("ct", "richer", "reading"), [
    (0.60, 0.70, "meets the threshold"),      # +17% >= +10%, and the difference 0.10 exceeds the half-width 0.05
    (0.60, 0.62, "straddles the threshold"),  # +3%: short of the wanted 0.06 by 0.04, within the half-width
    (0.60, 0.55, "misses the threshold"),     # a drop: short by 0.11, more than the half-width
])
def test_cindex_gain_claim_readings(ct: float, richer: float, reading: str) -> None:
    """The C-index claims have no primary contrast: their rows are secondary, read against the paper's gain."""
    from pemma_cl.report.claim_rows import SECONDARY
    from pemma_cl.report.claims import _cindex_gain, stored_run

    def estimate(value):
        return {"mean": value, "low": value - 0.05, "high": value + 0.05, "n": 1}

    summary = {"strategies": {}, "prognosis": {"tasks": {"A": "ct", "B": "ct+pet"}, "strategies": {
        "pemma-lora": {"A": {"own": estimate(ct)}, "B": {"own": estimate(richer)}}}}}
    config = {"stream": {"name": "m", "experiences": [{"modalities": ["ct"], "kind": "prognosis"}]}}
    [row] = _cindex_gain([stored_run(Path("m"), config, summary)], "ct+pet", 0.10)
    assert row.verdict == SECONDARY and row.reading == reading and row.strategy == "pemma-lora"
