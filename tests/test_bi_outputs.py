"""Outputs BI tools and Excel take as they are: no double counting, total members, fen, xlsx and CSV exports."""

from __future__ import annotations

import json

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from fiscal_sim.cli import app

HERE = Path(__file__).parent
README = (HERE.parent / "outputs" / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bi") / "baseline"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(HERE / "scenarios" / "crn_base.yaml"),
            "--draws",
            "200",
            "--out",
            str(out),
            "-q",
            "--no-draws-ledger",
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def test_the_readme_way_of_not_double_counting_gives_the_total(run_dir):
    block = next(b for b in re.findall(r"```sql\n(.*?)```", README, flags=re.S) if "sum_of_parts_yi" in b)
    ((total, parts),) = duckdb.sql(block.replace("'outputs/baseline/", f"'{run_dir}/")).fetchall()
    assert parts == pytest.approx(total, rel=1e-9)
    # the naive sum over every row counts the total several times
    ((naive,),) = duckdb.sql(
        f"SELECT sum(mean_cny) / 1e8 FROM '{run_dir}/summary.parquet' "
        "WHERE vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"
    ).fetchall()
    assert naive > 3 * total


def test_is_total_marks_exactly_the_total_rows(run_dir):
    rows = duckdb.sql(
        f"SELECT count(*) FILTER (WHERE is_total <> (program IN ('ALL', 'ALL_EQUITY') OR payer = 'ALL')),"
        f" count(*) FILTER (WHERE is_total), count(*) FROM '{run_dir}/summary.parquet'"
    ).fetchall()
    wrong, totals, n = rows[0]
    assert wrong == 0 and 0 < totals < n


def test_dimension_tables_hold_the_total_members_with_labels_and_order(run_dir):
    progs = {r["program"]: r for r in pq.read_table(run_dir / "programs.parquet").to_pylist()}
    payers = {r["payer"]: r for r in pq.read_table(run_dir / "payers.parquet").to_pylist()}
    assert progs["ALL"]["is_total"] and progs["ALL_EQUITY"]["is_total"] and payers["ALL"]["is_total"]
    assert progs["ALL"]["title_zh"] and payers["ALL"]["name_zh"] == "全部财政合计"
    assert payers["ALL"]["sort_order"] == 0 and progs["ALL"]["sort_order"] == 0
    assert len({r["sort_order"] for r in progs.values()}) == len(progs)
    # every summary row joins its dimension members: nothing dropped by an inner join
    ((lost,),) = duckdb.sql(
        f"SELECT count(*) FROM '{run_dir}/summary.parquet' s ANTI JOIN '{run_dir}/programs.parquet' USING (program)"
    ).fetchall()
    ((lost_p,),) = duckdb.sql(
        f"SELECT count(*) FROM '{run_dir}/summary.parquet' s ANTI JOIN '{run_dir}/payers.parquet' USING (payer)"
    ).fetchall()
    assert lost == lost_p == 0


def test_money_is_rounded_to_the_fen(run_dir):
    t = pq.read_table(run_dir / "summary.parquet")
    for name in t.column_names:
        if name.endswith("_cny"):
            v = [x for x in t[name].to_pylist() if x is not None]
            assert all(abs(x * 100 - round(x * 100)) < 1e-6 * max(1.0, abs(x)) for x in v), name
    assert pq.ParquetFile(run_dir / "summary.parquet").metadata.row_group(0).column(0).compression == "ZSTD"


def test_xlsx_export_reads_back_with_openpyxl(run_dir, tmp_path):
    import openpyxl

    target = tmp_path / "run.xlsx"
    res = CliRunner().invoke(app, ["export", str(run_dir), "--xlsx", str(target), "--csv", str(tmp_path / "csv")])
    assert res.exit_code == 0, res.output
    wb = openpyxl.load_workbook(target)
    assert wb.sheetnames[0] == "Headline 结论"
    head = {(r[0], r[1]): r for r in wb["Headline 结论"].iter_rows(min_row=2, values_only=True)}
    ((h_mean, h_p90),) = duckdb.sql(
        f"SELECT mean_cny, p90_cny FROM '{run_dir}/summary.parquet' WHERE program = 'ALL' "
        "AND payer = 'city' AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"
    ).fetchall()
    assert head[("payer", "city")][5] == pytest.approx(h_mean / 1e4, abs=0.01)  # a number, not text
    assert head[("payer", "city")][6] == pytest.approx(h_p90 / 1e4, abs=0.01)
    assert head[("payer", "ALL")][4] == "total" and head[("payer", "city")][4] == "member"
    ((mean, p90),) = duckdb.sql(
        f"SELECT mean_cny, p90_cny FROM '{run_dir}/summary.parquet' WHERE program = 'ALL' AND "
        "payer = 'city' AND vintage = 'ALL' AND measure = 'cash' AND fiscal_year = 2027"
    ).fetchall()
    for sheet, want in (("Cash mean 现金均值 (万元)", mean), ("Cash P90 现金P90 (万元)", p90)):
        ws = wb[sheet]
        header = [c.value for c in ws[1]]
        by = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
        assert by["city"][header.index("2027")] == pytest.approx(want / 1e4, abs=0.01)
    # the members' means add up to the total: a SUM over is_total = FALSE never double counts
    ws = wb["Cash mean 现金均值 (万元)"]
    header = [c.value for c in ws[1]]
    col, tot = header.index("horizon 合计"), header.index("is_total (filter FALSE before SUM)")
    rows = list(ws.iter_rows(min_row=2, values_only=True))
    total = next(r[col] for r in rows if r[tot])
    assert sum(r[col] for r in rows if not r[tot]) == pytest.approx(total, rel=1e-6)
    assert ws.auto_filter.ref
    ws = wb["Budget lines 超预算概率"]
    header = [c.value for c in ws[1]]
    lines = list(ws.iter_rows(min_row=2, values_only=True))
    assert lines and all(0 <= r[header.index("P(exceed)")] <= 1 for r in lines)
    # each line says its basis, as headline.json does; an illustrative line says it is not an appropriation
    basis = json.loads((run_dir / "headline.json").read_text(encoding="utf-8"))["basis"]["budget_basis"]
    for r in lines:
        said = r[header.index("basis 依据")]
        assert said == basis[f"{r[header.index('payer')]}/{r[header.index('program')]}"]
        assert said == "document" or "not an appropriation" in r[header.index("source 出处")]
    assert {"Top programs 主要项目 (万元)", "Assumptions 假设"} <= set(wb.sheetnames)
    csv = (tmp_path / "csv" / "summary.csv").read_bytes()
    assert csv.startswith("\ufeff".encode()) and b"is_total" in csv.splitlines()[0]
    ((n,),) = duckdb.sql(f"SELECT count(*) FROM read_csv('{tmp_path}/csv/summary.csv')").fetchall()
    assert n == pq.read_metadata(run_dir / "summary.parquet").num_rows


def test_export_of_a_non_run_folder_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["export", str(tmp_path), "--xlsx", str(tmp_path / "x.xlsx")])
    assert res.exit_code == 1 and "not a run folder" in res.output


