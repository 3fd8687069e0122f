"""Bounded waits and lost workers on Dask: one clear line within the timeout, never a wait forever or a traceback."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fiscal_sim.cli import app
from fiscal_sim.errors import FiscalSimError

pytest.importorskip("distributed")
SMALL = Path(__file__).parent / "scenarios" / "crn_base.yaml"


@pytest.mark.parametrize(
    "content, says",
    [
        (None, "cannot read it"),
        ("{not json", "not a Dask scheduler file"),
        ('{"address": "tcp://127.0.0.1:1"}', "no scheduler or worker answered within 2 s"),
    ],
)
def test_a_bad_scheduler_file_is_one_line_within_the_timeout(tmp_path, monkeypatch, content, says):
    monkeypatch.setenv("FISCAL_SIM_DASK_TIMEOUT", "2")
    path = tmp_path / "scheduler.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    t0 = time.monotonic()
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(SMALL),
            "--draws",
            "20",
            "-q",
            "--out",
            str(tmp_path / "o"),
            "--executor",
            "dask",
            "--scheduler-file",
            str(path),
        ],
    )
    assert time.monotonic() - t0 < 30
    assert res.exit_code == 1 and f"--scheduler-file {path}" in res.output and says in res.output
    assert "Traceback" not in res.output and not (tmp_path / "o").exists()


def _die(state, start):  # a chunk whose worker process dies every time it runs it
    os._exit(1)


def test_lost_dask_workers_are_named_like_the_pools():
    from fiscal_sim.orchestrate.executors import DaskExecutor

    ex = DaskExecutor(1)
    try:
        with pytest.raises(FiscalSimError, match="Dask workers were lost while running a chunk"):
            list(ex.map(_die, None, [(0,)]))
    finally:
        ex.close()
