"""Every number `run` prints in its payer tables equals an independent DuckDB query of the summary.parquet it
wrote (headline.json: tests/test_headline.py; compare, sensitivity: tests/test_printed_numbers.py)."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from fiscal_sim.cli import app

HERE = Path(__file__).parent / "scenarios"
WIDE = {"COLUMNS": "220"}


def _wan(cny: float) -> str:
    """Whole 万元 as the terminal prints them, thousands separated."""
    return f"{round(cny / 1e4):,}"


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("run") / "run"
    res = CliRunner().invoke(app, ["run", str(HERE / "crn_base.yaml"), "--draws", "200", "--out", str(out),
                                   "--no-draws-ledger"], env=WIDE)
    assert res.exit_code == 0, res.output
    return out, res.output


def _totals(out: Path, period: str) -> list[tuple]:
    return duckdb.sql(f"SELECT payer, fiscal_year, mean_cny, p90_cny FROM '{out}/summary.parquet' "
                      f"WHERE program = 'ALL' AND vintage = 'ALL' AND measure = 'cash' AND period = '{period}' "
                      "ORDER BY payer, fiscal_year").fetchall()


def test_horizon_lines_equal_the_summary(ran):
    out, text = ran
    head = text.split("Budget line")[0]
    rows = _totals(out, "horizon")
    assert rows, "no horizon rows written"
    for payer, _, mean, p90 in rows:
        assert re.search(rf"\s{re.escape(f'{mean / 1e8:,.2f}')}\s+{re.escape(f'{p90 / 1e8:,.2f}')}$", head,
                         flags=re.M), (payer, mean, p90)


def test_year_table_equals_the_summary(ran):
    out, text = ran
    printed: dict[tuple[str, str], list[str]] = {}
    payer = ""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if line.startswith("│") and len(cells) > 2 and cells[1] in ("mean", "P90"):
            payer = cells[0] or payer
            printed[(payer, cells[1])] = cells[2:]
    rows = _totals(out, "year")
    years = sorted({y for _, y, _, _ in rows})
    want: dict[tuple[str, str], list[str]] = {}
    for p, y, mean, p90 in rows:
        want.setdefault((p, "mean"), [""] * len(years))[years.index(y)] = _wan(mean)
        want.setdefault((p, "P90"), [""] * len(years))[years.index(y)] = _wan(p90)
    assert printed and set(printed) <= set(want), sorted(printed)
    assert {p for p, _ in printed} >= {"ALL", "city"}
    for key, cells in printed.items():
        assert cells == want[key], key
