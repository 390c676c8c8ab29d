"""Where ``run --jobs N`` worker processes come from: a fork server that imports the suite once, early.

Importing torch, MONAI, Avalanche and the suite takes about 10 s of CPU on this project's 2-core machine. Spawned
workers each paid it again after the driver had paid it (the first unit of a cached run started about 26 s after
the command). A fork server started before the driver's own imports imports the suite beside them, on the other
core, and every worker is then a fork of it, ready at once. The server itself never computes (no OpenMP thread pool
exists in it when it forks), which is what makes forking safe here, unlike forking the driver. Platforms without
``forkserver`` (Windows) spawn.

This module imports nothing heavy: the command line calls :func:`start_worker_server` before it imports torch.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver

#: What every worker needs imported: the unit runner (torch, MONAI, Avalanche, peft) and the task entry point.
PRELOADED_MODULES: list[str] = ["pemma_cl.run.benchmark", "pemma_cl.run.tasks"]


def worker_context() -> multiprocessing.context.BaseContext:
    """The start method of the workers: ``forkserver`` (preloading :data:`PRELOADED_MODULES`), else ``spawn``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED_MODULES)
    return context


def start_worker_server() -> None:
    """Start the fork server now, so that it imports the suite while this process does the same; returns at once.
    Starting it when no worker is needed in the end (``--jobs auto`` on CUDA resolves to one unit at a time) costs
    one idle process."""
    if worker_context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()
