"""Stream files and the run configuration."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pemma_cl.core.errors import UserError
from pemma_cl.data.synthetic.centres import CENTRES
from pemma_cl.run.config import DEFAULT_STRATEGIES, PRESETS, RunConfig
from pemma_cl.streams.spec import ExperienceSpec, PretrainSpec, benchmarks_dir, list_streams, load_stream


def write_stream(folder: Path, mutate: Callable[[dict[str, Any]], None], name: str = "x") -> Path:
    """Write a copy of the ``paper`` stream called ``name``, changed by ``mutate``."""
    raw = yaml.safe_load((benchmarks_dir() / "paper.yaml").read_text())
    raw["name"] = name
    mutate(raw)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_centers_stream_has_one_experience_per_centre() -> None:
    stream = load_stream("centers")
    assert stream.name == "centers"
    assert stream.path == benchmarks_dir() / "centers.yaml"
    assert stream.pretrain == PretrainSpec(centres=("CHUM", "CHUP", "CHUS", "CHUV"), modalities=("ct",))
    assert sorted(e.name for e in stream.experiences) == sorted(CENTRES)
    assert stream.experiences[0].name == "MDA"  # PET first arrives at the largest centre
    assert [e.task for e in stream.experiences] == list(range(1, 8))
    assert all(e.centres == (e.name,) and e.modalities == ("ct", "pet") for e in stream.experiences)


def test_paper_stream_follows_the_pemma_protocol() -> None:
    stream = load_stream("paper")
    assert stream.pretrain == PretrainSpec(centres=("CHUS", "CHUV", "CHUM", "CHUP"), modalities=("ct",))
    assert stream.experiences == (
        ExperienceSpec("MDA", ("MDA",), ("ct", "pet"), 1),
        ExperienceSpec("HGJ", ("HGJ",), ("ct", "pet"), 2),
        ExperienceSpec("HMR", ("HMR",), ("ct", "pet"), 3),
    )


def test_list_streams_returns_the_benchmark_files_sorted() -> None:
    names = [stream.name for stream in list_streams()]
    assert {"centers", "paper"} <= set(names)
    assert names == sorted(names)


def test_stream_is_loaded_from_a_path_with_modalities_in_channel_order(tmp_path: Path) -> None:
    def swap(raw: dict[str, Any]) -> None:
        raw["experiences"][0]["modalities"] = ["pet", "ct"]

    stream = load_stream(str(write_stream(tmp_path, swap, name="mine")))
    assert stream.name == "mine"
    assert stream.experiences[0].modalities == ("ct", "pet")


def test_unknown_stream_lists_valid_names() -> None:
    with pytest.raises(UserError) as info:
        load_stream("nope")
    assert str(info.value).startswith("unknown stream 'nope'; valid streams: centers, centers-ct, centers-noshift, modalities, modalities-paper, paper, paper-ct")


def test_missing_stream_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"stream file '.*missing\.yaml' does not exist"):
        load_stream(str(tmp_path / "missing.yaml"))


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Return a mutation that sets the dotted ``path`` (list indices allowed) to ``value``."""

    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = [int(key) if key.isdigit() else key for key in path.split(".")]
        for key in parents:
            raw = raw[key]
        raw[last] = value

    return mutate


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            raw = raw[int(key) if key.isdigit() else key]
        del raw[last]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            _set("experiences.2.modalities", ["mri"]),
            "experiences[2].modalities: expected a non-empty subset of [ct, pet], got ['mri']",
        ),
        (_set("experiences.0.modalities", []), "experiences[0].modalities: expected a non-empty subset"),
        (_set("experiences.0.modalities", ["ct", "ct"]), "experiences[0].modalities: expected a non-empty subset"),
        (_set("experiences.1.centres", []), "experiences[1].centres: expected a non-empty list of distinct values"),
        (_set("experiences.1.where", {"tracer": []}), "experiences[1].where.tracer: expected a value or a non-empty"),
        (_set("experiences.1.where", {"centre": "MDA"}), "experiences[1]: give the centres once, in 'centres' or"),
        (_delete("experiences.1.centres"), "experiences[1]: missing key 'centres' or 'where'"),
        (_set("pretrain.centres", "CHUM"), "pretrain.centres: expected a non-empty list"),
        (_set("experiences.1.name", "MDA"), "experiences[1].name: expected a unique name, got 'MDA' again"),
        (_set("experiences.0.task", 0), "experiences[0].task: expected a positive integer, got 0"),
        (_set("experiences.0.task", "1"), "experiences[0].task: expected a positive integer, got '1'"),
        (_set("experiences.0.task", True), "experiences[0].task: expected a positive integer, got True"),
        (_set("experiences", []), "experiences: expected a non-empty list of experiences, got []"),
        (
            _set("experiences.0.colour", "red"),
            "experiences[0]: unknown key 'colour'; expected keys: [name, modalities, task, kind, cases_per_centre, centres, "
            "where]",
        ),
        (_delete("experiences.0.task"), "experiences[0]: missing key 'task'"),
        (_delete("pretrain"), "missing key 'pretrain'"),
        (_set("extra", 1), "unknown key 'extra'"),
        (_set("pretrain.modalities", ["pet"]), "pretrain.modalities: expected a subset that includes ct, got ['pet']"),
        (_set("name", "other"), "name: expected 'x' (the file name without extension), got 'other'"),
        (_set("description", ""), "description: expected a non-empty string"),
        (_set("pretrain", None), "pretrain: expected a mapping with keys [modalities], got None"),
    ],
)
def test_malformed_stream_names_file_and_field(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = write_stream(tmp_path, mutate)
    with pytest.raises(UserError) as info:
        load_stream(str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_invalid_yaml_syntax_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\nexperiences: [unclosed\n")
    with pytest.raises(UserError, match=r"bad\.yaml: invalid YAML: .*\(line \d+, column \d+\)$"):
        load_stream(str(path))


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(UserError, match=r"list\.yaml: expected a mapping with keys"):
        load_stream(str(path))


def test_file_inside_working_directory_is_shown_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_stream(tmp_path, _set("experiences.2.modalities", ["mri"]))
    with pytest.raises(UserError) as info:
        load_stream("x.yaml")
    assert str(info.value) == "x.yaml: experiences[2].modalities: expected a non-empty subset of [ct, pet], got ['mri']"


def test_run_config_defaults_and_plain_dict() -> None:
    config = RunConfig(stream=load_stream("paper"), strategies=DEFAULT_STRATEGIES)
    assert (config.seeds, config.preset, config.data, config.epochs, config.device) == (
        (0,),
        "tiny",
        "synthetic",
        None,
        "auto",
    )
    assert config.results_dir == Path("results")
    assert config.plugin_files == () and config.reference is None and config.loggers == ()
    plain = config.to_dict()
    assert RunConfig.from_dict(json.loads(json.dumps(plain))) == config
    assert json.loads(json.dumps(plain)) == plain
    assert yaml.safe_load(yaml.safe_dump(plain)) == plain
    assert plain["strategies"] == list(DEFAULT_STRATEGIES)
    assert plain["results_dir"] == "results"
    assert plain["stream"]["experiences"][0] == {
        "name": "MDA",
        "centres": ["MDA"],
        "modalities": ["ct", "pet"],
        "task": 1, "kind": "segmentation", "cases_per_centre": None, "where": [],
    }
    assert plain["stream"]["path"] == str(benchmarks_dir() / "paper.yaml")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preset": "huge"}, f"preset: expected one of [{', '.join(PRESETS)}], got 'huge'"),
        ({"device": "tpu"}, "device: expected one of [auto, cpu, cuda], got 'tpu'"),
        ({"seeds": (-1,)}, "seeds: expected one or more non-negative integers, got [-1]"),
        ({"seeds": ()}, "seeds: expected one or more non-negative integers, got []"),
        ({"seeds": (2, 2)}, "seeds: each seed may be named once, got [2, 2]"),
        ({"reference": "b"}, "reference: 'b' is not one of the run's strategies (a)"),
        ({"loggers": ("csv", "csv")}, "loggers: expected distinct names from [tensorboard, csv, wandb, text], got ['csv', 'csv']"),
        ({"epochs": 0}, "epochs: expected a positive integer, got 0"),
        ({"strategies": ()}, "strategies: expected at least one strategy name"),
        ({"strategies": ("a", "b", "a")}, "strategies: each strategy may be named once, got a twice"),
        ({"data": "nifti:/x"}, "data: expected 'synthetic', 'hecktor:DIR' or 'nnunet:DIR', got 'nifti:/x'"),
        ({"data": "hecktor:/does/not/exist"}, "data: HECKTOR folder '/does/not/exist' does not exist"),
        ({"on_bad_case": "ignore"}, "on_bad_case: expected one of [refuse, skip], got 'ignore'"),
        ({"cache": Path("/x")}, "cache: a prepared cache only applies to '--data hecktor:DIR' or '--data nnunet:DIR'"),
    ],
)
def test_run_config_rejects_bad_values(changes: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {"stream": load_stream("paper"), "strategies": ("a",), **changes}
    with pytest.raises(UserError) as info:
        RunConfig(**values)
    assert str(info.value) == message


def test_hecktor_data_source_needs_the_official_layout(tmp_path: Path) -> None:
    with pytest.raises(UserError) as info:
        RunConfig(stream=load_stream("paper"), strategies=("a",), data=f"hecktor:{tmp_path}")
    assert str(info.value).startswith(f"data: '{tmp_path}' is not a HECKTOR 2022 training folder: imagesTr, ")
    for folder in ("imagesTr", "labelsTr"):
        (tmp_path / folder).mkdir()
    for table in ("hecktor2022_clinical_info_training.csv", "hecktor2022_endpoint_training.csv"):
        (tmp_path / table).write_text("PatientID\n")
    config = RunConfig(stream=load_stream("paper"), strategies=("a",), data=f"hecktor:{tmp_path}", on_bad_case="skip")
    assert (config.data, config.on_bad_case) == (f"hecktor:{tmp_path}", "skip")


def test_modalities_stream_declares_prognosis_experiences_with_ehr() -> None:
    stream = load_stream("modalities")
    assert stream.kinds == ("segmentation", "prognosis", "prognosis", "prognosis")
    assert [e.modalities for e in stream.experiences] == [("ct", "pet"), ("ct",), ("ct", "pet"), ("ct", "pet", "ehr")]
    assert stream.synthetic_scale == 3.0 and stream.pretrain.cases_per_centre == 10
    assert stream.test_cases_per_centre == 45
    assert stream.experiences[0].cases_per_centre == 35 and stream.experiences[1].cases_per_centre is None
    assert load_stream("paper").kinds == ("segmentation",) * 3  # kind defaults to segmentation


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda raw: raw["experiences"][0].update(kind="survival"),
     r"experiences\[0\]\.kind: expected one of \[segmentation, prognosis\], got 'survival'"),
    (lambda raw: raw["experiences"][0].update(modalities=["ct", "ehr"]),
     r"experiences\[0\]\.modalities: expected a non-empty subset of \[ct, pet\], got \['ct', 'ehr'\]"),
    (lambda raw: raw["experiences"][0].update(kind="prognosis", modalities=["ehr"]),
     r"experiences\[0\]\.modalities: expected a non-empty subset of \[ct, pet\] \(plus 'ehr' in a prognosis"),
    (lambda raw: raw["experiences"][1].update(cases_per_centre=1),
     r"experiences\[1\]\.cases_per_centre: expected an integer of at least 2, got 1"),
    (lambda raw: raw.update(synthetic_scale="big"), r"synthetic_scale: expected a number in \(0, 20\], got 'big'"),
    (lambda raw: raw.update(synthetic_shift="no"), r"synthetic_shift: expected true or false, got 'no'"),
    (lambda raw: raw.update(test_cases_per_centre=1),
     r"test_cases_per_centre: expected an integer of at least 2, got 1"),
    (lambda raw: raw.update(tracked_cases_per_centre=1),
     r"tracked_cases_per_centre: expected an integer of at least 2 or 'all', got 1"),
    (lambda raw: raw.update(tracked_cases_per_centre="some"),
     r"tracked_cases_per_centre: expected an integer of at least 2 or 'all', got 'some'"),
    (lambda raw: raw["pretrain"].update(cases=3),
     r"pretrain: unknown key 'cases'; expected keys: \[modalities, cases_per_centre, centres, where\]"),
])
def test_prognosis_fields_of_a_stream_file_are_checked(tmp_path: Path, mutate, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_stream(str(write_stream(tmp_path, mutate)))


def test_the_no_shift_stream_turns_off_the_centre_differences(tmp_path: Path) -> None:
    stream = load_stream("centers-noshift")
    assert stream.synthetic_shift is False and load_stream("centers").synthetic_shift is True
    assert stream.experiences == load_stream("centers").experiences and stream.test_cases_per_centre is None
    config = RunConfig(stream=stream, strategies=("full-finetune",), results_dir=tmp_path)
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_a_prognosis_stream_survives_config_json(tmp_path: Path) -> None:
    config = RunConfig(stream=load_stream("modalities"), strategies=("pemma-lora",), results_dir=tmp_path)
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("field, value, default, bad, choices", [
    ("backbone", "swin-unetr", "unetr", "resnet", "unetr, swin-unetr"),
    ("precision", "bf16", "fp32", "fp16", "fp32, bf16"),
])
def test_backbone_and_precision_are_part_of_the_run_configuration(tmp_path: Path, field: str, value: str,
                                                                  default: str, bad: str, choices: str) -> None:
    config = RunConfig(stream=load_stream("paper"), strategies=("pemma-lora",), results_dir=tmp_path, **{field: value})
    assert config.to_dict()[field] == value
    assert RunConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    older = {key: item for key, item in config.to_dict().items() if key != field}  # a folder written before the field
    assert getattr(RunConfig.from_dict(older), field) == default
    assert getattr(RunConfig(stream=load_stream("paper"), strategies=("pemma-lora",)), field) == default
    with pytest.raises(UserError, match=rf"{field}: expected one of \[{choices}\], got '{bad}'"):
        RunConfig(stream=load_stream("paper"), strategies=("pemma-lora",), **{field: bad})


def test_tracked_cases_default_to_ten_a_centre_and_all_tracks_every_test_case(tmp_path: Path) -> None:
    assert load_stream("centers").tracked_cases_per_centre == 10
    assert load_stream(str(write_stream(tmp_path, lambda raw: raw.update(tracked_cases_per_centre="all")))
                       ).tracked_cases_per_centre is None
    # A run stored before tracked cases existed scored every case at every state: its config reads back as 'all'.
    stored = RunConfig(stream=load_stream("centers"), strategies=("full-finetune",), results_dir=tmp_path).to_dict()
    del stored["stream"]["tracked_cases_per_centre"]
    assert RunConfig.from_dict(stored).stream.tracked_cases_per_centre is None
