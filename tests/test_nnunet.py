"""An nnU-Net dataset's ``dataset.json``, channels, case table, grid check and resampling (no preparation run)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from pemma_cl.core.errors import UserError
from pemma_cl.data.nnunet.layout import find_channels, find_cases, parse_spacing, read_dataset_json
from pemma_cl.data.nnunet.table import read_case_table
from pemma_cl.data.nnunet.volumes import grid_difference, median_spacing, resampled


def dataset_json(tmp_path: Path, **changes) -> Path:
    raw = {"channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "lesion": 1}, "numTraining": 4,
           "file_ending": ".nii.gz", **changes}
    (tmp_path / "dataset.json").write_text(json.dumps({k: v for k, v in raw.items() if v is not None}))
    return tmp_path


def test_dataset_json_gives_channels_structures_and_ending(tmp_path: Path) -> None:
    labels = {"background": 0, "GTVp": 1, "GTVn": 2, "node": 3}
    dataset = read_dataset_json(dataset_json(tmp_path, labels=labels, name="Dataset042_Lymph",
                                             channel_names={"0": "MR", "1": "pt", "2": "ct"}))
    assert dataset.name == "Dataset042_Lymph"
    assert dataset.channels == {"ct": 2, "pet": 1}  # by name, any letter case; MR ignored
    assert dataset.structures == {1: "GTVp", 2: "GTVn", 3: "node"} and dataset.label_values == (0, 1, 2, 3)
    assert (dataset.file_ending, dataset.num_training) == (".nii.gz", 4)
    (tmp_path / "x").mkdir()
    unnamed = read_dataset_json(dataset_json(tmp_path / "x", numTraining=None))
    assert unnamed.name == "x" and unnamed.num_training is None  # no name: the folder's


@pytest.mark.parametrize(("names", "expected"), [
    ({"0": "CT", "1": "PET"}, {"ct": 0, "pet": 1}),
    ({"0": "PT", "1": "ct"}, {"ct": 1, "pet": 0}),
    ({"0": " Pet ", "1": "noise", "2": "Ct"}, {"ct": 2, "pet": 0}),
])
def test_channels_are_found_by_name(names: dict, expected: dict) -> None:
    assert find_channels(names, Path("dataset.json")) == expected


@pytest.mark.parametrize(("names", "message"), [
    ({"0": "CT", "1": "MR"}, "dataset.json: channel_names: no PET (named 'PET' or 'PT') channel; the channels are "
                             "[0: CT, 1: MR]"),
    ({"0": "T1", "1": "PET"}, "dataset.json: channel_names: no CT (named 'CT') channel; the channels are "
                              "[0: T1, 1: PET]"),
    ({"0": "T1"}, "no CT (named 'CT') and PET (named 'PET' or 'PT') channel; the channels are [0: T1]"),
    ({"0": "CT", "1": "PET", "2": "ct"}, "dataset.json: channel_names: channels 0 and 2 are both CT; expected one"),
    (["CT", "PET"], "dataset.json: channel_names: expected a mapping of channel index to name"),
])
def test_a_dataset_without_ct_or_pet_is_refused_naming_its_channels(names, message: str) -> None:
    with pytest.raises(UserError) as info:
        find_channels(names, Path("dataset.json"))
    assert message in str(info.value)


@pytest.mark.parametrize(("labels", "message"), [
    ({"background": 0, "lesion": [1, 2], "core": 2}, "labels: 'lesion' is a region (a list of label values); "
                                                     "region-based labels are not supported"),
    ({"background": 0, "a": 1, "b": 3}, "expected background 0 and structures with the values 1..K"),
    ({"background": 0}, "expected background 0 and structures with the values 1..K"),
    ({"bg": 0, "lesion": 1}, "labels: expected 'background': 0, got None"),
    ({"background": 0, "lesion": "1"}, "labels: 'lesion': expected an integer value in 0..255, got '1'"),
    ({"background": 0, "a": 1, "b": 1}, "expected background 0 and structures with the values 1..K, one each"),
    ({"background": 0, "aggregated": 1}, "labels: 'aggregated' cannot name a structure"),
])
def test_labels_other_than_background_and_one_value_per_structure_are_refused(tmp_path: Path, labels: dict,
                                                                               message: str) -> None:
    with pytest.raises(UserError, match="dataset.json: labels: ") as info:
        read_dataset_json(dataset_json(tmp_path, labels=labels))
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    (None, "dataset.json: not found; expected nnU-Net's dataset.json with the keys [channel_names, labels, "
           "file_ending]"),
    ('{"channel_names": ', "dataset.json: not valid JSON: Expecting value (line 1, column 19)"),
    ("[1, 2]", "dataset.json: expected a JSON object with the keys [channel_names, labels, file_ending]"),
    ('{"channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "x": 1}}',
     "dataset.json: missing key 'file_ending'; expected the keys [channel_names, labels, file_ending]"),
    ('{"channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "x": 1}, "file_ending": "nii"}',
     "dataset.json: file_ending: expected a file ending such as '.nii.gz', got 'nii'"),
])
def test_a_missing_or_malformed_dataset_json_is_refused(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / "dataset.json").write_text(text)
    with pytest.raises(UserError) as info:
        read_dataset_json(tmp_path)
    assert str(info.value) == f"{tmp_path}/{message}"


def test_cases_are_named_by_their_files(tmp_path: Path) -> None:
    for name in ("a_0000.nii.gz", "a_0001.nii.gz", "b_c_0001.nii.gz", "notes.txt", "d.nii.gz", "e_0000.nii"):
        (tmp_path / "imagesTr").mkdir(exist_ok=True)
        (tmp_path / "imagesTr" / name).touch()
    (tmp_path / "labelsTr").mkdir()
    (tmp_path / "labelsTr" / "f.nii.gz").touch()
    assert find_cases(tmp_path, ".nii.gz") == ["a", "b_c", "f"]  # d has no channel number; e another ending


def write_table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.csv"
    path.write_text(text)
    return path


def test_the_case_table_fills_groups_survival_and_clinical_as_declared(tmp_path: Path) -> None:
    path = write_table(tmp_path, "case_id,centre,tracer,age,sex,time_days,event\n"
                                 "p1, north ,FDG,61.5,1,400,1\np2,south,PSMA,,0,,\np3,south,,70,0,12.5,0\n")
    table = read_case_table(path, survival=("time_days", "event"), clinical=("age",))
    assert table.columns == ("centre", "tracer", "sex")  # undeclared columns group; declared ones do not
    p1, p2, p3 = (table.entries[c] for c in ("p1", "p2", "p3"))
    assert (p1.centre, p1.groups, p1.clinical, p1.rfs_days, p1.relapse) == ("north", {"tracer": "FDG", "sex": "1"},
                                                                           {"age": 61.5}, 400.0, 1)
    assert (p2.clinical, p2.rfs_days, p2.relapse) == ({"age": None}, None, None)  # empty cells: missing
    assert (p3.groups, p3.rfs_days, p3.relapse) == ({"sex": "0"}, 12.5, 0)
    assert table.selection_rows()[0] == {"centre": "north", "tracer": "FDG", "sex": "1"} and table.bad == {}
    plain = read_case_table(path)
    assert plain.columns == ("centre", "tracer", "age", "sex", "time_days", "event")
    assert plain.entries["p1"].rfs_days is None  # survival never guessed


@pytest.mark.parametrize(("row", "reason"), [
    ("p9,north,,1", "column 'time' is empty but 'event' is not; give both survival cells or neither"),
    ("p9,north,3,2", "column 'event' holds 2; expected 1 (event) or 0 (censored)"),
    ("p9,north,-1,1", "column 'time' holds -1; expected a time of at least 0"),
    ("p9,north,long,1", "column 'time' holds 'long'; expected a number or an empty cell"),
])
def test_a_cell_its_declared_column_cannot_hold_makes_its_case_bad(tmp_path: Path, row: str, reason: str) -> None:
    table = read_case_table(write_table(tmp_path, f"case_id,centre,time,event\np1,north,1,0\n{row}\n"),
                            survival=("time", "event"))
    assert set(table.entries) == {"p1"}
    assert table.bad["p9"] == f"{tmp_path / 'cases.csv'}: case_id p9: {reason}"


@pytest.mark.parametrize(("text", "declared", "message"), [
    (None, {}, "cases.csv: case table not found; expected a CSV with the columns 'case_id' and 'centre'"),
    ("id,centre\np1,a\n", {}, "cases.csv: no column 'case_id'; expected 'case_id' (the case name of the image "
                              "files), 'centre' and any grouping columns; its columns are [id, centre]"),
    ("case_id,site\np1,a\n", {}, "cases.csv: no column 'centre'"),
    ("case_id,centre\np1,a\np2,b\np1,a\n", {}, "cases.csv: case_id 'p1' has 2 rows; expected one row per case"),
    ("case_id,centre\np1,a\n,b\n", {}, "cases.csv: row 3 has no case_id"),
    ("case_id,centre\np1,\n", {}, "cases.csv: row 2 has no centre"),
    ("case_id,centre,t\np1,a,1\n", {"survival": ("t", "e")}, "cases.csv: no column 'e' (a declared survival column); "
                                                            "its columns are [case_id, centre, t]"),
    ("case_id,centre,t\np1,a,1\n", {"clinical": ("centre",)},
     "clinical: column 'centre' names the cases or their centre; declare other columns"),
])
def test_a_malformed_case_table_is_refused_in_one_line(tmp_path: Path, text: str | None, declared: dict,
                                                        message: str) -> None:
    path = tmp_path / "cases.csv" if text is None else write_table(tmp_path, text)
    with pytest.raises(UserError) as info:
        read_case_table(path, **declared)
    assert message in str(info.value) and "\n" not in str(info.value)


def image(array: np.ndarray, spacing=(2.0, 2.0, 2.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    result = sitk.GetImageFromArray(array)
    result.SetSpacing(spacing)
    result.SetOrigin(origin)
    return result


def test_resampling_2_mm_to_4_mm_averages_each_2x2x2_block_and_keeps_labels() -> None:
    values = np.arange(8 * 10 * 12, dtype=np.float32).reshape(8, 10, 12)
    out = resampled(image(values, origin=(-11.0, -9.0, -7.0)), (4.0, 4.0, 4.0), labels=False)
    # the new voxel centres lie halfway between old ones: linear interpolation is the mean of each 2x2x2 block
    expected = values.reshape(4, 2, 5, 2, 6, 2).mean(axis=(1, 3, 5))
    assert out.GetSize() == (6, 5, 4) and out.GetSpacing() == (4.0, 4.0, 4.0)
    assert out.GetOrigin() == (-10.0, -8.0, -6.0)  # the first voxel's outer corner stays at (-12, -10, -8)
    np.testing.assert_allclose(sitk.GetArrayFromImage(out), expected, rtol=1e-6)
    assert sitk.GetArrayFromImage(out)[0, 0, 0] == pytest.approx((0 + 1 + 12 + 13 + 120 + 121 + 132 + 133) / 8)
    label = np.zeros((8, 10, 12), np.uint8)
    label[2:6, 4:8, 0:4] = 2  # whole 2x2x2 blocks: blocks (1..2, 2..3, 0..1) on the 4 mm grid
    out_label = sitk.GetArrayFromImage(resampled(image(label), (4.0, 4.0, 4.0), labels=True))
    expected_label = np.zeros((4, 5, 6), np.uint8)
    expected_label[1:3, 2:4, 0:2] = 2
    np.testing.assert_array_equal(out_label, expected_label)


def test_a_volume_already_on_the_target_spacing_is_kept_voxel_for_voxel() -> None:
    original = image(np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32), spacing=(1.5, 1.0, 3.0))
    assert resampled(original, (3.0, 1.0, 1.5 + 5e-7), labels=False) is original
    assert resampled(original, (3.0, 1.0, 1.5 + 5e-6), labels=False) is not original
    anisotropic = resampled(original, (3.0, 2.0, 1.5), labels=False)  # only y changes: 6 voxels of 1 mm -> 3 of 2
    assert anisotropic.GetSize() == (7, 3, 5)


def test_the_grid_check_names_what_differs_from_the_label() -> None:
    label = image(np.zeros((4, 5, 6), np.uint8))
    assert grid_difference(image(np.zeros((4, 5, 6), np.float32), origin=(0.0, 0.0, 0.0005)), label) is None
    assert grid_difference(image(np.zeros((4, 5, 7))), label) == (
        "size (4, 5, 7) differs from the label's (4, 5, 6) (z, y, x)")
    assert grid_difference(image(np.zeros((4, 5, 6)), spacing=(2.0, 2.0, 2.5)), label) == (
        "spacing (2, 2, 2.5) differs from the label's (2, 2, 2) mm (x, y, z)")
    assert grid_difference(image(np.zeros((4, 5, 6)), origin=(0.0, 3.0, 0.0)), label) == (
        "origin (0, 3, 0) differs from the label's (0, 0, 0) mm (x, y, z)")
    flipped = image(np.zeros((4, 5, 6)))
    flipped.SetDirection((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0))
    assert grid_difference(flipped, label).startswith("direction (-1, 0, 0, 0, 1, 0, 0, 0, 1) differs")


def test_the_default_target_is_the_median_spacing_per_axis(tmp_path: Path) -> None:
    paths = []
    for index, spacing in enumerate([(1.0, 2.0, 3.0), (1.0, 4.0, 5.0), (2.0, 2.0, 9.0)]):  # x y z
        paths.append(tmp_path / f"{index}.nii.gz")
        sitk.WriteImage(image(np.zeros((2, 2, 2), np.uint8), spacing=spacing), str(paths[-1]))
    (tmp_path / "broken.nii.gz").write_bytes(b"not an image")
    assert median_spacing([*paths, tmp_path / "broken.nii.gz"]) == (5.0, 2.0, 1.0)  # z y x; unreadable left out


@pytest.mark.parametrize("text", ["4,4", "4,0,4", "a,b,c", "4,4,4,4", "nan,1,1"])
def test_a_spacing_must_be_three_positive_numbers(text: str) -> None:
    with pytest.raises(UserError, match=rf"^--spacing: expected three positive numbers Z,Y,X in mm \(e.g. 3,2,2\), "
                                        rf"got '{text}'$"):
        parse_spacing(text, "--spacing")