def test_export_never_replaces_what_it_did_not_write(run_dir, tmp_path):
    mine = tmp_path / "notes.xlsx"
    mine.write_bytes(b"my own file")
    res = CliRunner().invoke(app, ["export", str(run_dir), "--xlsx", str(mine)])
    assert res.exit_code == 1 and "not replacing it" in res.output and mine.read_bytes() == b"my own file"
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "plan.txt").write_text("keep me")
    res = CliRunner().invoke(app, ["export", str(run_dir), "--csv", str(folder)])
    assert res.exit_code == 1 and "plan.txt" in res.output and (folder / "plan.txt").read_text() == "keep me"
    ours = tmp_path / "run.xlsx"
    for _ in range(2):  # a workbook fiscal-sim wrote is replaced by the next export
        assert (
            CliRunner()
            .invoke(app, ["export", str(run_dir), "--xlsx", str(ours), "--csv", str(tmp_path / "csv")])
            .exit_code
            == 0
        )


def _formulas(path: Path) -> list[str]:
    import openpyxl

    wb = openpyxl.load_workbook(path)
    return [f"{ws.title}!{c.coordinate}" for ws in wb for row in ws.iter_rows() for c in row if c.data_type == "f"]


EVIL = '=HYPERLINK("http://example.invalid","open me")'


