"""The chunk driver: the one place that cuts draws into chunks, hands them to an executor and gives the parts
back in chunk order.

Every computation over draws is a *job* on it — a per-chunk function ``fn(state, *task)`` (module level, so a
process pool or Dask can ship it) and a fold the caller applies to the parts in the order :func:`drive` yields
them: ``run`` (statistics and the per-draw ledger), ``compare``, ``sweep`` points, ``sensitivity``, the
assumption ledger, ``backtest`` and the synthetic history. Where a chunk runs (this process, a local pool,
Dask) is the executor's business (:mod:`fiscal_sim.orchestrate.executors`); the order parts are folded in is
the driver's, so results are bit-identical whatever the workers, chunk completion order or executor.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence, TypeVar

from fiscal_sim.orchestrate.executors import Executor, PoolExecutor

R = TypeVar("R")


def chunks(scen: Any) -> list[tuple[int, int]]:
    """Draw ranges ``[start, stop)`` of a scenario; the chunk size is rounded up to whole blocks."""
    B = scen.spec.block_size
    size = -(-scen.spec.chunk_size // B) * B
    return [(s, min(s + size, scen.spec.draws)) for s in range(0, scen.spec.draws, size)]


def executor_for(executor: Executor | None, workers: int = 1) -> Executor:
    """The executor given, else a local pool of ``workers`` processes (in this process for one worker)."""
    return executor if executor is not None else PoolExecutor(workers)


def _tagged(state: tuple[Callable[..., Any], Any], i: int, *task: Any) -> tuple[int, Any]:
    fn, inner = state
    return i, fn(inner, *task)


def drive(
    executor: Executor,
    fn: Callable[..., R],
    state: Any,
    tasks: Sequence[tuple],
    progress: Callable[[tuple], None] | None = None,
) -> Iterator[tuple[tuple, R]]:
    """Run ``fn(state, *task)`` for every task on ``executor``; yield ``(task, part)`` in the order of ``tasks``
    (parts that finish early wait in a buffer no larger than the executor's window). ``progress(task)`` is
    called as each part arrives, in completion order."""
    tasks = list(tasks)
    waiting: dict[int, Any] = {}
    nxt = 0
    for i, part in executor.map(_tagged, (fn, state), [(i, *t) for i, t in enumerate(tasks)]):
        if progress:
            progress(tasks[i])
        waiting[i] = part
        while nxt in waiting:
            yield tasks[nxt], waiting.pop(nxt)
            nxt += 1


def drive_chunks(
    scen: Any,
    executor: Executor,
    fn: Callable[..., R],
    state: Any,
    extra: tuple = (),
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[int, int, R]]:
    """:func:`drive` over the scenario's chunks: ``fn(state, start, stop, *extra)``; yields ``(start, stop,
    part)`` in chunk order; ``progress(draws)`` as each chunk arrives."""
    tick = (lambda t: progress(t[1] - t[0])) if progress else None
    for (a, b, *_), part in drive(executor, fn, state, [(a, b, *extra) for a, b in chunks(scen)], tick):
        yield a, b, part
