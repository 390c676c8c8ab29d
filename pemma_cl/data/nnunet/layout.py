"""Names and paths of a dataset in nnU-Net's raw layout, its ``dataset.json`` and its prepared cache.

The folder (nnU-Net v2's raw layout plus this suite's case table)::

    dataset.json                  {"channel_names": {"0": "CT", "1": "PET"}, "labels": {"background": 0, "lesion": 1},
                                   "numTraining": N, "file_ending": ".nii.gz"}
    imagesTr/<CASE>_0000.nii.gz   one file per channel (its index in four digits), all on the label's grid
    labelsTr/<CASE>.nii.gz        0 background, 1..K the structures
    imagesTs/, labelsTs/          optional: the test cases (used as the test set when both folders exist)
    cases.csv                     case_id, centre and any grouping columns (tracer, scanner, ...); survival and
                                  clinical columns are declared (``--survival``, ``--clinical``), never guessed

The CT channel is the one named ``CT``, the PET channel the one named ``PET`` or ``PT`` (any letter case); other
channels are ignored. This module is imported by the command line and by :mod:`pemma_cl.run.config`, so it stays
light (no numpy, pandas or SimpleITK).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pemma_cl.core.errors import UserError

DATASET_JSON = "dataset.json"
IMAGES_TR, LABELS_TR = "imagesTr", "labelsTr"
IMAGES_TS, LABELS_TS = "imagesTs", "labelsTs"
#: The parts of a dataset: training cases (imagesTr/labelsTr) and test cases (imagesTs/labelsTs).
TRAIN, TEST = "train", "test"
FOLDERS: dict[str, tuple[str, str]] = {TRAIN: (IMAGES_TR, LABELS_TR), TEST: (IMAGES_TS, LABELS_TS)}
#: The case table's default name (inside the dataset folder) and the column naming each case.
CASE_TABLE = "cases.csv"
CASE_ID_COLUMN = "case_id"
#: The channel names (upper case) that make a channel the CT or the PET image.
CHANNEL_NAMES: dict[str, tuple[str, ...]] = {"ct": ("CT",), "pet": ("PET", "PT")}
REQUIRED_KEYS: tuple[str, ...] = ("channel_names", "labels", "file_ending")

#: Subfolder of the dataset folder holding the prepared cache of each target spacing.
CACHE_DIR = ".pemma_cache"
REPORT_CSV = "prepare_report.csv"
#: Statuses in the report: prepared by this run, prepared by an earlier run, not usable.
STATUS_OK, STATUS_CACHED, STATUS_BAD = "ok", "cached", "bad"

_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class DatasetJson:
    """What ``dataset.json`` says.

    Attributes:
        path: the file.
        name: the dataset's ``name``, else its folder's name.
        channels: ``{"ct": index, "pet": index}``: the channel of each image modality.
        structures: ``{label value: name}`` of the foreground labels (1..K).
        file_ending: the image files' ending, e.g. ``.nii.gz``.
        num_training: ``numTraining`` (None when absent).
    """

    path: Path
    name: str
    channels: dict[str, int]
    structures: dict[int, str]
    file_ending: str
    num_training: int | None

    @property
    def label_values(self) -> tuple[int, ...]:
        """Every value a label may hold: 0 (background) and the structures'."""
        return (0, *self.structures)


@dataclass(frozen=True)
class NnunetSettings:
    """How a run reads an nnU-Net dataset besides its folder (``run``'s and ``prepare``'s options).

    Attributes:
        case_table: the case table; None: ``DIR/cases.csv``.
        survival: the case table's ``(time, event)`` columns; None: no survival endpoint.
        clinical: the case table's clinical columns (numbers).
        spacing: the target spacing (mm, z y x); None: the dataset's median spacing.
    """

    case_table: Path | None = None
    survival: tuple[str, str] | None = None
    clinical: tuple[str, ...] = ()
    spacing: tuple[float, float, float] | None = None


