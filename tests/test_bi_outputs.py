"""Outputs BI tools and Excel take as they are: no double counting, total members, fen, xlsx and CSV exports."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fiscal_sim.cli import app

HERE = Path(__file__).parent
README = (HERE.parent / "outputs" / "README.md").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bi") / "baseline"
    res = CliRunner().invoke(app, ["run", str(HERE / "scenarios" / "crn_base.yaml"), "--draws", "200", "--out", str(out),
                                   "-q", "--no-draws-ledger"])
    assert res.exit_code == 0, res.output
    return out


def test_the_readme_way_of_not_double_counting_gives_the_total(run_dir):
    block = next(b for b in re.findall(r"```sql\n(.*?)```", README, flags=re.S) if "sum_of_parts_yi" in b)
    ((total, parts),) = duckdb.sql(block.replace("'outputs/baseline/", f"'{run_dir}/")).fetchall()
    assert parts == pytest.approx(total, rel=1e-9)
    # the naive sum over every row counts the total several times
    ((naive,),) = duckdb.sql(f"SELECT sum(mean_cny) / 1e8 FROM '{run_dir}/summary.parquet' "
                             "WHERE vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'").fetchall()
    assert naive > 3 * total


def test_is_total_marks_exactly_the_total_rows(run_dir):
    rows = duckdb.sql(f"SELECT count(*) FILTER (WHERE is_total <> (program IN ('ALL', 'ALL_EQUITY') OR payer = 'ALL')),"
                      f" count(*) FILTER (WHERE is_total), count(*) FROM '{run_dir}/summary.parquet'").fetchall()
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
    ((lost,),) = duckdb.sql(f"SELECT count(*) FROM '{run_dir}/summary.parquet' s ANTI JOIN '{run_dir}/programs.parquet' "
                            "USING (program)").fetchall()
    ((lost_p,),) = duckdb.sql(f"SELECT count(*) FROM '{run_dir}/summary.parquet' s ANTI JOIN '{run_dir}/payers.parquet' "
                              "USING (payer)").fetchall()
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
    assert any("全部财政" in str(c.value) for c in wb["Headline 结论"]["A"])
    pivot = wb["Cash by payer 分财政 (万元)"]
    header = [c.value for c in pivot[1]]
    by = {(r[0], r[3]): r for r in pivot.iter_rows(min_row=2, values_only=True)}
    ((mean, p90),) = duckdb.sql(f"SELECT mean_cny, p90_cny FROM '{run_dir}/summary.parquet' WHERE program = 'ALL' AND "
                                "payer = 'city' AND vintage = 'ALL' AND measure = 'cash' AND fiscal_year = 2027").fetchall()
    col = header.index("2027")
    assert by[("city", "mean")][col] == pytest.approx(mean / 1e4, abs=0.01)
    assert by[("city", "P90")][col] == pytest.approx(p90 / 1e4, abs=0.01)
    lines = list(wb["Budget lines 超预算概率"].iter_rows(min_row=2, values_only=True))
    assert lines and all(0 <= r[6] <= 1 for r in lines)
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
        assert CliRunner().invoke(app, ["export", str(run_dir), "--xlsx", str(ours), "--csv", str(tmp_path / "csv")]
                                  ).exit_code == 0