def test_text_never_executes_in_the_workbook_or_csv(tmp_path):
    """A scenario whose texts start with = or + (description, titles): the exported workbook holds
    no formula and the CSV no cell a spreadsheet would evaluate; numbers stay numbers."""
    import csv

    import yaml

    scen = tmp_path / "evil.yaml"
    scen.write_text(
        yaml.safe_dump(
            {
                "scenario": {
                    "extends": str(HERE / "scenarios" / "crn_base.yaml"),
                    "name": "evil",
                    "description": EVIL,
                    "overrides": {
                        "jzf2017-3.major-conversion": {
                            "title_zh": EVIL,
                            "title_en": "+1+1",
                        }
                    },
                }
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(scen), "--draws", "100", "--out", str(out), "-q", "--no-draws-ledger"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        app, ["export", str(out), "--xlsx", str(tmp_path / "e.xlsx"), "--csv", str(tmp_path / "csv")]
    )
    assert res.exit_code == 0, res.output
    assert _formulas(tmp_path / "e.xlsx") == []
    import openpyxl

    texts = {
        c.value
        for ws in openpyxl.load_workbook(tmp_path / "e.xlsx")
        for row in ws.iter_rows()
        for c in row
        if isinstance(c.value, str)
    }
    assert "'" + EVIL in texts, "the title reaches the workbook, neutralised"
    assert not {t for t in texts if t.startswith(("=", "+", "-", "@", "\t", "\r"))}
    for f in (tmp_path / "csv").glob("*.csv"):
        with open(f, encoding="utf-8-sig", newline="") as fh:
            cells = [c for row in csv.reader(fh) for c in row]
        bad = [
            c
            for c in cells
            if c.startswith(("=", "+", "@", "\t", "\r")) or (c.startswith("-") and not re.fullmatch(r"-[0-9.eE+-]+", c))
        ]
        assert not bad, (f.name, bad[:3])
    rows = duckdb.sql(
        f"SELECT title_zh, title_en FROM read_csv('{tmp_path}/csv/programs.csv') "
        "WHERE program = 'jzf2017-3.major-conversion'"
    ).fetchall()
    assert rows == [("'" + EVIL, "'+1+1")]


def test_compare_and_sweep_folders_export(tmp_path):
    import openpyxl

    base, cap = HERE / "scenarios" / "crn_base.yaml", HERE / "scenarios" / "crn_cap.yaml"
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["compare", str(base), str(cap), "--draws", "100", "--out", str(tmp_path / "cmp"), "-q"]
        ).exit_code
        == 0
    )
    assert (
        runner.invoke(
            app,
            [
                "sweep",
                str(base),
                "--set",
                "programs.jzf2017-3.major-conversion.cap=1500,3000",
                "--draws",
                "50",
                "--out",
                str(tmp_path / "sw"),
                "-q",
            ],
        ).exit_code
        == 0
    )
    for name in ("cmp", "sw"):
        res = runner.invoke(
            app,
            [
                "export",
                str(tmp_path / name),
                "--xlsx",
                str(tmp_path / f"{name}.xlsx"),
                "--csv",
                str(tmp_path / f"{name}_csv"),
            ],
        )
        assert res.exit_code == 0, res.output
    ws = openpyxl.load_workbook(tmp_path / "cmp.xlsx")["Change 变化 (万元)"]
    header = [c.value for c in ws[1]]
    row = next(r for r in ws.iter_rows(min_row=2, values_only=True) if r[0] == "city" and r[2] == "horizon")
    ((change,),) = duckdb.sql(
        f"SELECT change_mean_cny FROM '{tmp_path}/cmp/compare.parquet' WHERE program = 'ALL' "
        "AND payer = 'city' AND measure = 'cash' AND period = 'horizon'"
    ).fetchall()
    assert row[header.index("change (万元)")] == pytest.approx(change / 1e4, abs=0.01)
    ws = openpyxl.load_workbook(tmp_path / "sw.xlsx")["Points 参数点 (万元)"]
    header = [c.value for c in ws[1]]
    got = {
        (r[0], r[header.index("payer")]): r[header.index("horizon mean (万元)")]
        for r in ws.iter_rows(min_row=2, values_only=True)
    }
    want = duckdb.sql(
        f"SELECT point, payer, mean_cny FROM '{tmp_path}/sw/sweep.parquet' WHERE program = 'ALL' AND "
        "vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"
    ).fetchall()
    assert len(got) == len(want) and all(got[(p, y)] == pytest.approx(m / 1e4, abs=0.01) for p, y, m in want)
    assert {f.name for f in (tmp_path / "sw_csv").glob("*.csv")} == {"sweep.csv", "points.csv"}
    assert (tmp_path / "cmp_csv" / "compare.csv").is_file()


