"""The workbench's run registry: one SQLite file in the workspace (stdlib sqlite3), surviving restarts.

Each run keeps its scenario text and sha256, settings, fiscal_sim version, who and when, its status
(queued, running, done, failed, cancelled), an error line and the headline JSON. Another store (PostgreSQL)
would implement the same five methods against the same table; nothing else touches the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

STATUSES = ("queued", "running", "done", "failed", "cancelled")
RUN_ID = re.compile(r"^[0-9a-f]{12}$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY, scenario_name TEXT NOT NULL, scenario_text TEXT NOT NULL, scenario_sha256 TEXT NOT NULL,
  settings TEXT NOT NULL, version TEXT NOT NULL, who TEXT NOT NULL, created TEXT NOT NULL,
  status TEXT NOT NULL, done_draws INTEGER NOT NULL DEFAULT 0, error TEXT, headline TEXT, finished TEXT
)"""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Registry:
    """Runs in ``<workspace>/registry.sqlite``; thread-safe (one connection per call)."""

    def __init__(self, workspace: Path):
        self.path = workspace / "registry.sqlite"
        self.runs_dir = workspace / "runs"
        self._lock = threading.Lock()
        with self._db() as db:
            db.execute(SCHEMA)

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        return db

    def _exec(self, sql: str, args: tuple = ()) -> None:
        with self._lock, self._db() as db:
            db.execute(sql, args)

    def add(self, scenario_name: str, scenario_text: str, settings: dict[str, Any], who: str) -> str:
        """Register a queued run; returns its id."""
        from fiscal_sim.version import __version__

        run_id = uuid.uuid4().hex[:12]
        sha = hashlib.sha256(scenario_text.encode()).hexdigest()
        self._exec(
            "INSERT INTO runs (id, scenario_name, scenario_text, scenario_sha256, settings, version, who, "
            "created, status) VALUES (?,?,?,?,?,?,?,?,'queued')",
            (run_id, scenario_name, scenario_text, sha, json.dumps(settings), __version__, who, _now()),
        )
        return run_id

    def set_status(
        self, run_id: str, status: str, *, error: str | None = None, headline: dict[str, Any] | None = None
    ) -> None:
        """Move a run to ``status`` (a finished one also records when, its error or its headline)."""
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
        """One run as a dict (``missing``: its folder was removed by hand after it finished), or None."""
        if not RUN_ID.match(run_id):
            return None
        with self._db() as db:
            row = db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return self._row(row) if row else None

    def list(self) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created DESC, rowid DESC").fetchall()
        return [self._row(r) for r in rows]

    def recover(self) -> list[str]:
        """Mark runs a stopped server left queued or running as failed (interrupted); returns their ids."""
        with self._lock, self._db() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM runs WHERE status IN ('queued','running')")]
            db.execute(
                "UPDATE runs SET status='failed', error='interrupted: the server stopped', "
                "finished=? WHERE status IN ('queued','running')",
                (_now(),),
            )
            return ids

    def folder(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def _row(self, row: sqlite3.Row) -> dict[str, Any]:
        d = dict(row)
        d["settings"] = json.loads(d["settings"])
        d["headline"] = json.loads(d["headline"]) if d["headline"] else None
        d["missing"] = d["status"] == "done" and not (self.folder(d["id"]) / "summary.parquet").is_file()
        return d
