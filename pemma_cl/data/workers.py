"""Prepare cases on worker processes with a progress bar: the shared loop of ``pemma-bench prepare`` for every data
source (HECKTOR 2022, nnU-Net)."""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from tqdm import tqdm

from pemma_cl.data.hecktor.prepare_case import init_worker


def prepare_in_processes(prepare: Callable[..., dict], jobs: dict[str, tuple[Any, ...]],
                         workers: int) -> dict[str, dict]:
    """``{case: prepare(*arguments)}`` for every ``{case: arguments}`` of ``jobs``, on ``workers`` processes.

    Workers are spawned (no fork of a parent that may hold torch's threads) and set up by
    :func:`~pemma_cl.data.hecktor.prepare_case.init_worker`; on Ctrl-C or an error the cases in flight finish writing
    and the rest are cancelled.
    """
    if not jobs:
        return {}
    rows = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=init_worker) as pool:
        futures = {pool.submit(prepare, *arguments): case for case, arguments in jobs.items()}
        try:
            for future in tqdm(as_completed(futures), total=len(futures), desc="prepare", unit="case",
                               file=sys.stderr, dynamic_ncols=True):
                rows[futures[future]] = future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return rows