def test_a_truncated_summary_is_one_clear_line(run_dir, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(run_dir, bad)
    data = (bad / "summary.parquet").read_bytes()
    (bad / "summary.parquet").write_bytes(data[: len(data) // 2])
    res = CliRunner().invoke(app, ["export", str(bad), "--csv", str(tmp_path / "csv")])
    assert res.exit_code == 1 and "summary.parquet: not a readable Parquet file" in res.output, res.output
    assert not (tmp_path / "csv").exists()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet=st.sampled_from("=+-@\t\r\0'ab1 －＝")), st.text()), max_size=20))
def test_the_vectorised_and_the_cell_rule_neutralise_alike(texts):
    """The CSV path (pyarrow, vectorised) and the workbook path (per cell) apply one rule: a leading ' exactly on
    text starting with a formula character, everything else unchanged."""
    import pyarrow as pa

    from fiscal_sim.export import FORMULA_START, neutralised, safe

    got = neutralised(pa.table({"t": pa.array(texts, pa.string())})).column("t").to_pylist()
    assert got == [safe(t) for t in texts]
    for before, after in zip(texts, got):
        risky = before is not None and before[:1] in FORMULA_START
        assert after == ("'" + before if risky else before)


def test_a_budget_line_a_document_states_shows_its_source_in_the_workbook(tmp_path):
    """basis: document lines carry their clause into the workbook; illustrative ones say they are not an
    appropriation (the same basis as headline.json)."""
    from openpyxl import load_workbook

    scen = tmp_path / "documented.yaml"
    clause = "嘉委发〔2017〕4号 四（十二）: 每年安排2000万元 (test line)"
    scen.write_text(
        f"""scenario:
  extends: {HERE / "scenarios" / "crn_base.yaml"}
  name: documented
  budgets:
    - {{payer: city, amount: 2000, basis: document, source: "{clause}"}}
    - {{payer: nanhu, amount: 500}}
""",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(scen), "--draws", "100", "--out", str(out), "-q", "--no-draws-ledger"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["export", str(out), "--xlsx", str(tmp_path / "w.xlsx")])
    assert res.exit_code == 0, res.output
    ws = load_workbook(tmp_path / "w.xlsx")["Budget lines 超预算概率"]
    header = [c.value for c in ws[1]]
    said = {
        (r[header.index("payer")], r[header.index("basis 依据")], r[header.index("source 出处")])
        for r in ws.iter_rows(min_row=2, values_only=True)
    }
    assert ("city", "document", clause) in said
    assert any(p == "nanhu" and b == "illustrative" and "not an appropriation" in s for p, b, s in said)
