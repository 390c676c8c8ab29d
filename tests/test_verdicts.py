"""Primary contrasts, their verdicts (one seed, few seeds, Holm) and ``pemma-bench plan``, on hand-made run folders
with per-case rows (every count chosen so that each Dice is known by hand)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from pemma_cl.cli.app import app
from pemma_cl.core.errors import UserError
from pemma_cl.stats.case_bootstrap import case_units, resample_cases, stratified_weights
from pemma_cl.evaluation.per_case import CASE_COLUMNS
from pemma_cl.report.claim_rows import DOES_NOT_APPLY, HELD, NOT_TESTED, SECONDARY
from pemma_cl.report.claims import check_claims, load_run, render_claims
from pemma_cl.report.contrasts import (
    METRICS,
    PrimaryContrast,
    case_value,
    contrast_bootstrap,
    paired_case_intervals,
    load_primary_contrasts,
    seed_values,
    weighted_final_dice,
)
from pemma_cl.report.ledger import load_ledger
from pemma_cl.report.plan import plan_run, render_plan, seeds_to_decide, seeds_to_decide_range
from pemma_cl.report.seeds import aggregate, render_markdown
from pemma_cl.report.plan import MIN_SEEDS
from pemma_cl.report.verdicts import ONE_SEED, primary_rows
from pemma_cl.streams.spec import list_streams

SHARES = {"lora": 7.2, "dora": 7.3}
CENTRES = ("C0", "C1")
DICE = PrimaryContrast("dice", "Dice comparable to early fusion with ~8% trainable parameters", "centers",
                       "pemma-lora", "early-fusion", "final_dice", "ctpet", "aggregated", 0.03, "non_inferior")
FORGET = PrimaryContrast("forget", "Continual learning of new centres with CT+PET, without forgetting", "centers",
                         "pemma-lora-shared", None, "forgetting", "ctpet", "aggregated", 0.03, "below")


def case_rows(seed: int, strategy: str, dice: dict[tuple[int, int], list[float]],
              structures: tuple[str, ...] = ("GTVp", "GTVn")) -> list[dict]:
    """Rows of one strategy: ``dice[(step, experience)]`` lists each case's Dice (the same for every structure, tp =
    100 Dice, fp = fn = 100 - tp: a case's Dice is tp / 100, and the aggregated Dice of equal-sized cases their
    mean)."""
    rows = []
    for (step, exp), per_case in dice.items():
        for k, value in enumerate(per_case):
            tp = round(100 * value)
            for structure in structures:
                rows.append({"seed": seed, "strategy": strategy, "trained_through": step,
                             "trained_through_name": f"E{step}",
                             "eval_experience": exp, "eval_experience_name": f"E{exp}", "centre": CENTRES[exp],
                             "case_id": f"{CENTRES[exp]}-{k}", "input": "ctpet", "structure": structure, "tp": tp,
                             "fp": 100 - tp, "fn": 100 - tp, "ref_voxels": 100, "pred_voxels": 100, "dice": tp / 100,
                             "hd95": np.nan})
    return rows


def final(e0: list[float], e1: list[float], before: float | None = None) -> dict[tuple[int, int], list[float]]:
    """Scores after the last of two steps (and, with ``before``, every case of experience 0 after step 0)."""
    out = {(1, 0): e0, (1, 1): e1}
    if before is not None:
        out[(0, 0)] = [before] * len(e0)
    return out


def write_run(folder: Path, seeds: dict[int, list[dict]], with_cases: bool = True,
              structures: tuple[str, ...] | None = None) -> Path:
    """A run of stream ``centers`` (two CT+PET experiences): per seed its case rows, summary and cases file; the
    summary records ``structures`` (None: a run stored before summaries recorded them)."""
    folder.mkdir(parents=True)
    experiences = [{"name": f"E{i}", "modalities": ["ct", "pet"]} for i in range(2)]
    (folder / "config.json").write_text(json.dumps({"stream": {"name": "centers", "experiences": experiences}}))
    per_seed = {}
    for seed, rows in seeds.items():
        cases = pd.DataFrame(rows, columns=CASE_COLUMNS)
        last = cases[cases["trained_through"] == 1]
        per_seed[seed] = {name: {"evaluation": "task-agnostic", "costs": {}, "inputs": {"ctpet": {
            "final_dice": group.groupby("eval_experience")["dice"].mean().mean(), "forgetting": 0.0}}}
            for name, group in last.groupby("strategy", sort=False)}
        seed_dir = folder / "seeds" / f"seed{seed}"
        seed_dir.mkdir(parents=True)
        (seed_dir / "summary.json").write_text(json.dumps(per_seed[seed]))
        if with_cases:
            cases.to_csv(seed_dir / "cases.csv.gz", index=False)
    (folder / "summary.json").write_text(json.dumps(aggregate(per_seed, "early-fusion", structures)))
    return folder


def seed_rows(seed: int, gap: float, forgetting: float = 0.0, structures: tuple[str, ...] = ("GTVp", "GTVn")
              ) -> list[dict]:
    """Early fusion 0.60 on every case; pemma-lora ``gap`` above it; pemma-lora-shared forgets ``forgetting``."""
    return [*case_rows(seed, "early-fusion", final([0.6] * 4, [0.6] * 2), structures),
            *case_rows(seed, "pemma-lora", final([0.6 + gap] * 4, [0.6 + gap] * 2), structures),
            *case_rows(seed, "pemma-lora-shared", final([0.5] * 4, [0.5] * 2, before=0.5 + forgetting), structures)]


def test_the_declared_file_has_the_claims_primary_contrasts() -> None:
    contrasts = {c.name: c for c in load_primary_contrasts()}
    dice, forget = contrasts["dice-vs-early-fusion"], contrasts["no-forgetting-centres"]
    assert (dice.stream, dice.strategy, dice.reference, dice.metric, dice.input, dice.margin, dice.direction) == (
        "centers", "pemma-lora", "early-fusion", "final_dice", "ctpet", 0.03, "non_inferior")
    assert (forget.stream, forget.strategy, forget.metric, forget.input, forget.margin, forget.direction) == (
        "centers", "pemma-lora-shared", "forgetting_drop", "ct", 0.03, "below")
    assert dice.holds(-0.029) and not dice.holds(-0.031) and forget.holds(0.029) and not forget.holds(0.031)
    assert "primary" not in {s.name for s in list_streams()}  # the subfolder is not a stream


@pytest.mark.parametrize("text, message", [
    ("- {name: a}", "contrast 1: missing field(s) claim"),
    ("- {name: a, claim: c, stream: s, strategy: x, reference: null, metric: dice, input: ct, margin: 0.03, "
     "direction: below}", f"field 'metric': expected one of [{', '.join(METRICS)}], got 'dice'"),
    ("- {name: a, claim: c, stream: s, strategy: x, reference: null, metric: final_dice, input: ct, margin: 0.03, "
     "direction: non_inferior}", "direction non_inferior needs a reference"),
    ("{}", "expected a non-empty list of contrasts"),
    ("- {name: a, claim: 'Continual learning of new centres with CT+PET, without forgetting', stream: centers, "
     "strategy: x, reference: null, metric: forgetting, input: ct, margin: 0.03, direction: below}",
     "contrast 1 (a): field 'input': its claim 'Continual learning of new centres with CT+PET, without forgetting' "
     "names input ctpet, got 'ct'"),
])
def test_a_bad_contrasts_file_is_one_line_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "primary.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=str(path)) as caught:
        load_primary_contrasts(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_each_suite_contrast_scores_its_claims_input() -> None:
    from pemma_cl.report.claim_rows import CLAIM_INPUTS

    declared = load_primary_contrasts()
    assert all(c.input in CLAIM_INPUTS[c.claim] for c in declared)
    by_name = {c.name: c for c in declared}
    assert by_name["no-forgetting-centres"].claim == "Earlier centres still served from CT alone"
    assert by_name["no-forgetting-centres"].input == "ct" and by_name["no-forgetting-centres-ctpet"].input == "ctpet"


def test_a_contrast_file_is_checked_against_the_structures_of_the_cohort_it_is_written_for(tmp_path: Path) -> None:
    path = tmp_path / "primary.yaml"
    path.write_text("- {name: a, claim: c, stream: s, strategy: x, reference: null, metric: final_dice, input: ct, "
                    "structure: lesion, margin: 0.03, direction: below}")
    with pytest.raises(UserError, match=r"field 'structure': expected one of \[aggregated, GTVp, GTVn\], got 'lesion'"):
        load_primary_contrasts(path)  # the suite's cohort: head and neck
    [contrast] = load_primary_contrasts(path, structures=("lesion",))  # a file written for a cohort with lesions
    assert contrast.structure == "lesion"


def test_a_contrast_naming_a_structure_the_runs_data_lack_does_not_apply(tmp_path: Path) -> None:
    gaps = [0.01, 0.02, 0.00, 0.03, 0.01]
    lesion = {s: seed_rows(s, gap, structures=("lesion",)) for s, gap in enumerate(gaps)}
    run = load_run(write_run(tmp_path / "lesion", lesion, structures=("lesion",)))
    assert run.structures == ("lesion",)
    gtvn = replace(DICE, name="dice-gtvn", structure="GTVn")
    aggregated, nodes = primary_rows([run], [DICE, gtvn])
    assert aggregated.verdict == "5 seeds: indicative"  # aggregated applies to every data set: the lesion's Dice
    assert "mean +0.014 over 5 seeds" in aggregated.measured
    assert nodes.verdict == DOES_NOT_APPLY and nodes.measured == "–"
    assert "the run's data have no structure GTVn (they have lesion)" in nodes.why
    # beside it, a run of the head-and-neck cohort is the one the GTVn contrast is read from
    head_and_neck = load_run(write_run(tmp_path / "hn", {s: seed_rows(s, g) for s, g in enumerate(gaps)},
                                       structures=("GTVp", "GTVn")))
    assert "over 5 seeds" in primary_rows([run, head_and_neck], [gtvn])[0].measured


def test_seed_values_come_from_each_seeds_cases(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {0: seed_rows(0, 0.01, 0.2), 1: seed_rows(1, -0.05, 0.0)})
    assert seed_values(run, DICE) == pytest.approx({0: 0.01, 1: -0.05})
    # every case of experience 0 fell from 0.7 to 0.5: cross-fitted forgetting 0.2 on it, and there is one such
    assert seed_values(run, FORGET) == pytest.approx({0: 0.2, 1: 0.0})


def test_one_seed_gives_a_paired_case_level_interval_and_no_verdict(tmp_path: Path) -> None:
    # pemma-lora is early fusion + 0.05 on every case: the paired difference does not move with the cases drawn;
    # pemma-lora-shared's cases differ, so its value does.
    rows = [*case_rows(0, "early-fusion", final([0.2, 0.9, 0.4, 0.7], [0.3, 0.8])),
            *case_rows(0, "pemma-lora", final([0.25, 0.95, 0.45, 0.75], [0.35, 0.85]))]
    run = load_run(write_run(tmp_path / "run", {0: rows}))
    [dice] = primary_rows([run], [DICE])
    assert dice.verdict == ONE_SEED and "+0.050; 95% case-level interval [+0.050, +0.050]" in dice.measured
    assert "case sampling only" in dice.measured
    unpaired = contrast_bootstrap(pd.DataFrame(rows, columns=CASE_COLUMNS), replace(DICE, reference=None))
    # pemma-lora alone: (0.25 + 0.95 + 0.45 + 0.75) / 4 = 0.6 and (0.35 + 0.85) / 2 = 0.6; its cases spread widely
    assert unpaired.value == pytest.approx(0.6) and unpaired.se > 0.05
    table = render_claims(check_claims([run], SHARES))
    assert "held" not in table.replace("not tested here", "")


def test_a_one_seed_paired_table_shows_case_level_intervals_of_every_strategy() -> None:
    # pemma-lora is early fusion + 0.05 on every case (a zero-width interval that excludes 0); pemma-dora equals early
    # fusion on average but not case by case (an interval around 0).
    rows = pd.DataFrame([*case_rows(0, "early-fusion", final([0.2, 0.9, 0.4, 0.7], [0.3, 0.8])),
                         *case_rows(0, "pemma-lora", final([0.25, 0.95, 0.45, 0.75], [0.35, 0.85])),
                         *case_rows(0, "pemma-dora", final([0.9, 0.2, 0.7, 0.4], [0.8, 0.3]))], columns=CASE_COLUMNS)
    found = paired_case_intervals(rows, ["pemma-lora", "pemma-dora"], "early-fusion")
    lora, dora = found["pemma-lora"]["ctpet"]["final_dice"], found["pemma-dora"]["ctpet"]["final_dice"]
    assert lora["mean"] == pytest.approx(0.05) and lora["high"] - lora["low"] == pytest.approx(0, abs=1e-12)
    assert dora["mean"] == pytest.approx(0.0, abs=1e-12) and dora["low"] < -0.05 and dora["high"] > 0.05
    assert set(found["pemma-lora"]) == {"ctpet"}  # the rows hold CT+PET only
    summary = {"seeds": [0], "reference": "early-fusion", "interval": "", "strategies": {},
               "paired": {"pemma-lora": {}, "pemma-dora": {}}, "paired_case_level": found}
    text = render_markdown([("run", summary)])
    assert "one seed: Dice ± the 95% case-level bootstrap interval" in text
    assert "| pemma-lora | – | – | +0.050 ± 0.000 * | – | – |" in text
    [dora_row] = [line for line in text.splitlines() if line.startswith("| pemma-dora |")]
    assert dora_row.startswith("| pemma-dora | – | – | +0.000 ± ") and "*" not in dora_row


def test_a_fixed_seed_run_never_decides_whatever_its_seeds(tmp_path: Path) -> None:
    """Only a --decide run, a trial of the alpha ledger, gives held / not held: 40 seeds far from both margins stay
    indicative, with their mean and interval over seeds."""
    gaps = [0.01, 0.02, 0.00, 0.03, 0.01] * 8  # mean +0.014, far above -0.03
    seeds = {s: seed_rows(s, gap, forgetting=0.10 + gap) for s, gap in enumerate(gaps)}
    dice, forget = primary_rows([load_run(write_run(tmp_path / "many", seeds))], [DICE, FORGET])
    assert (dice.verdict, forget.verdict) == ("40 seeds: indicative",) * 2
    assert "mean +0.014 over 40 seeds; 95% interval over seeds [+0.011, +0.017]" in dice.measured
    assert "decided only by a --decide run, within its trial's level in the alpha ledger" in dice.why


def test_runs_without_per_case_rows_are_still_read(tmp_path: Path) -> None:
    run = load_run(write_run(tmp_path / "old", {0: seed_rows(0, 0.01), 1: seed_rows(1, 0.03),
                                                2: seed_rows(2, 0.02)}, with_cases=False))
    rows = check_claims([run], SHARES)
    dice = next(r for r in rows if r.contrast == "dice-vs-early-fusion")
    forget = next(r for r in rows if r.contrast == "no-forgetting-centres")
    assert dice.verdict == "3 seeds: indicative" and "mean +0.020 over 3 seeds" in dice.measured
    assert forget.verdict == NOT_TESTED and "no per-case rows: case-level intervals unavailable" in forget.why
    assert {r.verdict for r in rows if not r.contrast} <= {SECONDARY, NOT_TESTED}
    shared = [r for r in rows if r.strategy == "pemma-lora-shared" and r.verdict == SECONDARY and "forgetting" in r.measured]
    assert shared and all("max-based forgetting (biased upward by noise" in r.why for r in shared)
    with_cases = load_run(write_run(tmp_path / "new", {0: seed_rows(0, 0.01), 1: seed_rows(1, 0.03)}))
    shared = [r for r in check_claims([with_cases], SHARES)
              if r.strategy == "pemma-lora-shared" and r.verdict == SECONDARY and "forgetting" in r.measured]
    assert shared and all("cross-fitted forgetting" in r.why for r in shared)
    one = load_run(write_run(tmp_path / "one", {0: seed_rows(0, 0.01)}, with_cases=False))
    dice = next(r for r in check_claims([one], SHARES) if r.contrast == "dice-vs-early-fusion")
    assert dice.verdict == ONE_SEED and "no per-case rows: case-level intervals unavailable" in dice.measured


def test_plan_from_a_three_seed_pilot(tmp_path: Path) -> None:
    # seeds' paired differences 0.00, 0.10, 0.20: variance 0.01 (sd 0.1); every case alike, so no case variance
    run = write_run(tmp_path / "pilot", {s: seed_rows(s, gap) for s, gap in enumerate([0.0, 0.1, 0.2])})
    [dice] = plan_run(run, 0.03, [DICE])
    assert dice.seed_variance == pytest.approx(0.01) and dice.case_variance == pytest.approx(0.0, abs=1e-12)
    n = next(n for n in range(2, 1000) if stats.t.ppf(0.975, n - 1) * 0.1 / n ** 0.5 <= 0.03)
    assert dice.for_half_width == n and 40 < n < 50  # (1.96 * 0.1 / 0.03)^2 = 42.7, a little more with t
    # distance from the boundary 0.1 - (-0.03) = 0.13 at alpha 5% (one contrast), power 80%
    decide = next(n for n in range(MIN_SEEDS, 1000)
                  if (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * 0.1 / n ** 0.5 <= 0.13)
    assert dice.to_decide == decide
    # its 80% range: the distance 0.13 -+ t(0.9, 2) * 0.1 / sqrt(3), the sd 0.1 * sqrt(2 / chi2(0.9 or 0.1, 2))
    half = stats.t.ppf(0.9, 2) * 0.1 / 3 ** 0.5
    low_sd, high_sd = (0.1 * (2 / stats.chi2.ppf(q, 2)) ** 0.5 for q in (0.9, 0.1))
    optimistic = next(n for n in range(MIN_SEEDS, 1000)
                      if (stats.t.ppf(0.975, n - 1) + stats.t.ppf(0.8, n - 1)) * low_sd / n ** 0.5 <= 0.13 + half)
    assert dice.to_decide_range.optimistic == optimistic < decide
    assert 0.13 - half > 0 and (stats.t.ppf(0.975, 999) + stats.t.ppf(0.8, 999)) * high_sd / 1000 ** 0.5 > 0.13 - half
    assert dice.to_decide_range.pessimistic is None and not dice.to_decide_range.unbounded  # over the search range
    assert (f"| dice | 3 | +0.100 (-0.030) | 0.01000 | 0.00000 | 0.01000 | {n} | {decide} | {optimistic} to more "
            "than 1000 |") in render_plan([dice], 0.03)
    # the command, with the declared contrasts and a wider half-width: seeds to decide at the level of the contrast's
    # planned trial in the alpha ledger (the level its decide run will be tested at)
    done = CliRunner().invoke(app, ["plan", str(run), "--half-width", "0.05"])
    assert done.exit_code == 0, done.output
    wide = next(n for n in range(2, 1000) if stats.t.ppf(0.975, n - 1) * 0.1 / n ** 0.5 <= 0.05)
    level = next(t.alpha for t in load_ledger().trials if t.planned and t.contrast == "dice-vs-early-fusion")
    assert level < 0.05 / len(load_primary_contrasts())  # stricter than Holm's strictest level
    decide = next(n for n in range(MIN_SEEDS, 1000)
                  if (stats.t.ppf(1 - level / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * 0.1 / n ** 0.5 <= 0.13)
    [row] = [line for line in done.stdout.splitlines() if line.startswith("| dice-vs-early-fusion |")]
    assert row.startswith(f"| dice-vs-early-fusion | 3 | +0.100 (-0.030) | 0.01000 | 0.00000 | 0.01000 | {wide} | "
                          f"{decide} |") and row.endswith(f"| {level:.2g} |")


def test_the_plans_range_has_no_bound_when_the_pilot_reaches_the_margin() -> None:
    # mean 0.01 against the boundary -0.03, sd 0.1, 3 seeds: the 80% interval's near end 0.04 - 0.109 < 0
    wide = seeds_to_decide_range([-0.09, 0.01, 0.11], -0.03, 0.05)
    assert wide.unbounded and wide.pessimistic is None and wide.optimistic is not None
    # 16 seeds (sd 0.032) whose mean is 0.03 from the boundary: a bounded range around the point count
    values = list(np.linspace(0.05, 0.15, 16))
    narrow = seeds_to_decide_range(values, 0.07, 0.05)
    point = seeds_to_decide(float(np.std(values, ddof=1)), 0.03, 0.05)
    assert not narrow.unbounded and MIN_SEEDS < narrow.optimistic < point < narrow.pessimistic < 100


def test_plan_refuses_fewer_than_three_seeds_and_other_streams(tmp_path: Path) -> None:
    run = write_run(tmp_path / "one", {0: seed_rows(0, 0.0)})
    with pytest.raises(UserError, match="at least 3 seeds, this one has 1"):
        plan_run(run, 0.03, [DICE])
    pilot = write_run(tmp_path / "pilot", {s: seed_rows(s, 0.0) for s in range(3)})
    with pytest.raises(UserError, match="has no primary contrast"):
        plan_run(pilot, 0.03, [PrimaryContrast(**{**DICE.__dict__, "stream": "paper"})])
    with pytest.raises(UserError, match="--half-width"):
        plan_run(pilot, 0.0, [DICE])
    lesion = write_run(tmp_path / "lesion", {s: seed_rows(s, 0.01 * s, structures=("lesion",)) for s in range(3)},
                       structures=("lesion",))
    with pytest.raises(UserError, match="no primary contrast of stream 'centers' applies to the run's data "
                                        r"\(they name GTVn; the data have lesion\)"):
        plan_run(lesion, 0.03, [replace(DICE, structure="GTVn")])
    assert [p.contrast.name for p in plan_run(lesion, 0.03, [DICE, replace(DICE, name="n", structure="GTVn")])] == [
        "dice"]


def test_the_fast_final_dice_bootstrap_equals_recomputing_on_the_drawn_rows() -> None:
    rng = np.random.default_rng(3)
    rows = [*case_rows(0, "early-fusion", final(list(rng.uniform(0, 1, 5)), list(rng.uniform(0, 1, 3)))),
            *case_rows(0, "pemma-lora", final(list(rng.uniform(0, 1, 5)), list(rng.uniform(0, 1, 3))))]
    cases = pd.DataFrame(rows, columns=CASE_COLUMNS)
    cases.loc[cases["structure"] == "GTVn", ["tp", "fn"]] = 0  # GTVn without reference voxels: left out
    units = case_units(cases)
    weights = stratified_weights(units, 20, np.random.default_rng(0))
    assert (weights.sum(axis=1) == 8).all() and (weights[:, :5].sum(axis=1) == 5).all()  # per centre, its count
    slow = [case_value(resample_cases(cases, units, row), DICE) for row in weights]
    assert weighted_final_dice(cases, DICE, units, weights) == pytest.approx(slow)
    assert weighted_final_dice(cases, DICE, units, np.ones((1, len(units)))) == pytest.approx([case_value(cases, DICE)])


def test_a_decide_run_is_read_by_its_plan_for_the_contrasts_it_decided(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import pemma_cl.report.contrasts as declared

    monkeypatch.setattr(declared, "load_primary_contrasts", lambda path=None: [DICE, FORGET])
    # shared PEMMA forgets 0.00, 0.01, 0.00 (cross-fitted: every case of experience 0 fell by that much); one look
    # at 3 seeds (max_seeds 3): t = (0.00333 - 0.03) / (0.00577 / sqrt 3) = -8.0, p = 0.015 <= 0.025 (Holm, 2)
    folder = write_run(tmp_path / "run", {s: seed_rows(s, 0.0, forgetting=f) for s, f in enumerate([0.0, 0.01, 0.0])})
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_seeds": 3, "decide_contrasts": ["forget"]}))
    dice, forget = primary_rows([load_run(folder)], [DICE, FORGET])
    assert forget.verdict == HELD and "repeated confidence interval" in forget.measured
    assert "--decide: looks at 3 seeds" in forget.why and "Holm across the 2 declared" in forget.why
    assert dice.verdict == NOT_TESTED and "the --decide run did not decide it (--contrast)" in dice.why
    # beside a three-seed run of both contrasts, each contrast is read from the run that can value it
    both = load_run(write_run(tmp_path / "both", {s: seed_rows(s, 0.01 * s, forgetting=0.0) for s in range(3)}))
    dice, forget = primary_rows([load_run(folder), both], [DICE, FORGET])
    assert (dice.verdict, forget.verdict) == ("3 seeds: indicative", HELD)
    # three seeds of a fixed-seed run decide nothing (fewer than MIN_SEEDS)
    (folder / "config.json").write_text(json.dumps(config))
    assert [r.verdict for r in primary_rows([load_run(folder)], [DICE, FORGET])] == ["3 seeds: indicative"] * 2
