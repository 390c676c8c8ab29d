"""``--data nnunet:DIR`` in a run: checked up front (the stream's selection against the case table, before any unit
starts), stored and read back, and experiences selected by a column of the table through ``build_stream``."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest
from conftest import invoke_cli
from nnunet_factory import rows, write_dataset

from pemma_cl.core.errors import UserError
from pemma_cl.data.nnunet.layout import NnunetSettings
from pemma_cl.run.config import RunConfig
from pemma_cl.run.tasks import portable_config
from pemma_cl.streams.spec import load_stream

#: north and south have both tracers, east only FDG (so east with PSMA selects no case).
TABLE = [*rows({"north": 4, "south": 4}, tracer=["FDG", "PSMA"], time=[30, 90], event=[1, 0]),
         *rows({"east": 3}, tracer=["FDG"], time=[60], event=[1])]

STREAM = """\
name: NAME
description: FDG, then PSMA arrives
pretrain: {centres: [north], modalities: [ct]}
experiences:
  - {name: FDG, where: {tracer: FDG}, modalities: [ct, pet], task: 1}
  - {name: PSMA, where: {centre: [north, south], tracer: PSMA}, modalities: [ct, pet], task: 2}
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("nnunet") / "Dataset002_Tracers", TABLE)


def stream_file(tmp_path: Path, text: str = STREAM, name: str = "tracers") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("NAME", name))
    return path


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[RunConfig]:
    """The configs ``run`` hands to a stand-in for ``pemma_cl.run.benchmark`` (nothing trains)."""
    configs: list[RunConfig] = []
    module = types.ModuleType("pemma_cl.run.benchmark")
    module.open_work = lambda config: types.SimpleNamespace(config=config)  # type: ignore[attr-defined]

    def run_benchmark(work, *args, **kwargs) -> Path:
        configs.append(work.config)
        return Path("run-folder")

    module.run_benchmark = run_benchmark  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pemma_cl.run.benchmark", module)
    return configs


def test_run_passes_the_nnunet_settings_into_its_config(dataset: Path, tmp_path: Path, captured) -> None:
    result = invoke_cli("run", "--stream", stream_file(tmp_path), "--data", f"nnunet:{dataset}", "--strategy",
                        "full-finetune", "--case-table", dataset / "cases.csv", "--survival", "time,event",
                        "--clinical", "time", "--spacing", "2,2,2.5", "--jobs", "1")
    assert result.exit_code == 2 and result.stderr == ("error: survival: column 'time' is declared twice; a column "
                                                       "plays one role\n")
    result = invoke_cli("run", "--stream", stream_file(tmp_path), "--data", f"nnunet:{dataset}", "--strategy",
                        "full-finetune", "--case-table", dataset / "cases.csv", "--survival", "time,event",
                        "--spacing", "2,2,2.5", "--jobs", "1")
    assert result.exit_code == 0, result.output
    [config] = captured
    assert config.nnunet == NnunetSettings(dataset / "cases.csv", ("time", "event"), (), (2.0, 2.0, 2.5))


