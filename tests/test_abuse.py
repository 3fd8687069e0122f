"""Abuse and fault cases of the commands added since the safety work, each through the real CLI: one clear line
naming the file, row and column or the option; never a traceback; nothing written where the input was refused.

Classes: bad values accepted before (nan/inf, impossible dates, repeated records, more payments than the
schedule), wrong files (a CSV named .xlsx, a header-only history), work without bound (a history of repeated bad
rows stops), options pointing at the wrong thing (--out URL typos, --draws 0), timeline rules (renewals,
successor cycles). Secrets: tests/test_secrets.py; cells: tests/test_bi_outputs.py; Dask waits:
tests/test_abuse_dask.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from fiscal_sim.cli import app

REPO = Path(__file__).resolve().parents[1]
HISTORY = REPO / "scenarios" / "history" / "awards_synthetic.csv"
REGISTER = REPO / "scenarios" / "commitments" / "illustrative_register.csv"
SMALL = REPO / "tests" / "scenarios" / "crn_base.yaml"


def cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    assert "Traceback" not in res.output and "internal error" not in res.output, res.output
    return res.exit_code, " ".join(res.output.split())


def history_rows(tmp_path: Path, name: str, rows: list[str]) -> Path:
    header = HISTORY.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


GOOD = "jzf2017-3.tech-transaction,nanhu,2018,1,1,41.26,x"


@pytest.mark.parametrize(
    "value, says",
    [
        ("nan", "row 1, column awards: not a number: 'nan'"),
        ("inf", "row 1, column awards: not a number: 'inf'"),
        ("-inf", "row 1, column awards: not a number: '-inf'"),
    ],
)
def test_a_non_finite_history_count_is_refused(tmp_path, value, says):
    path = history_rows(tmp_path, "h.csv", [GOOD.replace(",1,1,", f",{value},1,")])
    code, out = cli("calibrate", str(path), "--out", str(tmp_path / "c.yaml"))
    assert code == 1 and says in out and not (tmp_path / "c.yaml").exists()


def test_a_non_finite_history_amount_is_refused(tmp_path):
    path = history_rows(tmp_path, "h.csv", [GOOD.replace("41.26", "inf")])
    code, out = cli("calibrate", str(path), "--out", str(tmp_path / "c.yaml"))
    assert code == 1 and "column amount_wan: not a number: 'inf'" in out


def test_a_header_only_history_says_it_has_no_rows(tmp_path):
    path = history_rows(tmp_path, "h.csv", [])
    code, out = cli("calibrate", str(path), "--out", str(tmp_path / "c.yaml"))
    assert code == 1 and "the history file has no rows" in out and "missing" not in out


def test_a_history_of_repeated_bad_rows_stops_and_counts(tmp_path):
    path = history_rows(tmp_path, "h.csv", ["nope,nanhu,2018,1,1,1,x"] * 5000)
    code, out = cli("calibrate", str(path), "--out", str(tmp_path / "c.yaml"))
    assert code == 1 and "stopped at row" in out and "of 5,000 after 200 problems" in out
    assert "more problem(s)" in out and out.count("unknown program 'nope'") <= 50


def test_backtest_draws_zero_names_the_option(tmp_path):
    code, out = cli("backtest", str(HISTORY), "--holdout-from", "2023", "--draws", "0", "--out", str(tmp_path / "b"))
    assert code == 2 and "--draws" in out and ".tmp-" not in out and not (tmp_path / "b").exists()


def _with_register(tmp_path: Path, lines: list[str], name: str = "reg.csv", text: str | None = None) -> Path:
    header = REGISTER.read_text(encoding="utf-8").splitlines()[2]
    (tmp_path / name).write_text(text if text is not None else "\n".join([header, *lines]) + "\n", encoding="utf-8")
    scen = tmp_path / "s.yaml"
    scen.write_text(
        yaml.safe_dump(
            {
                "scenario": {
                    "extends": str(REPO / "scenarios" / "baseline.yaml"),
                    "name": "abuse",
                    "commitments": {"register": name},
                }
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    return scen


ROW = REGISTER.read_text(encoding="utf-8").splitlines()[3]  # SYN-0001: annual 10万元 for 10 years, 6 paid


@pytest.mark.parametrize(
    "lines, says",
    [
        (
            [ROW.replace(",6,true", ",60,true")],
            "row 1, column payments_made: 60 payments made, but the schedule (annual for 10 years) has 10",
        ),
        ([ROW, ROW], "row 2, column record_id: record 'SYN-0001' repeats row 1"),
        ([ROW.replace(",,10,annual", ",,inf,annual")], "row 1, column annual_amount_wan: 'inf' is not a finite amount"),
        (
            [ROW.replace("annual:10", "annual:0")],
            "row 1, column schedule: annual:0: an annual schedule pays for 1 year",
        ),
        ([ROW.replace("2019-06-15", "2019-02-30")], "row 1, column award_date: '2019-02-30' is not a date"),
    ],
)
def test_bad_register_rows_are_named_by_row_and_column(tmp_path, lines, says):
    scen = _with_register(tmp_path, lines)
    code, out = cli("run", str(scen), "--draws", "20", "-q", "--out", str(tmp_path / "o"))
    assert code == 1 and "reg.csv" in out and says in out and "summary.parquet" not in out
    assert not (tmp_path / "o").exists()


def test_a_csv_saved_as_xlsx_is_named(tmp_path):
    scen = _with_register(tmp_path, [], name="reg.xlsx", text=REGISTER.read_text(encoding="utf-8"))
    code, out = cli("run", str(scen), "--draws", "20", "-q", "--out", str(tmp_path / "o"))
    assert code == 1 and "reg.xlsx" in out and "not an Excel workbook" in out and "saved under an .xlsx name" in out


def _timeline(tmp_path: Path, after: dict) -> Path:
    scen = tmp_path / "t.yaml"
    scen.write_text(
        yaml.safe_dump(
            {"scenario": {"extends": str(SMALL), "name": "t", "timeline": {"after_expiry": after}}}, allow_unicode=True
        ),
        encoding="utf-8",
    )
    return scen


@pytest.mark.parametrize(
    "after, says",
    [
        (
            {"嘉政办发〔2024〕7号": {"mode": "renew", "until": "2026-06-30"}},
            "until: 2026-06-30 is not after 嘉政办发〔2024〕7号's expiry 2026-12-31",
        ),
        (
            {
                "嘉政办发〔2024〕7号": {
                    "mode": "renew_with",
                    "overrides": {"jzf2017-3.major-conversion": {"formula.max": 100}},
                }
            },
            "program 'jzf2017-3.major-conversion' is not one of 嘉政办发〔2024〕7号's",
        ),
    ],
)
def test_renewals_that_would_do_something_else_are_refused(tmp_path, after, says):
    code, out = cli("run", str(_timeline(tmp_path, after)), "--draws", "20", "-q", "--out", str(tmp_path / "o"))
    assert code == 1 and "t.yaml" in out and says in out


def test_an_impossible_date_in_a_timeline_or_case_file_names_its_line(tmp_path):
    scen = tmp_path / "t.yaml"
    scen.write_text(
        "scenario:\n  extends: " + str(SMALL) + "\n  name: t\n  timeline:\n    after_expiry:\n"
        "      嘉政办发〔2024〕7号: {mode: renew, until: 2027-02-30}\n",
        encoding="utf-8",
    )
    code, out = cli("run", str(scen), "--draws", "20", "-q", "--out", str(tmp_path / "o"))
    assert code == 1 and "t.yaml:6" in out and "'2027-02-30' is not a date" in out
    case = tmp_path / "case.yaml"
    case.write_text(
        (REPO / "tests" / "cases" / "jiazhengbanfa_2024_7.yaml")
        .read_text(encoding="utf-8")
        .replace("2025-05-01", "2025-02-30"),
        encoding="utf-8",
    )
    code, out = cli("test", str(case))
    assert code == 1 and "case.yaml:" in out and "'2025-02-30' is not a date" in out


def test_validate_finds_a_successor_cycle(tmp_path):
    root = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios" / "programs", root / "programs")
    shutil.copytree(REPO / "scenarios" / "catalogue", root / "catalogue")
    path = root / "catalogue" / "timeline.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fam = data["families"]["incubator-recognition"]
    data["families"]["back-again"] = {**fam, "predecessors": fam["successors"], "successors": fam["predecessors"]}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    code, out = cli("validate", str(root))
    assert code == 1 and "successor cycle" in out and "jzbf2024-7.incubator-recognition" in out


@pytest.mark.parametrize(
    "out_value, says",
    [
        ("s3:/bucket", "--out s3:/bucket looks like a storage URL missing a slash: write s3://BUCKET/PREFIX"),
        ("gs:bucket/x", "--out gs:bucket/x looks like a storage URL missing a slash"),
        ("file:///", "--out / is the root folder"),
    ],
)
def test_out_url_typos_are_named(tmp_path, monkeypatch, out_value, says):
    monkeypatch.chdir(tmp_path)
    code, out = cli("run", str(SMALL), "--draws", "20", "-q", "--out", out_value)
    assert code == 1 and says in out
    assert list(tmp_path.iterdir()) == []  # no folder named 's3:' or 'gs:' left behind


def test_a_claims_file_too_large_or_full_of_bad_rows_is_bounded(tmp_path):
    from fiscal_sim.claims_file import MAX_CLAIMS

    big = tmp_path / "big.csv"
    big.write_text("contract\n" + "1\n" * (MAX_CLAIMS + 5), encoding="utf-8")
    code, out = cli("calc", "jzbf2024-7.tech-intermediary-reward", "--claims", str(big), "-j", "haining")
    assert code == 1 and f"more than {MAX_CLAIMS:,} claims" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("contract,used_entity_year\n" + "1\n" * 1000, encoding="utf-8")
    code, out = cli("calc", "jzbf2024-7.tech-intermediary-reward", "--claims", str(bad), "-j", "haining")
    assert code == 1 and "1,000 problem(s)" in out and "… and 950 more problem(s)" in out