def read_dataset_json(root: Path) -> DatasetJson:
    """Read and check ``root/dataset.json``.

    Raises:
        UserError: If the file is missing or unreadable, lacks a required key, has no CT or no PET channel, or its
            labels are not background 0 plus structures 1..K.
    """
    path = root / DATASET_JSON
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: not found; expected nnU-Net's dataset.json with the keys "
                        f"{_listed(REQUIRED_KEYS)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a JSON object with the keys {_listed(REQUIRED_KEYS)}")
    missing = [key for key in REQUIRED_KEYS if key not in raw]
    if missing:
        raise UserError(f"{path}: missing key {missing[0]!r}; expected the keys {_listed(REQUIRED_KEYS)}")
    ending = raw["file_ending"]
    if not isinstance(ending, str) or not ending.startswith(".") or len(ending) < 2:
        raise UserError(f"{path}: file_ending: expected a file ending such as '.nii.gz', got {ending!r}")
    count = raw.get("numTraining")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise UserError(f"{path}: numTraining: expected a non-negative integer, got {count!r}")
    name = raw.get("name")
    return DatasetJson(path=path, name=name.strip() if isinstance(name, str) and name.strip() else root.resolve().name,
                       channels=find_channels(raw["channel_names"], path), structures=_structures(raw["labels"], path),
                       file_ending=ending, num_training=count)


def find_channels(channel_names: Any, path: Path) -> dict[str, int]:
    """``{"ct": index, "pet": index}`` from ``channel_names`` (``{"0": "CT", "1": "PET"}``), matched by name.

    Raises:
        UserError: If the mapping is malformed, or has no CT or no PET channel, or two of either.
    """
    example = '{"0": "CT", "1": "PET"}'
    if not isinstance(channel_names, dict) or not channel_names or not all(
            isinstance(k, str) and k.isdigit() and isinstance(v, str) for k, v in channel_names.items()):
        raise UserError(f"{path}: channel_names: expected a mapping of channel index to name such as {example}, "
                        f"got {channel_names!r}")
    found: dict[str, int] = {}
    for modality, names in CHANNEL_NAMES.items():
        indices = sorted(int(k) for k, v in channel_names.items() if v.strip().upper() in names)
        if len(indices) > 1:
            raise UserError(f"{path}: channel_names: channels {indices[0]} and {indices[1]} are both "
                            f"{modality.upper()}; expected one")
        if indices:
            found[modality] = indices[0]
    lacking = [m for m in CHANNEL_NAMES if m not in found]
    if lacking:
        wanted = " and ".join(f"{m.upper()} (named {' or '.join(repr(n) for n in CHANNEL_NAMES[m])})"
                              for m in lacking)
        present = ", ".join(f"{k}: {v}" for k, v in sorted(channel_names.items(), key=lambda kv: int(kv[0])))
        raise UserError(f"{path}: channel_names: no {wanted} channel; the channels are [{present}]")
    return found


def _structures(labels: Any, path: Path) -> dict[int, str]:
    """``{value: name}`` of the foreground labels; background 0 plus values 1..K (nnU-Net's rule)."""
    example = '{"background": 0, "lesion": 1}'
    if not isinstance(labels, dict):
        raise UserError(f"{path}: labels: expected a mapping of name to value such as {example}, got {labels!r}")
    for name, value in labels.items():
        if isinstance(value, (list, tuple)):
            raise UserError(f"{path}: labels: {name!r} is a region (a list of label values); region-based labels "
                            "are not supported, give each structure one value")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 255:
            raise UserError(f"{path}: labels: {name!r}: expected an integer value in 0..255, got {value!r}")
    if labels.get("background") != 0:
        raise UserError(f"{path}: labels: expected 'background': 0, got {labels.get('background')!r}")
    structures = {value: str(name) for name, value in labels.items() if name != "background"}
    values = sorted(structures)
    if len(structures) != len(labels) - 1 or not values or values != list(range(1, len(values) + 1)):
        raise UserError(f"{path}: labels: expected background 0 and structures with the values 1..K, one each "
                        f"(nnU-Net's rule), got {dict(labels)}")
    bad = [name for name in structures.values() if not name.strip() or name == "aggregated"]
    if bad:
        raise UserError(f"{path}: labels: {bad[0]!r} cannot name a structure (empty, or 'aggregated', the name of "
                        "the mean over structures)")
    return {value: structures[value] for value in values}


