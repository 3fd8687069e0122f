"""Worker processes that stop with their parent: Ctrl-C, a killed parent, a killed worker.

:func:`start_pool` starts such a pool (used by
:class:`fiscal_sim.orchestrate.executors.PoolExecutor`). On Ctrl-C the executor
cancels the queued chunks and terminates the workers at once (they ignore
SIGINT themselves, so a terminal's Ctrl-C reaches only the parent); a worker
that dies (kill -9, out of memory) ends the run with a clear error. Every worker
watches its parent and exits on its own when the parent is gone, so a killed
run leaves no orphan holding memory.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Callable

from fiscal_sim.errors import FiscalSimError

PARENT_POLL_S = 0.5


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(3)  # the parent died: no one will read our result
        time.sleep(PARENT_POLL_S)


def _init(parent: int, initializer: Callable[..., None] | None, initargs: tuple) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="fiscal-sim-parent-watch").start()
    if initializer is not None:
        initializer(*initargs)


def start_pool(
    workers: int, initializer: Callable[..., None] | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A process pool whose workers ignore Ctrl-C and exit when this process dies. On Linux workers are forked:
    they must be this process's own children (the parent watch), also when this process was itself started by a
    forkserver (a workbench job), whose start method it would otherwise inherit. Elsewhere the platform's default
    (spawn on macOS and Windows, where fork is unsafe) already starts them as this process's children."""
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init, initargs=(os.getpid(), initializer, initargs)
    )


def worker_died() -> FiscalSimError:
    return FiscalSimError(
        "a worker process died (killed, or out of memory?): the run stopped; "
        "try fewer --workers or a smaller --chunk-size"
    )


def terminate(pool: ProcessPoolExecutor) -> None:
    """Cancel queued work and kill the workers now (shutdown alone would wait for running chunks)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    queue = getattr(pool, "_call_queue", None)
    if queue is not None:  # chunks not yet sent are dropped: never wait to flush them into dead workers' pipe
        queue.cancel_join_thread()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=2)
    # Let the pool's manager thread finish closing its wake-up pipe now: left running, it races the
    # interpreter's exit hook, which then writes to a closed pipe and prints a traceback (CPython 3.11).
    if manager is not None:
        manager.join(timeout=5)
