"""The director's brief: one A4 page whose numbers are headline.json's and summary.parquet's, zh by default."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from fiscal_sim.cli import app
from fiscal_sim.report.brief import find_browser

REPO = Path(__file__).resolve().parents[1]


def pdf_pages(path: Path) -> int:
    """Pages of a PDF: pypdf when installed, else the page tree's /Count (Chromium writes it uncompressed)."""
    try:
        from pypdf import PdfReader

        return len(PdfReader(path).pages)
    except ImportError:
        counts = [int(c) for c in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", path.read_bytes())]
        counts += [int(c) for c in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", path.read_bytes())]
        assert counts, f"{path}: no page tree found"
        return max(counts)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("brief") / "run"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(REPO / "scenarios" / "lapse_2024_plan.yaml"),
            "--draws",
            "300",
            "--out",
            str(out),
            "--no-draws-ledger",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]*"', "", html)))


def test_brief_numbers_are_the_headline_and_summary(run_dir, tmp_path, monkeypatch):
    """Chinese by default: the city line's risk, overrun, holding appropriations, drivers and the caveat as
    headline.json has them, and the ten-year totals as summary.parquet has them."""
    monkeypatch.setenv("FISCAL_SIM_BROWSER", str(tmp_path / "no-browser"))  # HTML only here: fast
    res = CliRunner().invoke(app, ["brief", str(run_dir), "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    assert "no headless Chromium found" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "b" / "brief_zh.pdf").exists()
    text = _text((tmp_path / "b" / "brief_zh.html").read_text(encoding="utf-8"))
    h = json.loads((run_dir / "headline.json").read_text(encoding="utf-8"))
    b = next(x for x in h["budget_lines"] if x["payer"] == "city" and x["program"] == "ALL")
    assert "财政支出风险简报：市本级财政" in text and "Fiscal risk brief" not in text
    assert f"{b['budget_cny'] / 1e4:,.0f} 万元" in text
    assert f"{b['worst_year']}" in text and f"{100 * b['p_exceed']:.1f}%" in text
    assert f"{b['hold']['p90_cny'] / 1e4:,.0f} 万元" in text and f"{b['hold']['p95_cny'] / 1e4:,.0f} 万元" in text
    assert f"{b['overrun_if_exceeded_cny'] / 1e4:,.0f}万元" in text
    for d in b["drivers"]:
        assert f"{d['title_zh']} {100 * d['share']:.1f}% {d['overrun_mean_cny'] / 1e4:,.0f}" in text
    assert "嘉政办发〔2024〕7号施行至2026-12-31" in text
    ((p90,),) = duckdb.sql(
        f"SELECT max(p90_cny) FROM '{run_dir}/summary.parquet' WHERE program = 'ALL' AND payer = "
        "'city' AND vintage = 'ALL' AND measure = 'cash' AND period = 'year'"
    ).fetchall()
    assert p90 == b["hold"]["p90_cny"]
    ((mean, p90h),) = duckdb.sql(
        f"SELECT mean_cny, p90_cny FROM '{run_dir}/summary.parquet' WHERE program = 'ALL' AND "
        "payer = 'city' AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"
    ).fetchall()
    assert f"市本级财政 {mean / 1e8:,.2f} {p90h / 1e8:,.2f}" in text
    ((n,),) = duckdb.sql(
        f"SELECT count(*) FROM '{run_dir}/programs.parquet' WHERE NOT simulated AND NOT is_total"
    ).fetchall()
    assert f"{n}个未定价或未模拟的条款" in text
    m = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert m["commitments"] is None  # the baseline estimates every pre-horizon cohort: no register
    assert f"{len(m['estimated_pre_horizon']['award_years'])}个项目按假设估算的以前年度奖励以外的既有承诺" in text


def test_brief_in_english_on_request(run_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FISCAL_SIM_BROWSER", str(tmp_path / "no-browser"))
    res = CliRunner().invoke(app, ["brief", str(run_dir), "--lang", "en", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    text = _text((tmp_path / "b" / "brief_en.html").read_text(encoding="utf-8"))
    assert "Fiscal risk brief: Jiaxing city finance" in text and "财政支出风险简报" not in text
    assert "嘉政办发〔2024〕7号 in force until 2026-12-31" in text
    res = CliRunner().invoke(app, ["brief", str(run_dir), "--lang", "fr"])
    assert res.exit_code != 0 and "use zh or en" in res.output
    res = CliRunner().invoke(app, ["brief", str(tmp_path / "nothing")])
    assert res.exit_code != 0 and "not a run folder" in res.output and "Traceback" not in res.output


@pytest.mark.browser
def test_brief_pdf_is_one_a4_page(run_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("FISCAL_SIM_BROWSER", raising=False)
    if find_browser() is None:
        pytest.skip("no headless Chromium on this machine (Debian package 'chromium'): the brief is HTML only")
    for lang in ("zh", "en"):
        res = CliRunner().invoke(app, ["brief", str(run_dir), "--lang", lang, "--out", str(tmp_path / "b")])
        assert res.exit_code == 0, res.output
        pdf = tmp_path / "b" / f"brief_{lang}.pdf"
        assert pdf.is_file() and pdf_pages(pdf) == 1
        box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf.read_bytes())
        assert box and abs(float(box[1]) - 595.3) < 2 and abs(float(box[2]) - 841.9) < 2  # A4 in points
    assert not list((tmp_path / "b").glob(".*"))  # no temporary file left behind


def test_committed_baseline_brief_is_one_page():
    assert pdf_pages(REPO / "docs" / "brief_baseline.pdf") == 1
