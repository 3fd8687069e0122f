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
        wait = connect_timeout()
        if scheduler_file:
            scheduler = scheduler_address(scheduler_file)
        try:
            if scheduler:
                self.client = Client(scheduler, timeout=f"{wait}s")
            else:
                self.cluster = LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
                self.client = Client(self.cluster)
            self.client.wait_for_workers(1, timeout=max(wait, 60) if self.cluster else wait)
        except (OSError, TimeoutError) as e:  # distributed raises OSError / TimeoutError when nobody answers
            where = (
                f"--scheduler-file {scheduler_file} (scheduler {scheduler})"
                if scheduler_file
                else f"--scheduler {scheduler}"
                if scheduler
                else "the local Dask cluster"
            )
            self.close()
            raise FiscalSimError(
                f"{where}: no scheduler or worker answered within {wait:g} s "
                f"({type(e).__name__}); is it running? (FISCAL_SIM_DASK_TIMEOUT sets the wait)"
            ) from None
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
                try:
                    result = f.result()
                except Exception as e:
                    if type(e).__name__ in LOST:  # the cluster lost the chunk's workers: say so, as the pool does
                        raise FiscalSimError(
                            f"Dask workers were lost while running a chunk ({type(e).__name__}): "
                            "a worker was killed or ran out of memory; nothing was written. "
                            "Try fewer draws per chunk (--chunk-size) or more memory per worker"
                        ) from None
                    raise
                f.release()
                yield result
        finally:
            self.client.cancel(shared)

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


LOST = {"KilledWorker", "FutureCancelledError", "CancelledError", "CommClosedError"}
"""distributed's exceptions for a chunk whose workers died (by name: distributed is an optional import)"""


def connect_timeout() -> float:
    """Seconds to wait for a Dask scheduler or its first worker (FISCAL_SIM_DASK_TIMEOUT, default 30)."""
    import os

    try:
        return max(float(os.environ.get("FISCAL_SIM_DASK_TIMEOUT", "30")), 0.1)
    except ValueError:
        return 30.0


def scheduler_address(path: str) -> str:
    """The scheduler address a Dask scheduler file names; one clear error if the file is missing or malformed
    (distributed itself would wait for the file forever)."""
    import json

    try:
        text = open(path, encoding="utf-8").read()
    except OSError as e:
        raise FiscalSimError(
            f"--scheduler-file {path}: cannot read it ({e.strerror or e}); start the scheduler with "
            "`dask scheduler --scheduler-file PATH` first"
        ) from None
    try:
        address = json.loads(text).get("address")
    except (ValueError, AttributeError):
        address = None
    if not isinstance(address, str) or "://" not in address:
        raise FiscalSimError(
            f'--scheduler-file {path}: not a Dask scheduler file (JSON with an "address" such as "tcp://host:8786")'
        )
    return address


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
    from fiscal_sim.version import __version__
    from fiscal_sim.catalogue.loader import load_catalogue

    return __version__, load_catalogue().sha256()


def check_workers(client: Any) -> None:
    """Refuse a cluster whose workers run another fiscal_sim version or catalogue than this client."""
    mine = identity()
    theirs = client.run(identity)
    bad = {addr: ident for addr, ident in theirs.items() if tuple(ident) != mine}
    if bad:
        lines = "; ".join(f"{a}: version {v}, catalogue {h[:12]}" for a, (v, h) in bad.items())
        raise FiscalSimError(
            f"Dask workers differ from this client (version {mine[0]}, catalogue {mine[1][:12]}): "
            f"{lines}. Install the same fiscal_sim on every worker."
        )


@contextmanager
def executor(
    kind: ExecutorKind = "pool", workers: int = 1, scheduler: str | None = None, scheduler_file: str | None = None
) -> Iterator[Executor]:
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