def test_settings_round_trip_through_config_json_and_old_files_still_load(dataset: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = RunConfig(stream=load_stream(str(stream_file(tmp_path))), strategies=("a",), data=f"nnunet:{dataset}",
                       case_table=dataset / "cases.csv", survival=("time", "event"), spacing=(3.0, 2.0, 2.0),
                       cache=tmp_path / "cache")
    raw = config.to_dict()
    assert (raw["case_table"], raw["survival"], raw["clinical"], raw["spacing"]) == (
        str(dataset / "cases.csv"), ["time", "event"], [], [3.0, 2.0, 2.0])
    assert RunConfig.from_dict(raw) == config
    old = {key: value for key, value in raw.items() if key not in ("case_table", "survival", "clinical", "spacing")}
    assert RunConfig.from_dict(old) == dataclasses.replace(config, case_table=None, survival=None, spacing=None)
    monkeypatch.chdir(dataset.parent)  # a worker may start elsewhere: it gets absolute paths
    relative = dataclasses.replace(config, data=f"nnunet:{dataset.name}", case_table=Path(dataset.name) / "cases.csv")
    portable = portable_config(relative)
    assert (portable["data"], portable["case_table"]) == (f"nnunet:{dataset}", str(dataset / "cases.csv"))


def edit(old: str, new: str) -> str:
    assert old in STREAM
    return STREAM.replace(old, new)


@pytest.mark.parametrize(("stream", "args", "message"), [
    (edit("tracer: FDG}", "tracer: FDX}"), (),
     "{stream}: experiences[0].where.tracer: 'FDX' is not a value of column 'tracer' in the data; its values are "
     "[FDG, PSMA]"),
    (edit("where: {tracer: FDG}", "where: {scanner: X}"), (),
     "{stream}: experiences[0].where.scanner: the data has no column 'scanner'; its grouping columns are "
     "[centre, event, time, tracer]"),  # survival columns not declared: they group, never guessed
    (edit("centres: [north]", "centres: [west]"), (),
     "{stream}: pretrain.centres: 'west' is not a value of column 'centre' in the data; its values are "
     "[east, north, south]"),
    (edit("centre: [north, south]", "centre: east"), (),
     "{stream}: experiences[1]: selects no case: no case of the data has centre in [east] and tracer in [PSMA]"),
    (edit("{name: PSMA, where: {centre: [north, south], tracer: PSMA}, modalities: [ct, pet], task: 2}",
          "{name: risk, centres: [south], modalities: [ct, ehr], task: 2, kind: prognosis}"), (),
     "{stream}: experiences[1].modalities: 'ehr' needs the case table's clinical columns; declare them with "
     "--clinical COL,COL"),
    (STREAM, ("--survival", "time,outcome"),
     "{dataset}/cases.csv: no column 'outcome' (a declared survival column); its columns are "
     "[case_id, centre, tracer, time, event]"),
    (STREAM, ("--survival", "time"), "survival: expected two distinct columns TIME,EVENT, got ['time']"),
    (STREAM, ("--case-table", "/nowhere/cases.csv"), "/nowhere/cases.csv: case table not found; expected a "
     "CSV with the columns 'case_id' and 'centre' (or name another with --case-table FILE)"),
    (STREAM, ("--spacing", "0,1,1"), "--spacing: expected three positive numbers Z,Y,X in mm "
     "(e.g. 3,2,2), got '0,1,1'"),
])
def test_a_stream_or_setting_the_case_table_does_not_support_is_refused_before_any_unit(
        dataset: Path, tmp_path: Path, captured, stream: str, args: tuple, message: str) -> None:
    path = stream_file(tmp_path, stream)
    result = invoke_cli("run", "--stream", path, "--data", f"nnunet:{dataset}", "--strategy", "full-finetune", *args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert result.stderr == f"error: {message.format(stream=path, dataset=dataset)}\n"
    assert captured == []


@pytest.mark.parametrize(("data", "args", "message"), [
    ("nnunet:/does/not/exist", (), "data: nnU-Net dataset folder '/does/not/exist' does not exist"),
    ("nnunet:", (), "data: expected 'synthetic', 'hecktor:DIR' or 'nnunet:DIR', got 'nnunet:'"),
    ("synthetic", ("--case-table", "x.csv"), "case_table: only applies to '--data nnunet:DIR'"),
    ("synthetic", ("--spacing", "2,2,2"), "spacing: only applies to '--data nnunet:DIR'"),
])
def test_nnunet_options_are_checked(tmp_path: Path, captured, data: str, args: tuple, message: str) -> None:
    result = invoke_cli("run", "--stream", stream_file(tmp_path), "--data", data, *args)
    assert result.exit_code == 2 and result.stderr == f"error: {message}\n", result.output


def test_a_dataset_without_dataset_json_is_refused_by_the_run(dataset: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    for name in ("imagesTr", "labelsTr"):
        (folder / name).mkdir(parents=True)
    with pytest.raises(UserError, match=f"^{folder}/dataset.json: not found"):
        RunConfig(stream=load_stream(str(stream_file(tmp_path))), strategies=("a",), data=f"nnunet:{folder}")


def test_experiences_select_cases_by_the_tracer_column_through_build_stream(dataset: Path, tmp_path: Path) -> None:
    import shutil

    from pemma_cl.data.nnunet.load import load_nnunet
    from pemma_cl.data.nnunet.prepare import prepare_dataset
    from pemma_cl.data.splits import split_cases
    from pemma_cl.streams.build import build_stream

    folder = tmp_path / dataset.name
    shutil.copytree(dataset, folder)
    prepare_dataset(folder, None, None, None, "refuse", workers=1)
    data = load_nnunet(folder, "refuse", NnunetSettings(survival=("time", "event")))
    spec = load_stream(str(stream_file(tmp_path)))
    assert spec.selection_columns == ("centre", "tracer")
    train, evaluated = split_cases(data.cases, 0, spec.selection_columns).for_evaluation_on("test")
    stream = build_stream(spec, train, evaluated)
    tracer = {str(row["case_id"]): row["tracer"] for row in TABLE}
    # Groups (centre, tracer) of 2, 2, 2, 2 and 3 cases: one test case each; the rest train.
    assert stream.train_sizes == [1 + 1 + 2, 1 + 1]
    assert [sorted((centre, tracer[case]) for case, centre in cases) for cases in stream.eval_cases] == [
        [("east", "FDG"), ("north", "FDG"), ("south", "FDG")], [("north", "PSMA"), ("south", "PSMA")]]
    assert {tracer[c.case_id] for c in stream.pretrain_cases} == {"FDG", "PSMA"}
    assert {c.centre for c in stream.pretrain_cases} == {"north"}
    assert all(c.has_endpoint for c in data.cases)  # declared survival columns: prognosis from images can use them


@pytest.mark.slow
def test_prepare_then_run_a_segmentation_and_a_prognosis_experience_end_to_end(tmp_path: Path) -> None:
    """``prepare`` -> ``run --data nnunet:DIR --survival TIME,EVENT --clinical COL`` on non-cubic volumes smaller
    than the patch (micro preset, one epoch): the run's records name the data, its structure, its settings and the
    clinical field its EHR vector holds."""
    import json

    import pandas as pd

    folder = write_dataset(tmp_path / "ds", rows({"north": 4, "south": 6}, tracer=["FDG", "PSMA"],
                                                 months=[3, 9, 14, 20, 30], died=[1], age=[50, 70, 60, 80]),
                           shape=(20, 24, 28))
    assert invoke_cli("prepare", "--data", f"nnunet:{folder}", "--workers", 1).exit_code == 0
    stream = stream_file(tmp_path, STREAM.replace(
        "{name: PSMA, where: {centre: [north, south], tracer: PSMA}, modalities: [ct, pet], task: 2}",
        "{name: risk, centres: [south], modalities: [ct, pet, ehr], task: 2, kind: prognosis}"), name="mixed")
    result = invoke_cli("run", "--stream", stream, "--data", f"nnunet:{folder}", "--survival", "months,died",
                        "--clinical", "age",
                        "--preset", "micro", "--epochs", 1, "--strategy", "full-finetune", "--device", "cpu",
                        "--jobs", 1, "--results-dir", tmp_path / "results")
    assert result.exit_code == 0, result.output
    run_dir = Path(result.stdout.splitlines()[-1])
    facts = json.loads((run_dir / "manifest.json").read_text())["extra"]["seeds"]["0"]
    assert facts["data"].startswith(f"nnunet-v1:{folder}:spacing2x2x2:10cases:")
    assert (facts["n_train_cases"], facts["n_test_cases"], facts["left_out_of_prognosis"]) == (6, 4, {})
    assert json.loads((run_dir / "config.json").read_text())["survival"] == ["months", "died"]
    # the EHR vector holds the declared column, centred and scaled on the training cases' ages
    assert list(facts["description"]["clinical"]) == ["age"] and facts["description"]["clinical"]["age"]["scale"] > 0
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert set(metrics["structure"].dropna()) <= {"lesion", "aggregated"} and "lesion" in set(metrics["structure"])
