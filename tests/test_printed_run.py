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
    res = CliRunner().invoke(
        app, ["run", str(HERE / "crn_base.yaml"), "--draws", "200", "--out", str(out), "--no-draws-ledger"], env=WIDE
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def _totals(out: Path, period: str) -> list[tuple]:
    return duckdb.sql(
        f"SELECT payer, fiscal_year, mean_cny, p90_cny FROM '{out}/summary.parquet' "
        f"WHERE program = 'ALL' AND vintage = 'ALL' AND measure = 'cash' AND period = '{period}' "
        "ORDER BY payer, fiscal_year"
    ).fetchall()


def test_horizon_lines_equal_the_summary(ran):
    out, head = ran
    rows = _totals(out, "horizon")
    assert rows, "no horizon rows written"
    for payer, _, mean, p90 in rows:
        pair = rf"(?:^|\s){re.escape(f'{mean / 1e8:,.2f}')}\s+{re.escape(f'{p90 / 1e8:,.2f}')}(?:\s|$)"
        assert re.search(pair, head, flags=re.M), (payer, mean, p90)  # the label may come before or after


def test_year_table_equals_the_summary(ran):
    """Each printed mean / P90 row is one payer's row of the summary, and every payer with cash has both: matched
    by value, so the test holds whatever name or code labels the row (names may wrap over lines)."""
    out, text = ran
    printed: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().split("│")[1:-1]]  # the label cell stays, even when blank
        if line.startswith("│") and len(cells) > 2 and cells[1] in ("mean", "P90"):
            printed.append((cells[1], cells[2:]))
    rows = _totals(out, "year")
    years = sorted({y for _, y, _, _ in rows})
    want: dict[tuple[str, str], list[str]] = {}
    for p, y, mean, p90 in rows:
        want.setdefault((p, "mean"), [""] * len(years))[years.index(y)] = _wan(mean)
        want.setdefault((p, "P90"), [""] * len(years))[years.index(y)] = _wan(p90)
    matched = []
    for stat, cells in printed:
        payers = [p for (p, s), w in want.items() if s == stat and w == cells]
        assert payers, (stat, cells)
        matched.append((payers[0], stat))
    with_cash = {p for p, _, mean, _ in rows if mean > 0}
    assert sorted(matched) == sorted((p, s) for p in with_cash for s in ("mean", "P90"))
    assert {"ALL", "city"} <= with_cash
