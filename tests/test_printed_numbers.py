"""Every number `compare` prints (its headline lines and three tables) and `sensitivity` prints equals an
independent DuckDB query of the Parquet they wrote (run: tests/test_printed_run.py;
the sweep's table and point lines: tests/test_sweep.py; calibrate and backtest: tests/test_calibrate.py)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from fiscal_sim.cli import app

HERE = Path(__file__).parent / "scenarios"
WIDE = {"COLUMNS": "220"}


def _wan(cny: float, signed: bool = False) -> str:
    """Whole 万元 as the terminal prints them (Python's round of yuan / 1e4, thousands separated)."""
    v = round(cny / 1e4)
    return f"{v:+,}" if signed and v else f"{v:,}"


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "cmp"
    res = CliRunner().invoke(
        app,
        ["compare", str(HERE / "crn_base.yaml"), str(HERE / "crn_cap.yaml"), "--draws", "200", "--out", str(out)],
        env=WIDE,
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def test_compare_headline_lines_equal_compare_parquet(compared):
    out, text = compared
    rows = duckdb.sql(
        f"SELECT payer, baseline_mean_cny, reform_mean_cny, change_mean_cny, change_se_cny "
        f"FROM '{out}/compare.parquet' WHERE program = 'ALL' AND measure = 'cash' "
        "AND period = 'horizon' AND payer IN ('ALL', 'city')"
    ).fetchall()
    assert len(rows) == 2
    for payer, b, r, c, se in rows:
        line = f"{b / 1e8:,.2f} → {r / 1e8:,.2f} ({c / 1e8:+,.2f} ± {se / 1e8:,.2f})"
        assert line in text, (payer, line)


def test_sensitivity_table_equals_sensitivity_parquet(tmp_path):
    run = tmp_path / "run"
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["run", str(HERE / "crn_base.yaml"), "--draws", "300", "--out", str(run), "-q", "--no-draws-ledger"]
        ).exit_code
        == 0
    )
    res = runner.invoke(app, ["sensitivity", str(run), "--top", "5"], env=WIDE)
    assert res.exit_code == 0, res.output
    printed = re.findall(
        r"^│ (\d+)\s+│ .+? │ ([-+]?[\d,]+) / ([-+]?[\d,]+)\s+│ ([-+]\d\.\d{3})\s+│ ([\d.]+)%", res.output, flags=re.M
    )
    want = duckdb.sql(
        f"SELECT payer, rank, swing_low_cny, swing_high_cny, spearman_rho, first_order_index "
        f"FROM '{run}/sensitivity.parquet' WHERE period = 'horizon' AND payer IN ('ALL', 'city') "
        "AND rank <= 5 ORDER BY payer = 'city', rank"
    ).fetchall()
    assert len(printed) == len(want) == 10
    assert "rate_factor:" not in res.output and "shared_shock:" not in res.output  # the planner's words, no codes
    for (rank, lo, hi, rho, share), (payer, r, w_lo, w_hi, w_rho, w_share) in zip(printed, want):
        assert int(rank) == r
        assert (lo, hi) == (_wan(w_lo, True), _wan(w_hi, True)), (payer, r)
        assert rho == f"{w_rho:+.3f}" and share == f"{100 * w_share:.1f}", (payer, r)


def _rows(text: str, first: int) -> list[list[str]]:
    """The body rows of every table printed, as cells (no '+' sign, no blanks), with at least ``first`` cells."""
    rows = [
        [c.strip().lstrip("+") for c in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]
    return [r for r in rows if len(r) >= first]


def test_compare_tables_equal_compare_parquet(compared):
    """The payer × year table (all payers and the city), the other payers and the programs tables: each printed
    row is one row of compare.parquet, matched by value for payers (names or codes may label them)."""
    out, text = compared
    sql = (
        f"SELECT program, payer, coalesce(CAST(fiscal_year AS VARCHAR), 'horizon'), baseline_mean_cny, "
        f"reform_mean_cny, change_mean_cny, change_se_cny, change_p05_cny, change_p95_cny "
        f"FROM '{out}/compare.parquet' WHERE measure = 'cash'"
    )
    want = {(p, r, y): [_wan(v) for v in vals] for p, r, y, *vals in duckdb.sql(sql).fetchall()}
    exceed = {
        (r, str(y)): f"{100 * b:.1f}% → {100 * f:.1f}%"
        for r, y, b, f in duckdb.sql(
            f"SELECT payer, fiscal_year, baseline_p_exceed, reform_p_exceed FROM '{out}/compare.parquet' "
            "WHERE program = 'ALL' AND measure = 'cash' AND period = 'year' AND baseline_p_exceed IS NOT NULL"
        ).fetchall()
    }
    assert exceed
    rows = _rows(text, 5)
    year_table = [r for r in rows if len(r) >= 8]
    seen = []
    for _label, year, *cells in year_table:
        payer = next(p for p in ("ALL", "city") if want.get(("ALL", p, year), [])[:6] == cells[:6])
        assert cells[6] == exceed.get((payer, year), ""), (payer, year)
        seen.append((payer, year))
    years = {y for _, _, y in want if y != "horizon"}
    assert sorted(seen) == sorted((p, y) for p in ("ALL", "city") for y in [*years, "horizon"])
    five = [r for r in rows if len(r) == 5]
    programs = [r for r in five if (r[0], "ALL", "horizon") in want]
    for name, *cells in programs:
        assert cells == want[(name, "ALL", "horizon")][:4], name
    others = {p: w[:4] for (g, p, y), w in want.items() if g == "ALL" and y == "horizon" and p not in ("ALL", "city")}
    payers = [next(p for p, w in others.items() if w == r[1:]) for r in five if r not in programs]
    assert len(payers) == len(set(payers)) == len(five) - len(programs) > 0
    ((changed,),) = duckdb.sql(
        f"SELECT count(*) FROM '{out}/compare.parquet' WHERE program NOT LIKE 'ALL%' "
        "AND payer = 'ALL' AND measure = 'cash' AND period = 'horizon' "
        "AND abs(change_mean_cny) > 1"
    ).fetchall()
    assert len(programs) == changed > 0
