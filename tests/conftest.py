"""Shared fixtures: a tiny synthetic cohort, a micro two-experience stream and its shared bases.

Everything here uses the ``micro`` preset (32^3 volumes, hidden 32) and few cases, so that tests that
really train and evaluate through Avalanche stay within a few seconds each on one CPU thread.
"""

from __future__ import annotations

from pathlib import Path

import pytest

#: Fixtures that train a network or run a whole benchmark: a test using one is marked ``slow`` and left out of the
#: fast inner-loop subset (``make test-fast``: ``pytest -m "not slow"``). CI runs every test.
SLOW_FIXTURES = frozenset({"shared_bases", "ctx_settings", "run_entry", "run_ct_update", "prepared_hecktor",
                           "bad_hecktor", "two_runs", "scenario"})
#: Modules whose tests start ``pemma-bench`` or a build in a subprocess, or build and train PEMMA networks (each
#: module took 30 s or more of CPU in the fast subset before it was listed here).
SLOW_MODULES = frozenset({"test_runner", "test_package", "test_api", "test_docs", "test_adapters", "test_profile",
                          "test_prognosis", "test_swin", "test_single_case", "test_bases", "test_models",
                          "test_decide", "test_shared_results"})


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: trains a network or runs a whole benchmark (not in make test-fast)")


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


#: Centres of the test cohort; at ``case_scale`` 0.05 each has 5 cases (4 train, 1 test).
TEST_CENTRES = ("HMR", "HGJ", "CHUV")
TEST_SEED = 0


@pytest.fixture(scope="session")
def micro_preset():
    from pemma_cl.models.presets import PRESETS

    return PRESETS["micro"]


@pytest.fixture(scope="session")
def tiny_cohort():
    """Five 32^3 cases for each of HMR, HGJ and CHUV."""
    from pemma_cl.data.synthetic.cohort import generate_cohort

    return generate_cohort(seed=TEST_SEED, shape=(32, 32, 32), case_scale=0.05, centres=TEST_CENTRES)


@pytest.fixture(scope="session")
def micro_stream_spec():
    """Pre-train on HMR (CT), then HGJ (task 1) and CHUV (task 2) with CT+PET."""
    from pemma_cl.streams.spec import ExperienceSpec, PretrainSpec, StreamSpec

    return StreamSpec(
        name="micro",
        description="test stream",
        pretrain=PretrainSpec(centres=("HMR",), modalities=("ct",)),
        experiences=(
            ExperienceSpec(name="HGJ", centres=("HGJ",), modalities=("ct", "pet"), task=1),
            ExperienceSpec(name="CHUV", centres=("CHUV",), modalities=("ct", "pet"), task=2),
        ),
        path=Path("micro.yaml"),
    )


@pytest.fixture(scope="session")
def micro_ct_update_spec(micro_stream_spec):
    """The micro stream with a single-modality update: HGJ with CT+PET (task 1), then CHUV with CT only (task 2)."""
    from dataclasses import replace

    first, second = micro_stream_spec.experiences
    return replace(micro_stream_spec, name="micro-ct", experiences=(first, replace(second, modalities=("ct",))))


def _stream(cohort, spec):
    from pemma_cl.data.splits import split_cases
    from pemma_cl.streams.build import build_stream

    train, test = split_cases(cohort, TEST_SEED).for_evaluation_on("test")
    return build_stream(spec, train, test)


@pytest.fixture(scope="session")
def stream_data(tiny_cohort, micro_stream_spec):
    return _stream(tiny_cohort, micro_stream_spec)


@pytest.fixture(scope="session")
def ct_update_stream(tiny_cohort, micro_ct_update_spec):
    return _stream(tiny_cohort, micro_ct_update_spec)


@pytest.fixture(scope="session")
def shared_bases(stream_data, micro_preset, tmp_path_factory):
    """Shared bases of the micro stream, cached in a session temporary folder (each trained once)."""
    import torch

    from pemma_cl.data.sources import SYNTHETIC_DESCRIPTION
    from pemma_cl.training.bases import SharedBases

    return SharedBases(micro_preset, stream_data.pretrain_cases, TEST_SEED, torch.device("cpu"),
                       cache_dir=tmp_path_factory.mktemp("bases-cache"), data_key="test-cohort",
                       num_classes=SYNTHETIC_DESCRIPTION.num_classes)


