"""End to end: `fiscal-sim run … --pipeline` writes arrears, backlogs and exhaustion dates that DuckDB reads."""

from __future__ import annotations

import json

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
import yaml

from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.orchestrate.run import run
from fiscal_sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
TIGHT = REPO / "scenarios" / "tight_budget.yaml"


def fiscal_sim(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("fiscal-sim")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=REPO, timeout=600)


@pytest.fixture(scope="module")
def tight_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tight") / "run"
    r = fiscal_sim("run", str(TIGHT), "--pipeline", "--draws", "50", "--out", str(out), "-q")
    assert r.returncode == 0, r.stderr
    return out


def test_tight_budget_writes_arrears_backlogs_and_exhaustion_dates(tight_run):
    draws = str(tight_run / "pipeline_draws.parquet")
    con = duckdb.connect()
    types = dict(con.execute(f"select column_name, column_type from (describe select * from '{draws}')").fetchall())
    assert types["fiscal_year"] == "SMALLINT" and types["exhausted_on"] == "DATE" and types["paid_cny"] == "DOUBLE"
    n, arrears, exhausted, first, last = con.execute(f"""
        select count(distinct draw), max(arrears_cny), count(exhausted_on), min(exhausted_on), max(exhausted_on)
        from '{draws}' where program = 'ALL' and payer = 'city' and fiscal_year = 2026""").fetchone()
    assert n == 50 and arrears > 0 and exhausted > 0
    assert str(first) == str(last) == "2026-06-30"  # the June batch (政策兑现月) of 2026
    backlog = con.execute(f"select max(backlog_applications) from '{draws}' where fiscal_year = 2025").fetchone()[0]
    assert backlog > 0
    # the pipeline's cash is the run's cash: rewards recognised in 2025 are paid in 2026, nothing in 2025
    cash_2025 = con.execute(f"""select mean_cny from '{tight_run / "summary.parquet"}' where program = 'ALL'
        and payer = 'city' and measure = 'cash' and fiscal_year = 2025""").fetchone()[0]
    assert cash_2025 == 0
    meta = pq.read_metadata(draws).metadata
    assert b"fiscal_sim.schema_version" in meta and int(meta[b"fiscal_sim.pipeline.simpy_events"]) > 0
    manifest = json.loads((tight_run / "manifest.json").read_text())
    assert manifest["files"]["pipeline"] == ["pipeline_draws.parquet", "pipeline_summary.parquet"]


def test_tight_budget_summary_has_exhaustion_probability_with_wilson_interval(tight_run):
    summary = str(tight_run / "pipeline_summary.parquet")
    con = duckdb.connect()
    rows = con.execute(f"""select fiscal_year, draws, mean, p_lo, p_hi from '{summary}'
        where measure = 'exhausted' and program = 'ALL' and payer = 'city' order by fiscal_year""").fetchall()
    assert [r[0] for r in rows] == [2026, 2027]
    for _, n, p, lo, hi in rows:
        assert n == 50 and 0 <= lo <= p <= hi <= 1
    assert rows[0][2] > 0.5  # the 2026 appropriation is below expected demand
    stats = con.execute(f"""select p05, p50, p90, p95, mean from '{summary}' where measure = 'arrears_cny'
        and program = 'ALL' and payer = 'city' and fiscal_year = 2026""").fetchone()
    assert stats[0] <= stats[1] <= stats[2] <= stats[3] and stats[4] > 0
    waits = con.execute(
        f"""select count(*) from '{summary}' where measure = 'wait_p90_days' and unit = 'days'"""
    ).fetchone()
    assert waits[0] > 0


def test_without_the_flag_no_pipeline_runs(tmp_path):
    out = tmp_path / "plain"
    r = fiscal_sim("run", str(TIGHT), "--draws", "20", "--out", str(out), "-q", "--no-draws-ledger")
    assert r.returncode == 0, r.stderr
    assert not (out / "pipeline_draws.parquet").exists()


def test_unbounded_pipeline_run_has_the_engine_summary(tmp_path):
    """A whole run: unbounded pipeline, no lag → the same summary as the run without --pipeline."""
    data = yaml.safe_load(TIGHT.read_text(encoding="utf-8"))
    pipe = data["scenario"]["pipelines"][0]
    pipe.update(review={"reviewers": 4}, payment_months=[12], lag_batches=0, appropriations=[], windows="annual")
    path = tmp_path / "unbounded.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    scen = load_scenario(path, load_catalogue(REPO / "scenarios")).with_settings(draws=40, chunk_size=20)
    plain = run(scen, tmp_path / "plain", write_draws=False)
    piped = run(scen, tmp_path / "piped", workers=2, write_draws=False, pipeline=True)
    assert plain.summary.select(["mean_cny", "p95_cny"]).equals(piped.summary.select(["mean_cny", "p95_cny"]))
    assert (tmp_path / "piped" / "pipeline_draws.parquet").exists()


def test_pipeline_outputs_do_not_depend_on_workers(tmp_path):
    a, b = tmp_path / "one", tmp_path / "two"
    for out, workers in ((a, "1"), (b, "2")):
        r = fiscal_sim(
            "run",
            str(TIGHT),
            "--pipeline",
            "--draws",
            "40",
            "--chunk-size",
            "20",
            "--workers",
            workers,
            "--out",
            str(out),
            "-q",
            "--no-draws-ledger",
        )
        assert r.returncode == 0, r.stderr
    for name in ("pipeline_draws.parquet", "pipeline_summary.parquet"):
        assert pq.read_table(a / name).equals(pq.read_table(b / name)), name
