"""outputs/README.md: its DuckDB queries run against fresh outputs, and it documents every column written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.types as pa_types
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


DRAWS = {"run": "200", "compare": "200", "sweep": "100", "backtest": "100", "assumptions": "100"}


def readme_commands(text: str) -> list[list[str]]:
    """The ``fiscal-sim`` command lines of the indented block at the top of outputs/README.md, as written
    (continuation lines joined, comments dropped)."""
    block = text.split("\n\n", 3)[2]
    joined = re.sub(r"\\\n\s*", " ", block)
    return [
        shlex.split(line.split("#")[0])[1:] for line in joined.splitlines() if line.strip().startswith("fiscal-sim ")
    ]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """The folders the README's own commands write, run as written in an empty folder beside a copy of the
    scenarios (with few draws and quiet): the queries are then proven on exactly what a reader gets."""
    work = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO_SCEN, work / "scenarios")
    runner = CliRunner()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        for args in readme_commands(TEXT):
            extra = ["--draws", DRAWS[args[0]]] if args[0] in DRAWS else []
            if args[0] == "run" and "--pipeline" in args:
                extra = ["--draws", "40", "--no-draws-ledger"]
            quiet = [] if args[0] == "report" else ["-q"]  # report prints one line and has no --quiet
            res = runner.invoke(app, [*args, *extra, *quiet])
            assert res.exit_code == 0, (args, res.output)
    finally:
        os.chdir(cwd)
    return work / "outputs"


def localise(sql: str, root: Path) -> str:
    return sql.replace("'outputs/", f"'{root}/")


def test_the_readme_lists_the_commands_its_queries_need():
    commands = [a[0] for a in readme_commands(TEXT)]
    assert commands == ["run", "sensitivity", "compare", "sweep", "report", "backtest", "assumptions", "run"]
    folders = set(re.findall(r"'outputs/([a-z0-9_]+)/", "\n".join(BLOCKS)))
    written = {a[a.index("--out") + 1].split("/")[1] for a in readme_commands(TEXT) if "--out" in a}
    assert folders <= written, f"queries read folders no command writes: {folders - written}"


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


@pytest.mark.parametrize(
    "heading, path",
    [
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
    ],
)
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


def test_top_programs_query_lists_programs_not_the_total(outputs):
    block = next(b for b in BLOCKS if "LIMIT 10" in b and "p95_cny DESC" in b)
    rows = duckdb.connect().sql(localise(block, outputs)).fetchall()
    assert len(rows) == 10 and not {"ALL", "ALL_EQUITY"} & {r[0] for r in rows}


def test_sweep_query_gives_one_row_a_point_equal_to_the_all_vintage_summary(outputs):
    block = next(b for b in BLOCKS if "baseline_sweep/sweep.parquet" in b and "cap_wan" in b)
    rows = duckdb.connect().sql(localise(block, outputs)).fetchall()
    assert [r[0] for r in rows] == [1500, 3000]
    ((city,),) = duckdb.sql(f"""SELECT round(mean_cny / 1e4) FROM '{outputs}/baseline_sweep/point-0/summary.parquet'
        WHERE program = 'ALL' AND payer = 'city' AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'""").fetchall()
    assert rows[0][1] == city


PYTHON = re.findall(r"```python\n(.*?)```", TEXT, flags=re.S)


@pytest.mark.parametrize("i", range(len(PYTHON)), ids=[f"python{i}" for i in range(len(PYTHON))])
def test_every_python_example_runs(outputs, i):
    """The pandas examples run as written on the README's folders (fiscal_year an integer in every reader)."""
    pytest.importorskip("pandas")
    code = PYTHON[i].replace('"outputs/', f'"{outputs}/')
    scope: dict = {}
    exec(compile(code, f"outputs/README.md python block {i}", "exec"), scope)
    if "city" in scope:
        assert len(scope["city"]) == 10 and str(scope["city"].fiscal_year.dtype) == "Int16"


def test_fiscal_year_is_an_integer_in_every_table_and_reader(outputs):
    """Every Parquet table and dataset the README's commands write: `fiscal_year` is an integer for pyarrow,
    DuckDB and pandas (nullable dtypes, draws read with ``partitioning=None`` as documented)."""
    pd = pytest.importorskip("pandas")
    files = sorted(p for p in outputs.rglob("*.parquet") if not any(part.endswith("draws") for part in p.parts))
    datasets = sorted({p for p in outputs.rglob("*draws") if p.is_dir()})
    seen = 0
    for path in [*files, *datasets]:
        schema = ds.dataset(path, format="parquet", partitioning=None).schema
        if "fiscal_year" not in schema.names:
            continue
        seen += 1
        assert pa_types.is_integer(schema.field("fiscal_year").type), path
        where = f"'{path}/**/*.parquet'" if path.is_dir() else f"'{path}'"
        ((kind,),) = duckdb.sql(f"SELECT DISTINCT typeof(fiscal_year) FROM {where} LIMIT 1").fetchall()
        assert kind in ("SMALLINT", "INTEGER", "BIGINT"), (path, kind)
        frame = (
            pd.read_parquet(path, partitioning=None, dtype_backend="numpy_nullable")
            if path.is_dir()
            else pd.read_parquet(path, dtype_backend="numpy_nullable")
        )
        assert pd.api.types.is_integer_dtype(frame.fiscal_year.dtype), (path, frame.fiscal_year.dtype)
    assert seen >= 5
