"""``run --jobs N`` workers start with the suite already imported (forks of a server that imported it once)."""

from __future__ import annotations

import multiprocessing
import sys

import pytest

from pemma_cl.run.executors.fork_server import PRELOADED_MODULES, start_worker_server, worker_context


def _imported_before_any_task(queue) -> None:
    queue.put([name for name in PRELOADED_MODULES if name in sys.modules])


@pytest.mark.skipif("forkserver" not in multiprocessing.get_all_start_methods(), reason="no fork server here")
def test_a_worker_is_born_with_the_suite_imported() -> None:
    start_worker_server()
    context = worker_context()
    queue = context.SimpleQueue()
    worker = context.Process(target=_imported_before_any_task, args=(queue,))
    worker.start()
    worker.join(120)
    assert worker.exitcode == 0
    assert queue.get() == PRELOADED_MODULES