def image_file(case_id: str, channel: int, file_ending: str, part: str = TRAIN) -> Path:
    """Path of one channel of a case, relative to the dataset folder."""
    return Path(FOLDERS[part][0]) / f"{case_id}_{channel:04d}{file_ending}"


def label_file(case_id: str, file_ending: str, part: str = TRAIN) -> Path:
    """Path of a case's label, relative to the dataset folder."""
    return Path(FOLDERS[part][1]) / f"{case_id}{file_ending}"


def has_test_part(root: Path) -> bool:
    """Whether the dataset has test cases: both imagesTs/ and labelsTs/ exist."""
    return all((root / folder).is_dir() for folder in FOLDERS[TEST])


def find_cases(root: Path, file_ending: str, part: str = TRAIN) -> list[str]:
    """Every case a part's image and label folders name (files not ending in ``file_ending`` are ignored), sorted."""
    images, labels = (root / folder for folder in FOLDERS[part])
    ids = set()
    for folder, channel_file in ((images, True), (labels, False)):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if not path.name.endswith(file_ending) or path.name.startswith("."):
                continue
            stem = path.name[:-len(file_ending)]
            match = _CHANNEL_FILE.match(stem) if channel_file else None
            if match or not channel_file:
                ids.add(match["case"] if match else stem)
    return sorted(ids)


def layout_problem(root: Path) -> str | None:
    """Why ``root`` is not a dataset in nnU-Net's raw layout, or ``None`` if its top level looks right."""
    if not root.is_dir():
        return f"nnU-Net dataset folder '{root}' does not exist"
    missing = [name for name in (IMAGES_TR, LABELS_TR) if not (root / name).is_dir()]
    if missing:
        return (f"'{root}' is not a dataset in nnU-Net's raw layout: {', '.join(missing)} missing "
                "(run 'pemma-bench synth --format nnunet --out DIR' to see the expected layout)")
    return None


def case_table_path(root: Path, case_table: Path | None) -> Path:
    """The case table: ``case_table`` when given, else ``root/cases.csv``."""
    return root / CASE_TABLE if case_table is None else case_table


def parse_spacing(text: str, field: str) -> tuple[float, float, float]:
    """``"Z,Y,X"`` (mm) -> ``(z, y, x)``.

    Raises:
        UserError: Naming ``field``, unless the text is three positive numbers separated by commas.
    """
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3 or not all(0 < v < float("inf") for v in values):
        raise UserError(f"{field}: expected three positive numbers Z,Y,X in mm (e.g. 3,2,2), got {text!r}")
    return values  # type: ignore[return-value]


def spacing_text(spacing: tuple[float, ...]) -> str:
    """``(4.0, 2.0, 2.0)`` -> ``4x2x2``: how folder names and messages write a spacing (z, y, x)."""
    return "x".join(f"{value:g}" for value in spacing)


def default_cache(root: Path, spacing: tuple[float, float, float]) -> Path:
    """Where ``prepare`` puts the cache of a target spacing unless told otherwise."""
    return root / CACHE_DIR / f"spacing{spacing_text(spacing)}"


def case_cache_file(cache: Path, case_id: str) -> Path:
    """The prepared ``.npz`` of one case."""
    return cache / f"{case_id}.npz"


def prepare_command(root: Path, case_table: Path | None = None, spacing: tuple[float, float, float] | None = None,
                    cache: Path | None = None) -> str:
    """The command that prepares ``root`` (quoted in messages); ``spacing`` None: the dataset's median."""
    command = f"pemma-bench prepare --data nnunet:{root}"
    if case_table is not None:
        command += f" --case-table {case_table}"
    if spacing is not None:
        command += f" --spacing {','.join(f'{v:g}' for v in spacing)}"
    return command + (f" --cache {cache}" if cache is not None else "")


def _listed(items: tuple[str, ...]) -> str:
    return f"[{', '.join(items)}]"