@pytest.fixture(scope="session")
def ctx_settings(micro_preset, micro_stream_spec, shared_bases) -> dict:
    """The keyword settings ``run_strategy`` turns into a BuildContext (micro preset, one epoch, CPU)."""
    import torch

    from pemma_cl.data.sources import SYNTHETIC_DESCRIPTION

    return {
        "preset": micro_preset, "device": torch.device("cpu"), "seed": TEST_SEED, "epochs": 1,
        "task_labels": [exp.task for exp in micro_stream_spec.experiences], "bases": shared_bases,
        "description": SYNTHETIC_DESCRIPTION,
    }


class RecorderPlugin:
    """Avalanche plugin (duck-typed) recording what a strategy does while ``run_strategy`` drives it.

    Attributes:
        evals: one dict per evaluation forward pass: ``trained`` (experiences trained so far), ``exp``,
            ``task``, ``setting``, ``active_adapter`` and ``disabled`` (peft models), and, before any
            training, the ``x``/``mask``/``output`` of that pass.
        train_batches: one dict per training forward pass: ``exp``, ``pet_max`` (largest |PET voxel| of the
            mini-batch), ``pet_in_mask`` (whether the modality mask marks PET present for any sample) and
            ``tasks`` (the task label of each sample).
        after_exp: parameters (name -> tensor copy) after each training experience, in order.
        initial: parameters before any training.
    """

    def __init__(self) -> None:
        self.evals: list[dict] = []
        self.train_batches: list[dict] = []
        self.after_exp: list[dict] = []
        self.initial: dict | None = None

    @staticmethod
    def _params(model) -> dict:
        return {name: p.detach().clone() for name, p in model.named_parameters()}

    def before_training(self, strategy, **kwargs) -> None:
        if self.initial is None:
            self.initial = self._params(strategy.model)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.after_exp.append(self._params(strategy.model))

    def before_forward(self, strategy, **kwargs) -> None:
        self.train_batches.append({"exp": strategy.experience.current_experience,
                                   "pet_max": float(strategy.mb_x[:, 1].abs().max()),
                                   "pet_in_mask": bool(strategy.mb_modality_mask[:, 1].any()),
                                   "tasks": strategy.mb_task_id.tolist()})

    def after_eval_forward(self, strategy, **kwargs) -> None:
        record = {
            "trained": len(self.after_exp), "exp": strategy.experience.current_experience,
            "task": strategy.experience.task_label, "setting": strategy.mb_input_setting,
            "active_adapter": getattr(strategy.model, "active_adapter", None),
            "disabled": getattr(strategy.model, "_adapters_disabled", None),
        }
        if not self.after_exp:
            record.update(x=strategy.mb_x.detach().clone(), mask=strategy.mb_modality_mask.clone(),
                          output=strategy.mb_output.detach().clone())
        self.evals.append(record)

    def __getattr__(self, name: str):
        # Avalanche calls every callback of every plugin; the ones not defined above do nothing.
        if name.startswith(("before_", "after_")):
            return lambda strategy, **kwargs: None
        raise AttributeError(name)


class StrategyRun:
    """What one ``run_strategy`` call produced: metric rows, cost, evaluation protocol, the strategy, its recorder."""

    def __init__(self, rows, cost, evaluation, strategy, recorder) -> None:
        self.rows, self.cost, self.evaluation = rows, cost, evaluation
        self.strategy, self.recorder = strategy, recorder

    @property
    def model(self):
        return self.strategy.model


def _recorded_runs(stream, ctx_settings):
    """``run(entry, options=None, plugins=())``: ``run_strategy`` on ``stream`` with a recorder plugin and
    ``plugins`` (a test's spies) appended to the strategy's; cached per entry name, options and plugins."""
    from dataclasses import replace

    from pemma_cl.run.unit import run_strategy

    cache: dict[tuple, StrategyRun] = {}

    def run(entry, options: dict | None = None, plugins: tuple = ()) -> StrategyRun:
        key = (entry.name, tuple(sorted((options or {}).items())), tuple(map(id, plugins)))
        if key not in cache:
            built, recorder = [], RecorderPlugin()

            def build(ctx):
                strategy = entry.build(ctx)
                strategy.plugins.extend([recorder, *plugins])
                built.append(strategy)
                return strategy

            spied = replace(entry, build=build)
            unit = run_strategy(spied, stream, ctx_settings, options=options)
            cache[key] = StrategyRun(unit.rows, unit.costs, unit.evaluation, built[0], recorder)
        return cache[key]

    return run


