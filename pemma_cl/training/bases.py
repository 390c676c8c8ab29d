"""The shared pre-trained bases every strategy starts from, trained once per recipe and data, and cached.

``ct``: a 1-channel network of the preset's backbone trained on the pre-training cases' CT (PEMMA's and full
fine-tuning's start). ``fusion``: a 2-channel (CT, PET) one, early fusion's start. Both get exactly the
modalities the stream's ``pretrain.modalities`` declares:

* ``[ct]`` (the pre-training centres have no PET): the fusion base is the CT base with a PET input channel
  whose weights are zero. Trained on those cases it could learn nothing else (its PET channel would be all
  zeros), so it is derived, not trained: it computes exactly the CT base's function, blind to PET, until PET
  first reaches it in the stream; every strategy then starts from the same function.
* ``[ct, pet]`` (a PET-everywhere reference): the fusion base is trained on CT and PET.

A cached base is reused only when everything that shaped it is unchanged: the recipe (network, loss, optimiser,
epochs, batch, modalities, channels), the data (case ids and voxels), the seed and the source code of the
modules that train it (:data:`RECIPE_MODULES`). Any change gives a new cache file, never a stale base.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import io
import json
import random
import sys
from pathlib import Path
from typing import Any

import monai
import numpy as np
import torch
from avalanche.benchmarks import benchmark_from_datasets
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from pemma_cl.core.files import write_atomically
from pemma_cl.core.locks import held
from pemma_cl.core.precision import FP32
from pemma_cl.data.dataset import avalanche_dataset
from pemma_cl.data.patches import RANDOM
from pemma_cl.data.records import MODALITIES, CaseRecord
from pemma_cl.models.backbones import MaskedInputNetwork, build_network, get_backbone
from pemma_cl.models.presets import Preset
from pemma_cl.training import template
from pemma_cl.training.progress import ProgressPlugin
from pemma_cl.training.template import SegmentationTemplate

#: Task label of the pre-training data (not an experience of the stream).
PRETRAIN_TASK = 0

#: Input channels (0 CT, 1 PET) of each base's network: CT's alone, and every modality's.
BASE_KINDS: dict[str, tuple[int, ...]] = {"ct": (MODALITIES.index("ct"),), "fusion": tuple(range(len(MODALITIES)))}

#: The preset's fields that shape a base's network (the rest of a preset, such as the epochs per experience, does not
#: change a base and so is not part of its cache key).
NETWORK_FIELDS: tuple[str, ...] = ("backbone", "img_size", "hidden_size", "mlp_dim", "num_heads", "feature_size")

#: Modules whose source code shapes a base (training loop, loss, network, input normalisation); a change to
#: any of them changes every base's cache key.
RECIPE_MODULES: tuple[str, ...] = (
    __name__, "pemma_cl.training.template", "pemma_cl.models.backbones", "pemma_cl.models.backbones.unetr",
    "pemma_cl.models.backbones.swin_unetr", "pemma_cl.data.dataset", "pemma_cl.data.patches",
    "pemma_cl.training.single_case",
)


def _fingerprint(cases: list[CaseRecord]) -> str:
    """A hash of the cases' ids and voxels, so a changed data set never reuses a stale base."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(case.case_id.encode())
        for array in (case.ct, case.pet, case.label):
            digest.update(array.tobytes())
    return digest.hexdigest()


@functools.cache
def _source_digest(module_names: tuple[str, ...]) -> str:
    """Hash of the modules' source as this process first reads it (an edit while it runs changes nothing)."""
    digest = hashlib.sha256()
    for name in module_names:
        digest.update(inspect.getsource(sys.modules[name]).encode())
    return digest.hexdigest()


def _with_zero_input_channels(weights: dict, shapes: dict[str, torch.Size]) -> dict:
    """``weights`` of a network with fewer input channels, widened to ``shapes``: each tensor whose input-channel
    dimension (dim 1) is larger there gets its extra input channels' weights set to zero; all else is copied."""
    widened = {}
    for key, shape in shapes.items():
        value = weights[key]
        if value.shape == shape:
            widened[key] = value.clone()
        elif value.ndim == len(shape) > 1 and value.shape[0] == shape[0] and value.shape[2:] == shape[2:]:
            widened[key] = torch.zeros(shape, dtype=value.dtype)
            widened[key][:, :value.shape[1]] = value
        else:
            raise ValueError(f"cannot widen {key} from {tuple(value.shape)} to {tuple(shape)}")
    return widened


