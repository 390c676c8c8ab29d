"""The shared pre-trained bases every strategy starts from, trained once per (seed, preset, data) and cached.

``ct``: a 1-channel UNETR trained on the pre-training centres' CT (PEMMA's and full fine-tuning's start).
``fusion``: a 2-channel UNETR trained on the same cases with CT and PET (early fusion's start).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from avalanche.benchmarks import benchmark_from_datasets
from avalanche.training.plugins import EvaluationPlugin
from monai.networks.nets import UNETR

from pemma_cl.data.dataset import avalanche_dataset
from pemma_cl.data.records import MODALITIES, CaseRecord
from pemma_cl.models.backbones import MaskedInputUNETR, build_unetr
from pemma_cl.models.presets import Preset
from pemma_cl.training.progress import ProgressPlugin
from pemma_cl.training.template import SegmentationTemplate

#: Task label of the pre-training data (not an experience of the stream).
PRETRAIN_TASK = 0

#: Input channels and the modalities each base is trained on.
BASE_KINDS: dict[str, tuple[int, ...]] = {"ct": (0,), "fusion": (0, 1)}


def _fingerprint(cases: list[CaseRecord]) -> str:
    """A hash of the cases' ids and voxels, so a changed data set never reuses a stale base."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(case.case_id.encode())
        for array in (case.ct, case.pet, case.label):
            digest.update(array.tobytes())
    return digest.hexdigest()


class SharedBases:
    """Trains each base on first request and caches its weights on disk.

    Args:
        preset: network and training settings.
        pretrain_cases: the pre-training cases (train split of the stream's pre-training centres).
        seed: run seed.
        device: where to train.
        cache_dir: folder of cached weights; ``None`` disables the disk cache.
        data_key: identifies the data source (part of the cache key).
    """

    def __init__(self, preset: Preset, pretrain_cases: list[CaseRecord], seed: int,
                 device: torch.device, cache_dir: Path | None, data_key: str) -> None:
        self.preset = preset
        self.pretrain_cases = pretrain_cases
        self.seed = seed
        self.device = device
        self.cache_dir = cache_dir
        self._key_parts = {"preset": preset.to_dict(), "seed": seed, "cases": _fingerprint(pretrain_cases), "data": data_key,
                           "torch": torch.__version__}
        self._weights: dict[str, dict] = {}

    def cache_path(self, kind: str) -> Path | None:
        """Where the ``kind`` base is cached (its name holds a hash of everything it depends on)."""
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(json.dumps({**self._key_parts, "kind": kind}, sort_keys=True).encode()).hexdigest()
        return self.cache_dir / f"base-{kind}-{self.preset.name}-seed{self.seed}-{digest[:12]}.pt"

    def get(self, kind: str) -> UNETR:
        """A fresh UNETR holding the ``kind`` base's pre-trained weights."""
        if kind not in self._weights:
            path = self.cache_path(kind)
            if path is not None and path.exists():
                self._weights[kind] = torch.load(path, map_location="cpu", weights_only=True)
            else:
                self._weights[kind] = self._train(kind)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    partial = path.with_suffix(".partial")
                    torch.save(self._weights[kind], partial)
                    os.replace(partial, path)
        unetr = build_unetr(self.preset, in_channels=len(BASE_KINDS[kind]))
        unetr.load_state_dict(self._weights[kind])
        return unetr

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
        model = MaskedInputUNETR(build_unetr(self.preset, in_channels=len(channels)), channels)
        strategy = SegmentationTemplate(
            model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=self.preset.lr),
            roi_size=self.preset.img_size, modality_dropout=0.0, seed=self.seed,
            train_mb_size=self.preset.batch_size, train_epochs=self.preset.pretrain_epochs, device=self.device,
            plugins=[ProgressPlugin(f"base {kind}", ["pretrain"])], evaluator=EvaluationPlugin(loggers=[]),
        )
        data = avalanche_dataset(self.pretrain_cases, [MODALITIES[c] for c in channels], PRETRAIN_TASK)
        strategy.train(benchmark_from_datasets(train=[data]).train_stream[0])
        return {k: v.detach().cpu().clone() for k, v in model.unetr.state_dict().items()}
