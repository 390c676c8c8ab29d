"""The resolved configuration of one run (:class:`RunConfig`) and the choices it is checked against; stream files
are read by :mod:`pemma_cl.streams.spec`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pemma_cl.core.errors import UserError
from pemma_cl.core.precision import FP32, PRECISIONS
from pemma_cl.core.task_kinds import PROGNOSIS
from pemma_cl.data.hecktor import layout as hecktor_layout
from pemma_cl.data.nnunet import layout as nnunet_layout
from pemma_cl.data.records import EHR
from pemma_cl.data.splits import EVAL_SPLITS
from pemma_cl.models.presets import BACKBONE_NAMES
from pemma_cl.models.presets import PRESETS as MODEL_PRESETS
from pemma_cl.streams.spec import StreamSpec, is_int, listed

#: Strategies a run compares when none is named.
DEFAULT_STRATEGIES: tuple[str, ...] = ("pemma-lora", "pemma-dora", "pemma-lora-shared", "pemma-dora-shared",
                                       "full-finetune", "early-fusion")
#: Model and training size presets (see :mod:`pemma_cl.models.presets`).
PRESETS: tuple[str, ...] = tuple(MODEL_PRESETS)
#: Network families (see :mod:`pemma_cl.models.backbones`).
BACKBONES: tuple[str, ...] = BACKBONE_NAMES
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
#: What to do with bad cases of a HECKTOR folder or nnU-Net dataset: stop and list them, or leave them out and record
#: why.
ON_BAD_CASE: tuple[str, ...] = ("refuse", "skip")
#: Avalanche loggers a run can pass to every strategy (see :mod:`pemma_cl.run.loggers`).
LOGGERS: tuple[str, ...] = ("tensorboard", "csv", "wandb", "text")
#: The strategy paired differences are taken against, when the run has it.
DEFAULT_REFERENCE = "early-fusion"
#: The most seeds ``run --decide`` adds when ``--max-seeds`` is not given (looks at 3, 5, 8 and 12 seeds).
DEFAULT_MAX_SEEDS = 12


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``pemma-bench run`` was asked to do, validated on construction.

    Attributes:
        stream: The stream to train on.
        strategies: Strategy names, in the order they run; checked against the registry by the caller.
        seeds: Distinct non-negative random seeds, one sub-run each (a seed draws the synthetic cohort, the
            train/validation/test split, every initialisation and the data order).
        preset: One of :data:`PRESETS`.
        data: ``synthetic``, ``hecktor:DIR`` or ``nnunet:DIR``.
        results_dir: Folder under which the run folder is created.
        epochs: Epochs per experience; ``None`` keeps the preset's default.
        device: One of :data:`DEVICES`.
        plugin_files: Extra strategy plugin files that were loaded.
        on_bad_case: One of :data:`ON_BAD_CASE`: what to do with bad cases of a HECKTOR folder or nnU-Net dataset.
        cache: Prepared cache of a HECKTOR folder or nnU-Net dataset (``prepare --cache``); ``None``: the folder's
            default cache.
        eval_on: ``test`` (train on training + validation cases, report the test cases: the numbers to publish)
            or ``val`` (train on training cases only, report the validation cases: for choosing settings).
        reference: The strategy every other one is compared with, seed by seed (paired differences); must be
            one of ``strategies``, or None for no paired comparison.
        loggers: Avalanche loggers (from :data:`LOGGERS`) every strategy reports to.
        strategy_options: Resolved options of each strategy that declares options (strategy -> option -> value;
            see :mod:`pemma_cl.strategy_api.options`).
        backbone: One of :data:`BACKBONES`: the network family every strategy and base is built on.
        precision: One of :data:`PRECISIONS`: the arithmetic of every forward pass of the strategies and bases
            (see :mod:`pemma_cl.core.precision`).
        max_seeds: For ``run --decide``: the most seeds the run may add, look by look, until its stream's primary
            contrasts are decided (:mod:`pemma_cl.stats.sequential`); ``seeds`` then lists the seeds it may run
            (``S .. S + max_seeds - 1``, S its first seed, 0 unless ``--first-seed``), and, once published, those it
            ran. None: a run of exactly ``seeds``.
        decide_contrasts: For ``run --decide``: the names of the stream's primary contrasts it decides (``--contrast``);
            empty: all of them.
        case_table: An nnU-Net dataset's case table; ``None``: ``DIR/cases.csv``.
        survival: The case table's ``(time, event)`` columns (a prognosis endpoint); ``None``: none.
        clinical: The case table's clinical columns (numbers, kept on each case).
        spacing: The target spacing (mm, z y x) an nnU-Net dataset was prepared for; ``None``: its median spacing.
        scored_cells: The ``(group, input)`` pairs of evaluation cells the run scores (groups
            :data:`~pemma_cl.evaluation.scoring.CELL_GROUPS`: ``final``, ``seen``, ``next``; inputs ``ct``, ``pet``,
            ``ctpet``); the other cells get no rows. Empty: every cell. A decide run names those its contrasts read
            (:mod:`pemma_cl.evaluation.scoring`).
    """

    stream: StreamSpec
    strategies: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    preset: str = "tiny"
    data: str = "synthetic"
    results_dir: Path = Path("results")
    epochs: int | None = None
    device: str = "auto"
    plugin_files: tuple[Path, ...] = ()
    on_bad_case: str = "refuse"
    cache: Path | None = None
    eval_on: str = "test"
    reference: str | None = None
    loggers: tuple[str, ...] = ()
    strategy_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    backbone: str = "unetr"
    precision: str = FP32
    max_seeds: int | None = None
    decide_contrasts: tuple[str, ...] = ()
    case_table: Path | None = None
    survival: tuple[str, str] | None = None
    clinical: tuple[str, ...] = ()
    spacing: tuple[float, float, float] | None = None
    scored_cells: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.strategies:
            raise UserError("strategies: expected at least one strategy name")
        repeated = sorted({name for name in self.strategies if self.strategies.count(name) > 1})
        if repeated:
            raise UserError(f"strategies: each strategy may be named once, got {', '.join(repeated)} twice")
        if not self.seeds or not all(is_int(seed) and seed >= 0 for seed in self.seeds):
            raise UserError(f"seeds: expected one or more non-negative integers, got {list(self.seeds)!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise UserError(f"seeds: each seed may be named once, got {list(self.seeds)!r}")
        if self.reference is not None and self.reference not in self.strategies:
            raise UserError(f"reference: {self.reference!r} is not one of the run's strategies "
                            f"({', '.join(self.strategies)})")
        stray = [name for name in self.strategy_options if name not in self.strategies]
        if stray:
            raise UserError(f"strategy_options: {stray[0]!r} is not one of the run's strategies ({', '.join(self.strategies)})")
        unknown_loggers = [name for name in self.loggers if name not in LOGGERS]
        if unknown_loggers or len(set(self.loggers)) != len(self.loggers):
            raise UserError(f"loggers: expected distinct names from {listed(LOGGERS)}, got {list(self.loggers)!r}")
        if self.epochs is not None and (not is_int(self.epochs) or self.epochs < 1):
            raise UserError(f"epochs: expected a positive integer, got {self.epochs!r}")
        for setting, value, choices in (("preset", self.preset, PRESETS), ("device", self.device, DEVICES),
                                        ("backbone", self.backbone, BACKBONES),
                                        ("precision", self.precision, PRECISIONS),
                                      ("on_bad_case", self.on_bad_case, ON_BAD_CASE), ("eval_on", self.eval_on, EVAL_SPLITS)):
            if value not in choices:
                raise UserError(f"{setting}: expected one of {listed(choices)}, got {value!r}")
        if self.max_seeds is not None:
            from pemma_cl.stats.sequential import look_schedule  # scipy: only for --decide runs

            if not is_int(self.max_seeds):
                raise UserError(f"max_seeds: expected an integer, got {self.max_seeds!r}")
            look_schedule(self.max_seeds)
            first = self.seeds[0]
            if self.seeds != tuple(range(first, first + len(self.seeds))) or len(self.seeds) > self.max_seeds:
                raise UserError(f"seeds: a --decide run has seeds {first} .. {first + self.max_seeds - 1} in order, "
                                f"got {list(self.seeds)!r}")
        if self.decide_contrasts and self.max_seeds is None:
            raise UserError("decide_contrasts: only for a --decide run (max_seeds)")
        if len(set(self.decide_contrasts)) != len(self.decide_contrasts):
            raise UserError(f"decide_contrasts: each contrast may be named once, got {list(self.decide_contrasts)!r}")
        _check_scored_cells(self.scored_cells)
        _check_data_source(self.data)
        if self.cache is not None and not self.data.startswith(("hecktor:", "nnunet:")):
            raise UserError("cache: a prepared cache only applies to '--data hecktor:DIR' or '--data nnunet:DIR'")
        self._check_nnunet()

    @property
    def nnunet(self) -> nnunet_layout.NnunetSettings:
        """How the run reads an nnU-Net dataset besides its folder."""
        return nnunet_layout.NnunetSettings(self.case_table, self.survival, self.clinical, self.spacing)

    def _check_nnunet(self) -> None:
        """The nnU-Net settings, the dataset's ``dataset.json`` and case table, and the stream's selection against
        that table (before anything is trained)."""
        settings = {"case_table": self.case_table, "survival": self.survival, "clinical": self.clinical,
                    "spacing": self.spacing}
        if not self.data.startswith("nnunet:"):
            given = [name for name, value in settings.items() if value]
            if given:
                raise UserError(f"{given[0]}: only applies to '--data nnunet:DIR'")
            return
        if self.survival is not None and (len(self.survival) != 2 or len(set(self.survival)) != 2):
            raise UserError(f"survival: expected two distinct columns TIME,EVENT, got {list(self.survival)!r}")
        if len(set(self.clinical)) != len(self.clinical):
            raise UserError(f"clinical: expected distinct columns, got {list(self.clinical)!r}")
        if self.spacing is not None and (len(self.spacing) != 3 or not all(0 < v < float("inf")
                                                                            for v in self.spacing)):
            raise UserError(f"spacing: expected three positive numbers (mm, z y x), got {list(self.spacing)!r}")
        for index, exp in enumerate(self.stream.experiences):
            if exp.kind == PROGNOSIS and EHR in exp.modalities and not self.clinical:
                raise UserError(f"{self.stream.path}: experiences[{index}].modalities: {EHR!r} needs the case "
                                "table's clinical columns; declare them with --clinical COL,COL")
        from pemma_cl.data.nnunet.table import read_case_table  # pandas: only for nnU-Net data
        from pemma_cl.streams.selection import check_selection

        root = Path(self.data.partition(":")[2])
        table = read_case_table(nnunet_layout.case_table_path(root, self.case_table), self.survival, self.clinical)
        check_selection(self.stream, table.columns, table.selection_rows())

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as plain JSON/YAML-safe values (lists, strings, numbers, None)."""
        return _plain(asdict(self))

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        """The configuration :meth:`to_dict` wrote (a run folder's ``config.json``), validated again.

        Raises:
            UserError: If a field is missing or malformed.
        """
        try:
            return cls(stream=StreamSpec.from_dict(raw["stream"]), strategies=tuple(raw["strategies"]),
                       seeds=tuple(raw["seeds"]), preset=raw["preset"], data=raw["data"], results_dir=Path(raw["results_dir"]),
                       epochs=raw["epochs"], device=raw["device"],
                       plugin_files=tuple(Path(p) for p in raw["plugin_files"]), on_bad_case=raw["on_bad_case"],
                       eval_on=raw["eval_on"], reference=raw["reference"], loggers=tuple(raw["loggers"]),
                       cache=None if raw["cache"] is None else Path(raw["cache"]),
                       strategy_options=raw.get("strategy_options", {}), backbone=raw.get("backbone", "unetr"),
                       precision=raw.get("precision", FP32), max_seeds=raw.get("max_seeds"),
                       decide_contrasts=tuple(raw.get("decide_contrasts", ())),
                       # a run stored before nnU-Net data has none of these
                       case_table=None if raw.get("case_table") is None else Path(raw["case_table"]),
                       survival=None if raw.get("survival") is None else tuple(raw["survival"]),
                       clinical=tuple(raw.get("clinical", ())),
                       spacing=None if raw.get("spacing") is None else tuple(raw["spacing"]),
                       scored_cells=tuple(tuple(cell) for cell in raw.get("scored_cells", ())))
        except (KeyError, TypeError) as exc:
            raise UserError(f"config.json: missing or malformed field {exc}; expected one written by "
                            "'pemma-bench run'") from None


def _check_scored_cells(cells: tuple[tuple[str, str], ...]) -> None:
    from pemma_cl.evaluation.scoring import CELL_GROUPS, INPUTS

    for cell in cells:
        if not isinstance(cell, tuple) or len(cell) != 2 or cell[0] not in CELL_GROUPS or cell[1] not in INPUTS:
            raise UserError(f"scored_cells: expected (group, input) pairs, groups from {listed(CELL_GROUPS)} and "
                            f"inputs from {listed(INPUTS)}, got {cell!r}")
    if len(set(cells)) != len(cells):
        raise UserError(f"scored_cells: each (group, input) pair may be named once, got {[list(c) for c in cells]!r}")


def _check_data_source(data: str) -> None:
    if data == "synthetic":
        return
    kind, colon, folder = data.partition(":")
    if kind not in ("hecktor", "nnunet") or not colon or (kind == "nnunet" and not folder):
        raise UserError(f"data: expected 'synthetic', 'hecktor:DIR' or 'nnunet:DIR', got {data!r}")
    if kind == "hecktor" and (not folder or not Path(folder).is_dir()):
        raise UserError(f"data: HECKTOR folder {folder!r} does not exist")
    layout = hecktor_layout if kind == "hecktor" else nnunet_layout
    problem = layout.layout_problem(Path(folder))
    if problem:
        raise UserError(f"data: {problem}")
    if kind == "nnunet":
        nnunet_layout.read_dataset_json(Path(folder))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value
