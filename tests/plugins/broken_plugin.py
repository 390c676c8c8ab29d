"""A plugin whose dependency is missing: it must show up as unavailable, never crash the tool."""

from __future__ import annotations

import pemma_cl_missing_dependency  # noqa: F401  (raises ModuleNotFoundError, an ImportError)
