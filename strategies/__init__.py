"""Built-in strategies.

Each module registers its build function with :func:`pemma_cl.strategy_api.registry.register_strategy` and is declared
as an entry point of the ``pemma_cl.strategies`` group in ``pyproject.toml``, exactly as a third-party
plugin would be. Modules import torch, MONAI and Avalanche inside their build functions only, so that
``pemma-bench list`` stays fast.
"""
