"""Where chunks run: in this process, in a local process pool, or on a Dask cluster.

An executor runs tasks ``fn(state, *args)`` and yields their results as they complete, with at most
``window`` tasks in flight, so the client's memory stays flat whatever the number of chunks. ``state`` (the
scenario and what every chunk needs) is sent to each worker once. Results must not depend on completion
order: callers fold statistics in block order (:meth:`fiscal_sim.stats.Accumulator.fold`).
"""

from __future__ import annotations

import logging
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Literal

from fiscal_sim.errors import FiscalSimError
from fiscal_sim.orchestrate.pool import start_pool, terminate, worker_died

ExecutorKind = Literal["pool", "dask"]

_STATE: dict[str, Any] = {}


def _set_state(state: Any) -> None:
    _STATE["state"] = state


def _call(fn: Callable, *args: Any) -> Any:
    return fn(_STATE["state"], *args)


class Executor:
    """Runs every task in this process, in order."""

    workers = 1

    def map(self, fn: Callable, state: Any, tasks: Iterable[tuple], window: int | None = None) -> Iterator[Any]:
        for t in tasks:
            yield fn(state, *t)

    def close(self) -> None:
        pass


class PoolExecutor(Executor):
    """A local process pool of ``workers`` processes, started per ``map`` with the state in each worker."""

    def __init__(self, workers: int):
        self.workers = workers

    def map(self, fn, state, tasks, window=None):
        tasks = list(tasks)
        if self.workers <= 1 or len(tasks) <= 1:
            yield from Executor.map(self, fn, state, tasks)
            return
        window = window or 2 * self.workers
        pool = start_pool(self.workers, _set_state, (state,))  # workers stop with Ctrl-C and with this process
        try:
            todo = iter(tasks)
            running = {pool.submit(_call, fn, *t) for t in _take(todo, window)}
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                running |= {pool.submit(_call, fn, *t) for t in _take(todo, len(done))}
                for f in done:
                    yield f.result()
        except BrokenProcessPool:
            terminate(pool)
            raise worker_died() from None
        except BaseException:  # Ctrl-C, an error in a chunk or in the caller (GeneratorExit): stop the workers now
            terminate(pool)
            raise
        pool.shutdown(wait=True)


class DaskExecutor(Executor):
    """A Dask cluster: a running scheduler (address or scheduler file), else a LocalCluster of ``workers``
    single-threaded worker processes. Workers must run the client's fiscal_sim version and catalogue."""

    def __init__(self, workers: int, scheduler: str | None = None, scheduler_file: str | None = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise FiscalSimError("--executor dask needs Dask: pip install 'fiscal-sim[dask]'") from None
        self.cluster = None
        if scheduler or scheduler_file:
            self.client = Client(scheduler, scheduler_file=scheduler_file, timeout="30s")
        else:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        self.client.wait_for_workers(1, timeout=60)
        check_workers(self.client)
        self.workers = max(len(self.client.scheduler_info(n_workers=-1)["workers"]), 1)

    def map(self, fn, state, tasks, window=None):
        from distributed import as_completed

        window = window or 2 * self.workers
        [shared] = self.client.scatter([state], broadcast=True, hash=False)
        todo = iter(tasks)
        # pure=False: a task's key is fresh, so a lost worker's chunk is recomputed, never served stale
        ac = as_completed([self.client.submit(fn, shared, *t, pure=False) for t in _take(todo, window)])
        try:
            for f in ac:
                for t in _take(todo, 1):
                    ac.add(self.client.submit(fn, shared, *t, pure=False))
                result = f.result()
                f.release()
                yield result
        finally:
            self.client.cancel(shared)

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _take(it: Iterator, k: int) -> list:
    out = []
    for _ in range(k):
        try:
            out.append(next(it))
        except StopIteration:
            break
    return out


def identity() -> tuple[str, str]:
    """This process's fiscal_sim version and the hash of its installed catalogue."""
    from fiscal_sim import __version__
    from fiscal_sim.catalogue.loader import load_catalogue

    return __version__, load_catalogue().sha256()


def check_workers(client: Any) -> None:
    """Refuse a cluster whose workers run another fiscal_sim version or catalogue than this client."""
    mine = identity()
    theirs = client.run(identity)
    bad = {addr: ident for addr, ident in theirs.items() if tuple(ident) != mine}
    if bad:
        lines = "; ".join(f"{a}: version {v}, catalogue {h[:12]}" for a, (v, h) in bad.items())
        raise FiscalSimError(f"Dask workers differ from this client (version {mine[0]}, catalogue {mine[1][:12]}): "
                             f"{lines}. Install the same fiscal_sim on every worker.")


@contextmanager
def executor(kind: ExecutorKind = "pool", workers: int = 1, scheduler: str | None = None,
             scheduler_file: str | None = None) -> Iterator[Executor]:
    """The executor for ``--executor`` (``pool`` is the default; ``dask`` with or without a scheduler)."""
    if kind == "dask":
        ex: Executor = DaskExecutor(workers, scheduler, scheduler_file)
    elif scheduler or scheduler_file:
        raise FiscalSimError("--scheduler and --scheduler-file need --executor dask")
    else:
        ex = PoolExecutor(workers)
    try:
        yield ex
    finally:
        ex.close()
