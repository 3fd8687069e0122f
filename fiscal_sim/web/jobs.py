"""The run queue: a bounded queue, one worker thread, each run in a child process so Cancel can end it.

The child simulates with :func:`fiscal_sim.orchestrate.run.run` (the same atomic folder rules as
``fiscal-sim run``) into ``<workspace>/runs/<id>/`` and reports draws done through a shared counter.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from fiscal_sim.web.registry import Registry

QUEUE_SIZE = 16
# forkserver: each run's child forks from a clean server process that has imported the engine once (fast, and
# safe beside the web server's threads); spawn where forkserver is unavailable.
_ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
if _ctx.get_start_method() == "forkserver":
    _ctx.set_forkserver_preload(["fiscal_sim.api", "fiscal_sim.orchestrate.run", "fiscal_sim.scenario"])


class QueueFull(Exception):
    """The queue holds QUEUE_SIZE runs already."""


@dataclass(frozen=True)
class Job:
    run_id: str
    scenario: Path
    draws: int
    seed: int | None


def _child(scenario: str, out: str, draws: int, seed: int | None, done, errors) -> None:
    """Run one scenario into ``out`` (in the child process); a problem goes back as one line."""
    try:
        from fiscal_sim.api import load
        from fiscal_sim.orchestrate.executors import Executor
        from fiscal_sim.orchestrate.run import run

        scen = load(scenario).with_settings(draws=draws, seed=seed)

        def tick(k: int) -> None:
            with done.get_lock():
                done.value += k

        run(scen, Path(out), workers=1, progress=tick, executor=Executor())
    except Exception as e:  # one line back to the page, never a traceback
        errors.put(f"{type(e).__name__}: {e}" if not str(e) else str(e))


class Worker:
    """One thread taking jobs from the queue in order; ``cancel`` ends a queued or running one."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.queue: queue.Queue[Job | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self.cancelled: set[str] = set()
        self._current: tuple[str, mp.Process] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="fiscal-sim-runs", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.queue.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"{QUEUE_SIZE} runs are waiting already; try again when one has finished") from None

    def cancel(self, run_id: str) -> None:
        with self._lock:
            self.cancelled.add(run_id)
            if self._current and self._current[0] == run_id:
                self._current[1].terminate()
        run = self.registry.get(run_id)
        if run and run["status"] == "queued":
            self.registry.set_status(run_id, "cancelled")

    def stop(self) -> None:
        self.queue.put(None)
        with self._lock:
            if self._current:
                self._current[1].terminate()

    def _loop(self) -> None:
        while (job := self.queue.get()) is not None:
            if job.run_id in self.cancelled:
                continue
            try:
                self._run(job)
            except Exception as e:  # the worker thread must outlive any one run
                self.registry.set_status(job.run_id, "failed", error=str(e) or type(e).__name__)

    def _run(self, job: Job) -> None:
        from fiscal_sim import headline

        done, errors = _ctx.Value("q", 0), _ctx.Queue()
        out = self.registry.folder(job.run_id)
        proc = _ctx.Process(
            target=_child, args=(str(job.scenario), str(out), job.draws, job.seed, done, errors), daemon=True
        )
        with self._lock:
            if job.run_id in self.cancelled:
                return
            self.registry.set_status(job.run_id, "running")
            proc.start()
            self._current = (job.run_id, proc)
        while proc.is_alive():
            proc.join(0.25)
            self.registry.progress(job.run_id, done.value)
        with self._lock:
            self._current = None
        self.registry.progress(job.run_id, done.value)
        if job.run_id in self.cancelled:
            self.clean_staging(out)
            self.registry.set_status(job.run_id, "cancelled")
        elif proc.exitcode == 0 and errors.empty() and (out / "summary.parquet").is_file():
            self.registry.set_status(job.run_id, "done", headline=headline.load(out))
        else:
            msg = errors.get(timeout=1) if not errors.empty() else f"the run process ended with code {proc.exitcode}"
            self.clean_staging(out)
            self.registry.set_status(job.run_id, "failed", error=msg)

    @staticmethod
    def clean_staging(out: Path) -> None:
        """Remove the staging folders a terminated run left (ours: named after the run's own folder)."""
        for tmp in out.parent.glob(f".{out.name}.tmp-*"):
            shutil.rmtree(tmp, ignore_errors=True)
