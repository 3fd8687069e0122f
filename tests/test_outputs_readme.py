"""outputs/README.md: its DuckDB queries run against fresh outputs, and it documents every column written."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fiscal_sim.cli import app

REPO = Path(__file__).resolve().parents[1]
README = REPO / "outputs" / "README.md"
SCEN = Path(__file__).parent / "scenarios"
REPO_SCEN = REPO / "scenarios"
TEXT = README.read_text(encoding="utf-8")
BLOCKS = re.findall(r"```sql\n(.*?)```", TEXT, flags=re.S)
SWEPT = "programs.jzf2017-3.major-conversion.cap"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """The folders the README's commands write, from a small scenario (same program ids, 2025–2029)."""
    root = tmp_path_factory.mktemp("readme") / "outputs"
    runner = CliRunner()
    for args in (["run", str(SCEN / "crn_base.yaml"), "--draws", "200", "--out", str(root / "baseline"), "-q"],
                 ["sensitivity", str(root / "baseline"), "-q"],
                 ["compare", str(SCEN / "crn_base.yaml"), str(SCEN / "crn_cap.yaml"), "--draws", "200",
                  "--out", str(root / "cap1500_vs_baseline"), "-q"],
                 ["sweep", str(SCEN / "crn_base.yaml"), "--set", f"{SWEPT}=1500,3000", "--draws", "100",
                  "--out", str(root / "baseline_sweep"), "-q"],
                 ["backtest", str(REPO_SCEN / "history" / "awards_synthetic.csv"), "--scenario",
                  str(REPO_SCEN / "baseline.yaml"), "--holdout-from", "2023", "--draws", "100",
                  "--out", str(root / "baseline_backtest"), "-q"],
                 ["assumptions", str(SCEN / "crn_base.yaml"), "--draws", "100", "--only", "major-conversion-2-a-year",
                  "--out", str(root / "baseline_assumptions"), "-q"],
                 ["run", str(REPO_SCEN / "tight_budget.yaml"), "--pipeline", "--draws", "40",
                  "--out", str(root / "tight_budget"), "-q", "--no-draws-ledger"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, (args, res.output)
    return root


def localise(sql: str, root: Path) -> str:
    return sql.replace("'outputs/", f"'{root}/")


def test_readme_has_the_queries_the_issue_asks_for():
    text = "\n".join(BLOCKS)
    assert len(BLOCKS) >= 8
    assert "fiscal_year = 2027" in text and "payer = 'city'" in text  # expected city cash in 2027
    assert "p_exceed" in text and "LIMIT 10" in text and "p95_cny DESC" in text
    assert "hive_partitioning = true" in text


@pytest.mark.parametrize("i", range(len(BLOCKS)), ids=[f"sql{i}" for i in range(len(BLOCKS))])
def test_every_query_runs_and_returns_rows(outputs, i):
    rows = duckdb.connect().sql(localise(BLOCKS[i], outputs)).fetchall()
    assert rows, BLOCKS[i]


def test_city_cash_from_draws_equals_the_summary(outputs):
    """The per-draw ledger is sparse: the README's division by the number of draws gives the summary's mean."""
    block = next(b for b in BLOCKS if "draws/**" in b and "payer = 'city'" in b)
    ((from_draws,),) = duckdb.sql(localise(block, outputs)).fetchall()
    ((mean,),) = duckdb.sql(f"""SELECT mean_cny / 1e4 FROM '{outputs}/baseline/summary.parquet' WHERE program = 'ALL'
        AND payer = 'city' AND vintage = 'ALL' AND measure = 'cash' AND period = 'year' AND fiscal_year = 2027""").fetchall()
    assert from_draws == pytest.approx(mean, rel=1e-9)


def documented(heading: str) -> set[str]:
    """Column names in the table under ``### `heading` ``."""
    m = re.search(rf"^### `{re.escape(heading)}`.*?\n(.*?)(?=^#)", TEXT, flags=re.S | re.M)
    assert m, f"README has no section for {heading}"
    return set(re.findall(r"^\| `([^`]+)` \|", m.group(1), flags=re.M))


@pytest.mark.parametrize("heading, path", [
    ("summary.parquet", "baseline/summary.parquet"),
    ("draws/", "baseline/draws"),
    ("programs.parquet", "baseline/programs.parquet"),
    ("payers.parquet", "baseline/payers.parquet"),
    ("jurisdictions.parquet", "baseline/jurisdictions.parquet"),
    ("cost_shares.parquet", "baseline/cost_shares.parquet"),
    ("sensitivity.parquet", "baseline/sensitivity.parquet"),
    ("compare.parquet", "cap1500_vs_baseline/compare.parquet"),
    ("compare_draws/", "cap1500_vs_baseline/compare_draws"),
    ("pipeline_draws.parquet", "tight_budget/pipeline_draws.parquet"),
    ("pipeline_summary.parquet", "tight_budget/pipeline_summary.parquet"),
    ("backtest.parquet", "baseline_backtest/backtest.parquet"),
    ("assumptions.parquet", "baseline_assumptions/assumptions.parquet"),
    ("assumptions_budgets.parquet", "baseline_assumptions/assumptions_budgets.parquet"),
])
def test_every_column_written_is_documented(outputs, heading, path):
    target = outputs / path
    if target.is_dir():
        columns = set(ds.dataset(target, format="parquet", partitioning="hive").schema.names)
    else:
        columns = set(pq.read_schema(target).names)
    docs = documented(heading)
    assert columns - docs == set(), f"undocumented columns in {heading}"
    assert docs - columns == set(), f"documented columns missing from {heading}"


def test_sweep_columns_are_point_parameters_and_the_summary(outputs):
    summary = pq.read_schema(outputs / "baseline/summary.parquet").names
    column = "programs_jzf2017_3_major_conversion_cap"  # SQL-safe; the path as given is in the field's metadata
    schema = pq.read_schema(outputs / "baseline_sweep/sweep.parquet")
    assert schema.names == ["point", column] + summary
    assert schema.field(column).metadata[b"fiscal_sim.path"] == SWEPT.encode()
    assert pq.read_schema(outputs / "baseline_sweep/points.parquet").names == ["point", column]
