"""pemma-cl: continual-learning benchmark suite for multi-modal head-and-neck tumour segmentation.

The Python API (:mod:`pemma_cl.api`): ``pemma_cl.centers(seed=0, preset="tiny")`` and one such factory per built-in
stream give an Avalanche benchmark; ``Scenario.base()`` the shared CT base; ``Scenario.scorer(name)`` a metric that
scores any Avalanche strategy on it; :func:`summarize` the summary of its rows. They are imported on first use, so
that ``import pemma_cl`` (and the command line's ``--help``) stays free of torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "Scenario": "pemma_cl.api", "StreamScorer": "pemma_cl.api", "scenario": "pemma_cl.api",
    "centers": "pemma_cl.api", "centers_ct": "pemma_cl.api", "paper": "pemma_cl.api", "paper_ct": "pemma_cl.api",
    "modalities": "pemma_cl.api", "summarize": "pemma_cl.api",
    "segmentation_loss": "pemma_cl.training.template", "make_optimizer": "pemma_cl.training.template",
    "register_strategy": "pemma_cl.strategy_api.registry", "UserError": "pemma_cl.core.errors",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'pemma_cl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
