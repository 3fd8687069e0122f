"""The job queue: a bounded queue, one worker thread, each job in a child process so Cancel can end it.

A job is a run, a comparison or a sweep; the child writes it through :mod:`fiscal_sim.api` (the same atomic
folder rules as the CLI) into ``<workspace>/runs/<id>/`` on the executor given at start-up (in-process, or a
Dask scheduler) and reports draws done through a shared counter.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import queue
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fiscal_sim.registry import DONE_FILE, Registry, sha256

QUEUE_SIZE = 16
# forkserver: each job's child forks from a clean server process that has imported the engine once (fast, and
# safe beside the web server's threads); spawn where forkserver is unavailable.
_ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
if _ctx.get_start_method() == "forkserver":
    _ctx.set_forkserver_preload(["fiscal_sim.web.warm"])


class QueueFull(Exception):
    """The queue holds QUEUE_SIZE jobs already."""


@dataclass(frozen=True)
class Job:
    """What to compute: ``kind`` run (``scenario``), compare (``scenario`` against ``other``), sweep
    (``scenario`` over ``sets``) or assumptions (the ledger of ``scenario``)."""

    run_id: str
    scenario: Path
    draws: int
    seed: int | None = None
    kind: str = "run"
    other: Path | None = None
    sets: tuple[str, ...] = field(default_factory=tuple)
    ledger: bool = False  # a run's per-draw ledger (draws/): for drill-down in BI tools, not for the headline

    @classmethod
    def from_record(cls, run: dict[str, Any]) -> "Job":
        s = run["settings"]
        return cls(
            run["id"],
            Path(s["path"]),
            s["draws"],
            s.get("seed"),
            run["kind"],
            Path(s["other"]) if s.get("other") else None,
            tuple(s.get("sets") or ()),
            bool(s.get("ledger")),
        )


def _executor(scheduler: str | None, workers: int) -> Any:
    from fiscal_sim.orchestrate.executors import DaskExecutor, Executor, PoolExecutor

    if scheduler:
        return DaskExecutor(workers, scheduler=scheduler)
    return PoolExecutor(workers) if workers > 1 else Executor()


def _load(job: Job, workers: int) -> Any:
    """The job's scenario with its draws and seed, in chunks that give every worker a share (the results do not
    depend on the chunking: every block of draws has its own seed)."""
    from fiscal_sim import api

    scen = api.load(job.scenario)
    block = scen.spec.block_size
    share = math.ceil(math.ceil(job.draws / workers) / block) * block
    return scen.with_settings(draws=job.draws, seed=job.seed, chunk_size=max(block, min(scen.spec.chunk_size, share)))


def _watch_server(server: int) -> None:
    """End this job when the server that started it is gone (its parent is the forkserver, not the server)."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(server, 0)
        except ProcessLookupError:
            os.kill(os.getpid(), signal.SIGTERM)  # unwinds as a Cancel does
            return
        except PermissionError:  # alive, another user's: cannot happen for our own server, but not a death
            pass


def _on_term(*_: Any) -> None:
    """SIGTERM in a job's process (Cancel, a stopping server, the server gone): kill the pool's workers and exit
    at once. An orderly exit could wait forever on a worker blocked writing its result; the server removes the
    job's staging folder (Worker.clean_staging)."""
    for p in mp.active_children():
        if p.pid:
            os.kill(p.pid, signal.SIGKILL)
    os._exit(143)


def _child(job: Job, out: str, scheduler: str | None, workers: int, server: int, done: Any, errors: Any) -> None:
    """Compute one job into ``out`` (in the child process); a problem goes back as one line. SIGTERM (Cancel, a
    stopping server, the server gone) unwinds: the staging folder goes and the pool's workers stop with it."""
    signal.signal(signal.SIGTERM, _on_term)
    threading.Thread(target=_watch_server, args=(server,), daemon=True, name="fiscal-sim-server-watch").start()
    try:
        from fiscal_sim import api

        def tick(k: int, *_: Any) -> None:
            with done.get_lock():
                done.value += k

        ex = _executor(scheduler, workers)
        try:
            scen = _load(job, workers)
            if job.kind == "run":
                api.write(scen, Path(out), workers=workers, write_draws=job.ledger, progress=tick, executor=ex)
            elif job.kind == "compare":
                assert job.other is not None
                api.write_compare(
                    scen, job.other, Path(out), workers=workers, write_draws=False, progress=tick, executor=ex
                )
            elif job.kind == "sweep":

                def points(i: int, n: int) -> None:
                    done.value = i * job.draws

                api.write_sweep(
                    scen, list(job.sets), Path(out), totals_only=True, workers=workers, progress=points, executor=ex
                )
            else:
                api.write_assumptions(scen, Path(out), workers=workers, progress=tick, executor=ex)
        finally:
            ex.close()
    except Exception as e:  # one line back to the page, never a traceback
        errors.put(f"{type(e).__name__}: {e}" if not str(e) else str(e))


