"""Bytes a plugin keeps to remember the past (its ``stored_bytes()``, summed into a run's ``past_bytes``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch


def tensor_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes held by ``tensors``."""
    return sum(t.numel() * t.element_size() for t in tensors)


def dataset_bytes(dataset: Sequence) -> int:
    """Bytes of the tensors of every item of ``dataset`` (input, label and modality mask of each case)."""
    return sum(tensor_bytes(v for v in dataset[i] if isinstance(v, torch.Tensor)) for i in range(len(dataset)))
