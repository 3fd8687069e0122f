"""The existing commitment register: loading, bad registers, run-off with attrition, vintage in the outputs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.cli import app
from fiscal_sim.engine.runoff import runoff
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import InputError
from fiscal_sim.register import load_register
from fiscal_sim.scenario import load_scenario

FIX = Path(__file__).parent / "fixtures" / "timeline"
WAN = 1e4
HEADER = [
    "record_id",
    "program",
    "jurisdiction",
    "award_date",
    "amount_wan",
    "annual_amount_wan",
    "schedule",
    "lag",
    "payments_made",
    "present",
]
RENT = ["r", "old.rent", "nanhu", "2023-03-01", "", "10", "annual:5", "0", "2", "true"]
"""10万元 a year, paid 2023–2027; 2 paid, so 2025, 2026, 2027 remain (remaining payments 0, 1, 2)"""


@pytest.fixture(scope="module")
def scen():
    return load_scenario(FIX / "with_register.yaml", load_catalogue(FIX))


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_register_rows_become_remaining_payments_by_year(scen):
    book = scen.register.books
    rent, grant = book["old.rent"], book["old.grant"]
    np.testing.assert_array_equal(rent.cash_cny / WAN, [[10, 10, 10, 0, 0, 0, 0]])
    np.testing.assert_array_equal(rent.index, [[0, 1, 2, -1, -1, -1, -1]])
    # a one-off of 100 decided 2024-11 with the program's lag (1 year): paid 2025
    np.testing.assert_array_equal(grant.cash_cny / WAN, [[100, 0, 0, 0, 0, 0, 0]])
    assert rent.opening_cny.sum() == 30 * WAN


def test_runoff_matches_the_closed_form_expectation(scen, tmp_path):
    """40 recipients, 20% attrition: E[cash of remaining payment k] = 40 × 10 × 0.8^k; a leaver lapses the rest
    in the year of the first missed payment: E[lapse 2026] = 40 × 0.2 × 20, E[lapse 2027] = 40 × 0.16 × 10."""
    reg = load_register(write_csv(tmp_path / "r.csv", [[f"r{i}", *RENT[1:]] for i in range(40)]), scen)
    sp = next(sp for sp in scen.programs if sp.id == "old.rent")
    big = scen.with_settings(draws=4000)
    L = runoff(big, sp, reg.books["old.rent"], 0, 4000)
    cash, lapse = L.cash.sum(axis=1) / WAN, L.cancelled.sum(axis=1) / WAN
    for year, p in ((0, 1.0), (1, 0.8), (2, 0.64)):
        se = 10 * np.sqrt(40 * p * (1 - p) / 4000)
        assert abs(cash[:, year].mean() - 400 * p) <= 4 * se + 1e-9, year
    assert cash[:, 0].min() == cash[:, 0].max() == 400  # the next payment is certain
    for year, expect, p in ((1, 40 * 0.2 * 20, 0.2), (2, 40 * 0.16 * 10, 0.16)):
        se = (20 if year == 1 else 10) * np.sqrt(40 * p * (1 - p) / 4000)
        assert abs(lapse[:, year].mean() - expect) <= 4 * se
    # every draw: opening 1200 = paid + lapsed; nothing outstanding after the last payment
    np.testing.assert_allclose(cash.sum(axis=1) + lapse.sum(axis=1), 1200)
    np.testing.assert_allclose(L.outstanding[:, :, 2], 0, atol=1e-6)
    np.testing.assert_allclose(L.outstanding[:, :, 0].sum(axis=1) / WAN, 800)


def test_register_rows_share_costs_like_new_awards(scen):
    """The city / Nanhu 50/50 regime applies to existing payments as to new ones (the existing-vintage totals
    by payer: half of every existing payment to each)."""
    from fiscal_sim.engine.ledger import layout, series_values

    lay = layout(scen, by_vintage=True)
    v = series_values(scen, lay, simulate_chunk(scen, 0, 200))
    c_city, c_nanhu = lay.blocks[("ALL", "city", "existing")], lay.blocks[("ALL", "nanhu", "existing")]
    Y = len(scen.years)
    cash_city, cash_nanhu = v[c_city + Y], v[c_nanhu + Y]  # cash of 2025
    np.testing.assert_allclose(cash_city, (100 + 10) / 2 * WAN)  # old.grant's 100万 and old.rent's 10万 a year
    np.testing.assert_array_equal(cash_city, cash_nanhu)
    np.testing.assert_array_equal(cash_city + cash_nanhu, v[lay.blocks[("ALL", "ALL", "existing")] + Y])


@pytest.mark.parametrize(
    "row, column, message",
    [
        (["x", "no.such", "nanhu", "2024-01-01", "1", "", "", "", "0", "true"], "program", "unknown program"),
        (["x", "old.grant", "nanhu", "2024-01-01", "-5", "", "", "", "0", "true"], "amount_wan", "negative amount"),
        (
            ["x", "old.grant", "nanhu", "2025-03-01", "5", "", "", "", "0", "true"],
            "award_date",
            "not before the horizon",
        ),
        (["x", "old.grant", "haining", "2024-01-01", "5", "", "", "", "0", "true"], "jurisdiction", "not where"),
        (
            ["x", "old.grant", "nanhu", "2024-01-01", "5", "", "monthly", "", "0", "true"],
            "schedule",
            "unknown schedule",
        ),
        (["x", "old.grant", "nanhu", "2024-01-01", "", "5", "", "", "0", "true"], "schedule", "annual amount needs"),
        (["x", "old.grant", "nanhu", "2024-01-01", "5", "", "", "", "0", "maybe"], "present", "not true/false"),
    ],
)
def test_bad_rows_name_file_row_and_column(scen, tmp_path, row, column, message):
    path = write_csv(tmp_path / "bad.csv", [RENT, row])
    with pytest.raises(InputError) as e:
        load_register(path, scen)
    text = str(e.value)
    assert str(path) in text and f"row 2, column {column}" in text and message in text, text


def test_missing_columns_are_named(scen, tmp_path):
    path = write_csv(tmp_path / "bad.csv", [RENT[:8] + [RENT[9]]], HEADER[:8] + ["present"])
    with pytest.raises(InputError, match="header: missing column\\(s\\): payments_made"):
        load_register(path, scen)


def test_parquet_and_xlsx_registers_read_like_csv(scen, tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    rows = [RENT, ["g", "old.grant", "nanhu", "2024-11-01", "100", "", "", "", "0", "true"]]
    base = load_register(write_csv(tmp_path / "r.csv", rows), scen)
    table = pa.table({h: [r[i] or None for r in rows] for i, h in enumerate(HEADER)})
    pq.write_table(table, tmp_path / "r.parquet")
    wb = openpyxl.Workbook()
    wb.active.append(HEADER)
    for r in rows:
        wb.active.append([float(v) if v.replace(".", "").isdigit() and i in (4, 5) else v for i, v in enumerate(r)])
    wb.save(tmp_path / "r.xlsx")
    for other in (load_register(tmp_path / "r.parquet", scen), load_register(tmp_path / "r.xlsx", scen)):
        for pid, book in base.books.items():
            np.testing.assert_array_equal(other.books[pid].cash_cny, book.cash_cny)
            np.testing.assert_array_equal(other.books[pid].index, book.index)


def test_run_writes_vintage_read_back_with_duckdb(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(FIX / "with_register.yaml"), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    draws = f"read_parquet('{out}/draws/**/*.parquet', hive_partitioning = true)"
    summary = f"'{out}/summary.parquet'"
    got = dict(
        duckdb.sql(f"SELECT vintage, sum(cash_cny) / 200 FROM {draws} WHERE fiscal_year = 2025 GROUP BY 1").fetchall()
    )
    ((existing,),) = duckdb.sql(f"""SELECT mean_cny FROM {summary} WHERE program = 'ALL' AND payer = 'ALL'
        AND vintage = 'existing' AND measure = 'cash' AND fiscal_year = 2025""").fetchall()
    rows = dict(
        duckdb.sql(f"""SELECT vintage, mean_cny FROM {summary} WHERE program = 'ALL' AND payer = 'ALL'
        AND measure = 'cash' AND period = 'horizon'""").fetchall()
    )
    assert existing == pytest.approx(got["existing"]) and existing == 110 * WAN  # 10 rent + 100 grant, both certain
    assert rows["ALL"] == pytest.approx(rows["new"] + rows["existing"], rel=1e-12)
    split = {p for (p,) in duckdb.sql(f"SELECT DISTINCT program FROM {summary} WHERE vintage = 'existing'").fetchall()}
    assert split == {"ALL", "old.grant", "old.rent"}  # the totals and the programs the register names
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["commitments"]["rows"] == 2 and manifest["commitments"]["opening_outstanding_cny"] == 130 * WAN
    assert any(a["kind"] == "family" for a in manifest["timeline"])
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert (
        "政策时间线" in html and "successor_replaces: old.grant → new.grant" in html and "register.csv (2 rows)" in html
    )


def test_the_baseline_estimates_and_the_illustration_declares_itself_synthetic():
    """The shipped baseline never lets the synthetic register displace the estimate: it estimates every
    pre-horizon cohort. The illustration scenario loads the register, which says it is synthetic in its file."""
    root = Path(__file__).resolve().parents[1] / "scenarios"
    for name in ("baseline", "baseline_as_written", "baseline_current_policy"):
        base = load_scenario(root / f"{name}.yaml")
        assert base.register is None and base.estimated, name
    book = yaml.safe_load((root / "baseline.yaml").read_text())["scenario"]["commitments"]
    assert "register" not in book and book["estimate_before"] == {"from": 2017, "programs": "uncovered"}
    for f in root.glob("*.yaml"):  # no shipped scenario but the illustration loads it
        if f.name != "illustrative_register.yaml":
            assert load_scenario(f).register is None, f.name
    scen = load_scenario(root / "illustrative_register.yaml")
    assert scen.register is not None and scen.register.synthetic and scen.register.rows >= 20
    text = (root / "commitments" / "illustrative_register.csv").read_text(encoding="utf-8")
    assert text.startswith("# synthetic: true")
    assert all("SYNTHETIC" in line for line in text.splitlines()[3:])
    from fiscal_sim.io.dimensions import existing_source

    housing = existing_source(scen, "jwf2017-4.talent-housing")
    assert housing is not None and housing.startswith("register (SYNTHETIC)")
    # an estimated program skips exactly the award years the register has rows for
    for pid, ph in scen.estimated.items():
        assert ph.skip == {y for y in scen.register.years.get(pid, ()) if y >= ph.first}, pid
    assert any(ph.skip for ph in scen.estimated.values())


def test_overdue_payments_fall_in_the_first_year_and_count_as_one(scen, tmp_path):
    """Awarded 2021 (paid 2021–2025, none made): four overdue payments and 2025's fall due in 2025, certain;
    a 5-year schedule from 2023 with 2 paid leaves 2025–2027, then nothing beyond the horizon."""
    rows = [
        ["o", "old.rent", "nanhu", "2021-05-01", "", "10", "annual:5", "0", "0", "true"],
        ["b", "old.rent", "nanhu", "2024-05-01", "", "10", "annual:10", "0", "1", "true"],
    ]
    book = load_register(write_csv(tmp_path / "r.csv", rows), scen).books["old.rent"]
    np.testing.assert_array_equal(book.cash_cny / WAN, [[50, 0, 0, 0, 0, 0, 0], [10] * 7])
    np.testing.assert_array_equal(book.index, [[0, -1, -1, -1, -1, -1, -1], list(range(7))])
    np.testing.assert_array_equal(book.beyond_cny / WAN, [0, 20])  # 2032 and 2033
    np.testing.assert_array_equal(book.beyond_index, [-1, 7])


def test_figures_resting_on_synthetic_rows_say_so_everywhere(tmp_path):
    """The illustration scenario: headline.json, the printed headline, programs.parquet, the report's headline and
    the workbook all say the register is synthetic; the baseline says its book is estimated instead."""
    import duckdb
    import openpyxl
    from typer.testing import CliRunner

    from fiscal_sim.cli import app

    root = Path(__file__).resolve().parents[1] / "scenarios"
    runner = CliRunner()
    out = tmp_path / "ill"
    res = runner.invoke(
        app,
        [
            "run",
            str(root / "illustrative_register.yaml"),
            "--draws",
            "100",
            "--out",
            str(out),
            "--no-draws-ledger",
            "--lang",
            "en",
        ],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    h = json.loads((out / "headline.json").read_text(encoding="utf-8"))
    note = next(n for n in h["data_notes"] if n["kind"] == "synthetic_register")
    assert "SYNTHETIC register illustrative_register.csv" in note["en"] and "合成登记册" in note["zh"]
    assert note["en"] in " ".join(res.output.split()) or note["en"].split(":")[0] in res.output
    ((n,),) = duckdb.sql(
        f"SELECT count(*) FROM '{out}/programs.parquet' WHERE existing_source LIKE 'register (SYNTHETIC)%'"
    ).fetchall()
    assert n == len(note["programs"]) > 0
    assert runner.invoke(app, ["export", str(out), "--xlsx", str(tmp_path / "ill.xlsx")]).exit_code == 0
    texts = [c.value for c in openpyxl.load_workbook(tmp_path / "ill.xlsx")["Headline text 结论文字"]["A"]]
    assert note["zh"] in texts and note["en"] in texts
    base = tmp_path / "base"
    assert (
        runner.invoke(
            app, ["run", str(root / "baseline.yaml"), "--draws", "100", "--out", str(base), "-q", "--no-draws-ledger"]
        ).exit_code
        == 0
    )
    kinds = [n["kind"] for n in json.loads((base / "headline.json").read_text(encoding="utf-8"))["data_notes"]]
    assert kinds == ["estimated_cohorts"]