class SharedBases:
    """Trains each base on first request and caches its weights on disk.

    Args:
        preset: network and training settings.
        pretrain_cases: the pre-training cases (training cases of the stream's pre-training centres).
        seed: run seed.
        device: where to train.
        cache_dir: folder of cached weights; ``None`` disables the disk cache.
        data_key: identifies the data source (part of the cache key).
        num_classes: the networks' output channels: background plus one per structure of the data
            (:attr:`~pemma_cl.data.description.DatasetDescription.num_classes`; part of the cache key).
        modalities: the modalities the pre-training cases have (the stream's ``pretrain.modalities``);
            must include ``ct``.
        precision: arithmetic of the pre-training forward passes (one of :data:`~pemma_cl.core.precision.PRECISIONS`).
    """

    def __init__(self, preset: Preset, pretrain_cases: list[CaseRecord], seed: int,
                 device: torch.device, cache_dir: Path | None, data_key: str, num_classes: int,
                 modalities: tuple[str, ...] = ("ct",), precision: str = FP32) -> None:
        if "ct" not in modalities or set(modalities) - set(MODALITIES):
            raise ValueError(f"pre-training modalities must include ct and be among {MODALITIES}, got {modalities}")
        self.preset = preset
        self.num_classes = num_classes
        self.pretrain_cases = pretrain_cases
        self.seed = seed
        self.device = device
        self.cache_dir = cache_dir
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        self.precision = precision
        self._data = {"cases": _fingerprint(pretrain_cases), "data": data_key}
        self._weights: dict[str, dict] = {}

    def recipe(self, kind: str) -> dict[str, Any]:
        """Everything that shapes the ``kind`` base: the cache key (also written beside the weights)."""
        channels = BASE_KINDS[kind]
        return {
            "kind": kind, "channels": list(channels),
            "modalities": [m for m in self.modalities if MODALITIES.index(m) in channels],
            "network": {**{field: getattr(self.preset, field) for field in NETWORK_FIELDS},
                        "num_classes": self.num_classes},
            "epochs": self.preset.pretrain_epochs, "batch": self.preset.batch_size,
            "loss": {"class": "monai.losses.DiceCELoss", **template.LOSS_KWARGS},
            "optimizer": {"class": "torch.optim.AdamW", "lr": self.preset.pretrain_lr, **template.OPTIMIZER_KWARGS},
            "modality_dropout": 0.0, "precision": self.precision, "seed": self.seed, **self._data,
            "code": _source_digest(RECIPE_MODULES), "torch": torch.__version__, "monai": monai.__version__,
        }

    def cache_path(self, kind: str) -> Path | None:
        """Where the ``kind`` base is cached (its name holds a hash of :meth:`recipe`); None if it is not cached
        (no cache folder, or a base derived from the CT base)."""
        if self.cache_dir is None or not self.is_trained(kind):
            return None
        digest = hashlib.sha256(json.dumps(self.recipe(kind), sort_keys=True).encode()).hexdigest()
        return self.cache_dir / f"base-{kind}-{self.preset.name}-seed{self.seed}-{digest[:12]}.pt"

    def is_trained(self, kind: str) -> bool:
        """Whether the ``kind`` base is trained on its own (else derived from the CT base, see the module doc)."""
        return kind == "ct" or "pet" in self.modalities

    def get(self, kind: str) -> nn.Module:
        """A fresh network of the preset's backbone holding the ``kind`` base's pre-trained weights."""
        network = build_network(self.preset, len(BASE_KINDS[kind]), self.num_classes)
        network.load_state_dict(self._weights_of(kind))
        return network

    def _weights_of(self, kind: str) -> dict:
        if kind not in self._weights:
            if not self.is_trained(kind):
                self._weights[kind] = _with_zero_input_channels(self._weights_of("ct"), self._shapes(kind))
            else:
                self._weights[kind] = self._load_or_train(kind)
        return self._weights[kind]

    def _shapes(self, kind: str) -> dict[str, torch.Size]:
        # Without a draw from the global random state (one here would make a strategy's numbers depend on whether
        # another strategy asked for this base first): on the meta device (no memory, no initialisation) where the
        # backbone can be built there, else on the CPU with the generator's state restored.
        device = "meta" if get_backbone(self.preset.backbone).builds_on_meta else "cpu"
        with torch.device(device), torch.random.fork_rng(devices=[]):
            network = build_network(self.preset, len(BASE_KINDS[kind]), self.num_classes)
            return {k: v.shape for k, v in network.state_dict().items()}

    def _load_or_train(self, kind: str) -> dict:
        """The cached weights, or new ones trained and cached. Under the entry's lock, so that of several processes
        sharing the cache (runs on one results folder, workers of one run) one trains and the others wait and load."""
        path = self.cache_path(kind)
        if path is None:
            return self._train(kind)
        with held(path.with_suffix(".lock"), f"the cached base '{path}'"):
            weights = self._load(path)
            if weights is None:
                weights = self._train(kind)
                self._store(path, kind, weights)
        return weights

    def _load(self, path: Path) -> dict | None:
        """The weights cached in ``path``; None when there are none, or (said on one line) when the entry is
        corrupt or incomplete: no checksum beside the weights, or weights whose bytes do not match it."""
        record = path.with_suffix(".json")
        if not path.exists() and not record.exists():
            return None
        try:
            checksum = json.loads(record.read_text(encoding="utf-8"))["weights_sha256"]
            data = path.read_bytes()
        except (OSError, ValueError, KeyError, TypeError):
            return _corrupt(path, f"it lacks its weights or its record {record.name} with their checksum")
        if hashlib.sha256(data).hexdigest() != checksum:
            return _corrupt(path, f"its weights do not match the checksum in {record.name}")
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def _store(self, path: Path, kind: str, weights: dict) -> None:
        """Cache ``weights`` in ``path`` and their recipe and checksum beside it (each file renamed into place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(weights, buffer)
        data = buffer.getvalue()
        write_atomically(path, lambda file: file.write(data))
        # The thread count changes the float sums (docs/guide/executors.md) but not the recipe: a cached base is reused
        # whatever the current count, and its record says which count trained it.
        record = {**self.recipe(kind), "weights_sha256": hashlib.sha256(data).hexdigest(),
                  "trained_with_threads": torch.get_num_threads()}
        text = json.dumps(record, indent=2) + "\n"
        write_atomically(path.with_suffix(".json"), lambda file: file.write(text.encode()))

    def _train(self, kind: str) -> dict:
        """Train a base without touching the global random state, so a run draws the same numbers
        afterwards whether the base came from training or from the cache."""
        python_state, numpy_state = random.getstate(), np.random.get_state()
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            weights = self._train_forked(kind)
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        return weights

    def _train_forked(self, kind: str) -> dict:
        channels = BASE_KINDS[kind]
        torch.manual_seed(self.seed)
        model = MaskedInputNetwork(build_network(self.preset, len(channels), self.num_classes), channels)
        strategy = SegmentationTemplate(
            model=model, optimizer=template.make_optimizer(model.parameters(), self.preset.pretrain_lr),
            roi_size=self.preset.img_size, modality_dropout=0.0, seed=self.seed, precision=self.precision,
            train_mb_size=self.preset.batch_size, train_epochs=self.preset.pretrain_epochs, device=self.device,
            plugins=[ProgressPlugin(f"base {kind}", ["pretrain"], [len(self.pretrain_cases)])], evaluator=EvaluationPlugin(loggers=[]),
        )
        # Random patches of volumes larger than the network's input, as the stream's segmentation experiences train.
        data = avalanche_dataset(self.pretrain_cases, self.recipe(kind)["modalities"], PRETRAIN_TASK,
                                 patch=self.preset.img_size, sampling=RANDOM)
        strategy.train(benchmark_from_datasets(train=[data]).train_stream[0])
        return {k: v.detach().cpu().clone() for k, v in model.network.state_dict().items()}


def _corrupt(path: Path, reason: str) -> None:
    """Say on one line that the cache entry ``path`` cannot be used (it is trained again)."""
    print(f"cached base '{path}' is corrupt or incomplete ({reason}); training it again", file=sys.stderr, flush=True)