@pytest.fixture(scope="session")
def run_entry(stream_data, ctx_settings):
    """``run_entry(entry)``: a recorded run of ``entry`` on the micro stream (both experiences CT+PET)."""
    return _recorded_runs(stream_data, ctx_settings)


@pytest.fixture(scope="session")
def run_ct_update(ct_update_stream, ctx_settings):
    """``run_ct_update(entry)``: a recorded run of ``entry`` on the micro stream whose second experience is CT only."""
    return _recorded_runs(ct_update_stream, ctx_settings)


@pytest.fixture(scope="session")
def registered_entries() -> dict:
    """Every registered strategy (the built-ins and any installed entry-point plugin), by name."""
    from pemma_cl.strategy_api.registry import load_registry

    return dict(load_registry().entries)


# --- HECKTOR 2022 folder fixtures (tests/test_hecktor_synth.py, test_hecktor_checks.py, test_prepare.py) ---

#: Stream of the HECKTOR end-to-end runs: pre-train on CHUV (CT), then HGJ and CHUV with CT+PET. Only
#: CHUV and HGJ are used, so it also runs on the bad folder once its bad cases are skipped.
HECKTOR_STREAM = """\
name: {name}
description: test stream on a synthetic HECKTOR folder
pretrain: {{centres: [CHUV], modalities: [ct]}}
experiences:
  - {{name: HGJ, centres: [HGJ], modalities: [ct, pet], task: 1}}
  - {{name: CHUV, centres: [CHUV], modalities: [ct, pet], task: 2}}
"""


def invoke_cli(*args):
    """Run ``pemma-bench`` in-process; returns typer's result (stdout and stderr kept apart)."""
    from typer.testing import CliRunner

    from pemma_cl.cli.app import app

    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="session")
def hecktor_dir(tmp_path_factory) -> Path:
    """A synthetic folder in the official HECKTOR 2022 layout (15 cases of HMR, HGJ, CHUV), written by the CLI.

    Read-only: tests that change it work on a copy.
    """
    out = tmp_path_factory.mktemp("hecktor") / "HECKTOR2022"
    centres = [arg for centre in TEST_CENTRES for arg in ("--centre", centre)]
    result = invoke_cli("synth", "--out", out, "--seed", TEST_SEED, "--case-scale", 0.05, "--size", 32, *centres)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def prepared_hecktor(hecktor_dir, tmp_path_factory) -> Path:
    """A copy of ``hecktor_dir`` prepared by the CLI for size 32 (the micro preset's). Read-only."""
    import shutil

    folder = tmp_path_factory.mktemp("prepared") / "HECKTOR2022"
    shutil.copytree(hecktor_dir, folder)
    result = invoke_cli("prepare", "--hecktor", folder, "--workers", 2)
    assert result.exit_code == 0, result.output
    return folder


#: The bad cases of ``bad_hecktor``: PatientID -> a fragment of the one-line reason it must be reported with.
BAD_CASES: dict[str, str] = {
    "CHUV-001": "imagesTr/CHUV-001__PT.nii.gz is missing",
    "CHUV-002": "imagesTr/CHUV-002__CT.nii.gz is missing",
    "CHUV-003": "labelsTr/CHUV-003.nii.gz is missing",
    "HGJ-001": "imagesTr/HGJ-001__CT.nii.gz: cannot be read as NIfTI (corrupt or not a NIfTI file)",
    "HGJ-002": "imagesTr/HGJ-002__CT.nii.gz and imagesTr/HGJ-002__PT.nii.gz do not overlap in physical space",
    "HGJ-003": "imagesTr/HGJ-003__PT.nii.gz: 2 voxel(s) are NaN or infinite",
    "HMR-001": "labelsTr/HMR-001.nii.gz: label values 3 are not in {0, 1, 2}",
    "HMR-002": "labelsTr/HMR-002.nii.gz: no tumour voxels",
    "HMR-003": "hecktor2022_clinical_info_training.csv: PatientID HMR-003 has 2 identical rows",
    "HMR-004": "hecktor2022_endpoint_training.csv: PatientID HMR-004 has 2 conflicting rows",
    "HMR-005": "hecktor2022_clinical_info_training.csv: PatientID HMR-005: column 'Age' holds 'sixty'",
    "XYZ-001": "PatientID XYZ-001: centre 'XYZ' is not a HECKTOR 2022 centre",
}


