"""The run registry of a workspace: one SQLite file (stdlib sqlite3), surviving restarts.

Each job — a run, a comparison or a sweep, from the workbench or from ``fiscal-sim run --workspace`` — keeps
its scenario text and sha256, settings, fiscal_sim version, who and when, its status (queued, running, done,
failed, cancelled), an error line and the headline JSON; its files are ``<workspace>/runs/<id>/``.

Another store (a bureau's PostgreSQL) would implement this class's public methods against the same table
(``SCHEMA``; JSON columns as ``jsonb``); nothing else in fiscal_sim touches the database.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias

STATUSES = ("queued", "running", "done", "failed", "cancelled")
KINDS = ("run", "compare", "sweep", "assumptions")
RUN_ID = re.compile(r"^[0-9a-f]{12}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, scenario_name TEXT NOT NULL, scenario_text TEXT NOT NULL, scenario_sha256 TEXT NOT NULL,
  settings TEXT NOT NULL, version TEXT NOT NULL, who TEXT NOT NULL, created TEXT NOT NULL,
  status TEXT NOT NULL, done_draws INTEGER NOT NULL DEFAULT 0, error TEXT, headline TEXT, finished TEXT,
  kind TEXT NOT NULL DEFAULT 'run'
)"""


# named: inside the class, its own ``list`` method would shadow the builtin in annotations
Ids: TypeAlias = list[str]
Rows: TypeAlias = list[dict[str, Any]]


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Registry:
    """Jobs in ``<workspace>/registry.sqlite``; thread-safe (one connection per call)."""

    def __init__(self, workspace: Path | str):
        workspace = Path(workspace)
        workspace.mkdir(parents=True, exist_ok=True)
        self.path = workspace / "registry.sqlite"
        self.runs_dir = workspace / "runs"
        self.runs_dir.mkdir(exist_ok=True)
        self._lock = threading.Lock()
        with self._db() as db:
            db.execute(SCHEMA)
            cols = {r[1] for r in db.execute("PRAGMA table_info(runs)")}
            if "kind" not in cols:  # a registry written before comparisons and sweeps were jobs
                db.execute("ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'run'")

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _exec(self, sql: str, args: tuple = ()) -> None:
        with self._lock, self._db() as db:
            db.execute(sql, args)

    def add(self, scenario_name: str, scenario_text: str, settings: dict[str, Any], who: str, kind: str = "run") -> str:
        """Register a queued job; returns its id."""
        from fiscal_sim.version import __version__

        assert kind in KINDS
        run_id = uuid.uuid4().hex[:12]
        self._exec(
            "INSERT INTO runs (id, scenario_name, scenario_text, scenario_sha256, settings, version, who, "
            "created, status, kind) VALUES (?,?,?,?,?,?,?,?,'queued',?)",
            (
                run_id,
                scenario_name,
                scenario_text,
                sha256(scenario_text),
                json.dumps(settings),
                __version__,
                who,
                _now(),
                kind,
            ),
        )
        return run_id

    def set_status(
        self, run_id: str, status: str, *, error: str | None = None, headline: dict[str, Any] | None = None
    ) -> None:
        """Move a job to ``status`` (a finished one also records when, its error or its headline)."""
        assert status in STATUSES
        finished = _now() if status in ("done", "failed", "cancelled") else None
        self._exec(
            "UPDATE runs SET status=?, error=COALESCE(?, error), headline=COALESCE(?, headline), "
            "finished=COALESCE(?, finished) WHERE id=?",
            (status, error, json.dumps(headline) if headline is not None else None, finished, run_id),
        )

    def progress(self, run_id: str, done_draws: int) -> None:
        self._exec("UPDATE runs SET done_draws=? WHERE id=?", (done_draws, run_id))

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One job as a dict (``missing``: its folder was removed by hand after it finished), or None."""
        if not RUN_ID.match(run_id):
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return self._row(row) if row else None

    def list(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created DESC, rowid DESC").fetchall()
        return [r for r in map(self._row, rows) if kind is None or r["kind"] == kind]

    def recover(self) -> tuple[Ids, Rows]:
        """After a stop: jobs left running are marked failed (interrupted); returns their ids and the jobs still
        queued, oldest first, for the queue to take up again."""
        with self._lock, self._db() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE status='running'")]
            db.execute(
                "UPDATE runs SET status='failed', error='interrupted: the server stopped while it ran', "
                "finished=? WHERE status='running'",
                (_now(),),
            )
            queued = db.execute("SELECT * FROM runs WHERE status='queued' ORDER BY created, rowid").fetchall()
        return ids, [self._row(r) for r in queued]

    def folder(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def _row(self, row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["settings"] = json.loads(d["settings"])
        d["headline"] = json.loads(d["headline"]) if d["headline"] else None
        d["missing"] = d["status"] == "done" and not (self.folder(d["id"]) / DONE_FILE[d["kind"]]).is_file()
        return d


DONE_FILE = {
    "run": "summary.parquet",
    "compare": "compare.parquet",
    "sweep": "sweep.parquet",
    "assumptions": "assumptions.parquet",
}


@contextmanager
def recorded(workspace: Path | str, scenario_path: Path, settings: dict[str, Any]) -> Iterator[tuple[str, Path]]:
    """Record a run made outside the workbench (``fiscal-sim run --workspace``): yields its id and folder; the
    registry says done (with the headline), failed (with the error) or cancelled (Ctrl-C)."""
    from fiscal_sim import headline

    reg = Registry(workspace)
    text = scenario_path.read_text(encoding="utf-8")
    run_id = reg.add(scenario_path.stem, text, {**settings, "path": str(scenario_path.resolve())}, getpass.getuser())
    reg.set_status(run_id, "running")
    folder = reg.folder(run_id)
    try:
        yield run_id, folder
    except KeyboardInterrupt:
        reg.set_status(run_id, "cancelled")
        raise
    except BaseException as e:
        reg.set_status(run_id, "failed", error=str(e) or type(e).__name__)
        raise
    reg.set_status(run_id, "done", headline=headline.load(folder))