class Worker:
    """One thread taking jobs from the queue in order; ``cancel`` ends a queued or running one."""

    def __init__(self, registry: Registry, scheduler: str | None = None, workers: int = 2):
        self.registry = registry
        self.scheduler, self.workers = scheduler, workers
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self.cancelled: set[str] = set()
        self._current: tuple[str, Any] | None = None
        self._lock = threading.Lock()
        self.stopping = False
        self._thread = threading.Thread(target=self._loop, name="fiscal-sim-jobs", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{QUEUE_SIZE} jobs are waiting already; try again when one has finished") from None

    def resume(self, queued: list[dict[str, Any]]) -> None:
        """Take up the jobs a stopped server left queued (oldest first); one whose scenario file changed or
        went since it was queued is marked failed, as are those beyond the queue's size."""
        for run in queued:
            path = Path(run["settings"].get("path", ""))
            if not path.is_file() or sha256(path.read_text(encoding="utf-8")) != run["scenario_sha256"]:
                self.registry.set_status(run["id"], "failed", error="its scenario file changed while it was queued")
                continue
            try:
                self.submit(Job.from_record(run))
            except QueueFull as e:
                self.registry.set_status(run["id"], "failed", error=str(e))

    def cancel(self, run_id: str) -> None:
        with self._lock:
            self.cancelled.add(run_id)
            if self._current and self._current[0] == run_id:
                self._current[1].terminate()
        run = self.registry.get(run_id)
        if run and run["status"] == "queued":
            self.registry.set_status(run_id, "cancelled")

    def stop(self, wait: float = 15.0) -> None:
        """End the worker (the server is stopping): a running job's child is ended, its staging folder removed
        and the job marked failed (interrupted); queued jobs stay queued for the next start."""
        with self._lock:
            self.stopping = True
            if self._current:
                self._current[1].terminate()
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass
        self._thread.join(wait)

    def _loop(self) -> None:
        while (job := self.queue.get()) is not None and not self.stopping:
            if job.run_id in self.cancelled:
                continue
            try:
                self._run(job)
            except Exception as e:  # the worker thread must outlive any one job
                self.registry.set_status(job.run_id, "failed", error=str(e) or type(e).__name__)

    def _run(self, job: Job) -> None:
        from fiscal_sim import headline

        done, errors = _ctx.Value("q", 0), _ctx.Queue()
        out = self.registry.folder(job.run_id)
        args = (job, str(out), self.scheduler, self.workers, os.getpid(), done, errors)
        proc = _ctx.Process(target=_child, args=args)  # not a daemon: it starts the pool's workers
        with self._lock:
            if job.run_id in self.cancelled or self.stopping:
                return
            self.registry.set_status(job.run_id, "running")
            proc.start()
            self._current = (job.run_id, proc)
        while proc.is_alive():
            proc.join(0.05)
            self.registry.progress(job.run_id, done.value)
        with self._lock:
            self._current = None
        self.registry.progress(job.run_id, done.value)
        if self.stopping:
            self.clean_staging(out)
            self.registry.set_status(job.run_id, "failed", error="interrupted: the server stopped while it ran")
        elif job.run_id in self.cancelled:
            self.clean_staging(out)
            self.registry.set_status(job.run_id, "cancelled")
        elif proc.exitcode == 0 and errors.empty() and (out / DONE_FILE[job.kind]).is_file():
            h = headline.load(out) if job.kind == "run" else None
            self.registry.set_status(job.run_id, "done", headline=h)
        else:
            msg = errors.get(timeout=1) if not errors.empty() else f"the job's process ended with code {proc.exitcode}"
            self.clean_staging(out)
            self.registry.set_status(job.run_id, "failed", error=msg)

    @staticmethod
    def clean_staging(out: Path) -> None:
        """Remove the staging folders a terminated job left (ours: named after the job's own folder)."""
        for tmp in out.parent.glob(f".{out.name}.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