def break_cases(folder: Path) -> None:
    """Make each case of ``BAD_CASES`` bad in its own way (CHUV-004/5 and HGJ-004/5 stay good)."""
    import shutil

    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    images, labels = folder / "imagesTr", folder / "labelsTr"

    def rewrite(path: Path, change_array=lambda a: a, origin_shift: float = 0.0) -> None:
        image = sitk.ReadImage(str(path))
        out = sitk.GetImageFromArray(change_array(sitk.GetArrayFromImage(image)))
        out.CopyInformation(image)
        out.SetOrigin([o + origin_shift for o in image.GetOrigin()])
        sitk.WriteImage(out, str(path), useCompression=True)

    def two_non_finite(array):
        array.flat[:2] = (np.nan, np.inf)
        return array

    (images / "CHUV-001__PT.nii.gz").unlink()
    (images / "CHUV-002__CT.nii.gz").unlink()
    (labels / "CHUV-003.nii.gz").unlink()
    (images / "HGJ-001__CT.nii.gz").write_bytes(b"this is not a NIfTI file" * 20)
    rewrite(images / "HGJ-002__PT.nii.gz", origin_shift=1000.0)
    rewrite(images / "HGJ-003__PT.nii.gz", two_non_finite)
    rewrite(labels / "HMR-001.nii.gz", lambda a: np.where(a == 1, np.uint8(3), a))
    rewrite(labels / "HMR-002.nii.gz", np.zeros_like)
    for name in ("imagesTr/{}__CT.nii.gz", "imagesTr/{}__PT.nii.gz", "labelsTr/{}.nii.gz"):
        shutil.copy(folder / name.format("CHUV-004"), folder / name.format("XYZ-001"))

    clinical_csv = folder / "hecktor2022_clinical_info_training.csv"
    clinical = pd.read_csv(clinical_csv, dtype=str, keep_default_na=False)
    copied = clinical[clinical["PatientID"] == "CHUV-004"].assign(PatientID="XYZ-001")
    clinical = pd.concat([clinical, clinical[clinical["PatientID"] == "HMR-003"], copied], ignore_index=True)
    clinical.loc[clinical["PatientID"] == "HMR-005", "Age"] = "sixty"
    clinical.to_csv(clinical_csv, index=False)
    endpoint_csv = folder / "hecktor2022_endpoint_training.csv"
    endpoint = pd.read_csv(endpoint_csv, dtype=str, keep_default_na=False)
    conflicting = endpoint[endpoint["PatientID"] == "HMR-004"].assign(RFS="1.0")
    pd.concat([endpoint, conflicting], ignore_index=True).to_csv(endpoint_csv, index=False)


@pytest.fixture(scope="session")
def bad_hecktor(hecktor_dir, tmp_path_factory):
    """A copy of ``hecktor_dir`` with ``BAD_CASES``, prepared twice by the CLI: refusing, then skipping.

    Returns a namespace with ``folder``, ``refused`` and ``skipped`` (the two CLI results). After the
    fixture the folder is prepared (size 32) with the bad cases left out.
    """
    import shutil
    from types import SimpleNamespace

    folder = tmp_path_factory.mktemp("bad") / "HECKTOR2022"
    shutil.copytree(hecktor_dir, folder)
    break_cases(folder)
    refused = invoke_cli("prepare", "--hecktor", folder, "--workers", 2)
    skipped = invoke_cli("prepare", "--hecktor", folder, "--workers", 2, "--on-bad-case", "skip")
    return SimpleNamespace(folder=folder, refused=refused, skipped=skipped)
