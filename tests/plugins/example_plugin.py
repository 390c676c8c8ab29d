"""Example strategy plugin file: ``pemma-bench list --plugin tests/plugins/example_plugin.py``."""

from __future__ import annotations

from pemma_cl.strategy_api.registry import register_strategy


@register_strategy("example-plugin", "Example file plugin (registration only, cannot train)")
def build(context: object) -> object:
    """Build the strategy; a real plugin imports Avalanche here, never at module level."""
    raise NotImplementedError("the example plugin only demonstrates registration")
