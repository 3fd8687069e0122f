"""The terminal in the planner's language: Chinese on request or by locale, names rather than codes, nothing cut
mid-word at 80 or 60 columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from rich.cells import cell_len
from typer.testing import CliRunner

from fiscal_sim import terminal
from fiscal_sim.cli import app

REPO = Path(__file__).resolve().parents[1]
CODES = ("jetz", "nanhu", "xiuzhou", "jiashan", "haiyan", "haining", "pinghu", "tongxiang", "port")


def _run(tmp_path: Path, columns: int, *extra: str, env: dict | None = None) -> tuple[Path, str]:
    out = tmp_path / f"run{columns}"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(REPO / "scenarios" / "baseline.yaml"),
            "--draws",
            "100",
            "--out",
            str(out),
            "--no-draws-ledger",
            *extra,
        ],
        env={"COLUMNS": str(columns), **(env or {})},
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def _screen(output: str) -> list[str]:
    return [x for x in output.splitlines() if not x.startswith("wrote ")]  # the folder line names a path


@pytest.mark.parametrize("columns,lang", [(80, "en"), (60, "en"), (80, "zh"), (60, "zh")])
def test_run_fits_the_width_with_names_and_whole_words(tmp_path, columns, lang):
    out, output = _run(tmp_path, columns, "--lang", lang)
    screen = _screen(output)
    assert all(cell_len(x) <= columns for x in screen), [x for x in screen if cell_len(x) > columns]
    assert "…" not in output  # nothing shortened
    words = set(re.findall(r"[A-Za-z]{2,}", output))
    assert not words & set(CODES), words & set(CODES)  # jurisdiction names, not ids
    h = json.loads((out / "headline.json").read_text(encoding="utf-8"))
    text = " ".join(" ".join(_screen(output)).split())
    for line in h["text"][lang][:-1]:  # every headline line is on screen, wrapped only between words
        assert " ".join(line.split()) in text or "".join(line.split()) in "".join(text.split())
    english = set(re.findall(r"[A-Za-z]+", " ".join(h["text"]["en"])))
    for word in english:  # a wrapped English word is whole on some line
        if len(word) > 3 and lang == "en":
            assert re.search(rf"\b{word}\b", output), word
    if lang == "zh":
        assert "各财政每年资助资金现金支出" in output and "嘉兴经济技术开发区" in output and "均值" in output
        assert "expected grant cash" not in output
    else:
        assert "Jiaxing Economic" in output and "expected grant cash" in output


def test_chinese_locale_gives_chinese_labels(tmp_path):
    _, output = _run(tmp_path, 80, env={"LANG": "zh_CN.UTF-8", "LC_ALL": ""})
    assert "预算线 市本级财政" in output and "财政" in output
    _, english = _run(tmp_path, 80, "--lang", "en", env={"LANG": "zh_CN.UTF-8"})
    assert "Illustrative line Jiaxing city finance" in english


def test_lang_of_reads_option_then_locale(monkeypatch):
    for k in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(k, raising=False)
    assert terminal.lang_of() == "en" and terminal.lang_of("zh") == "zh"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert terminal.lang_of() == "zh" and terminal.lang_of("en") == "en"
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # LC_ALL wins over LANG
    assert terminal.lang_of() == "en"


def test_wrapped_never_cuts_a_word():
    line = "  note: P(exceed) 38.5% in 2027 → 0.5% in 2028: 嘉政办发〔2024〕7号 in force until 2026-12-31"
    for width in (30, 40, 60):
        parts = terminal.wrapped(line, width)
        assert all(cell_len(p) <= width for p in parts)
        assert " ".join(" ".join(p.split()) for p in parts) == " ".join(line.split())


@pytest.mark.parametrize("columns", [60, 80])
def test_programs_list_is_a_screenful_per_document(columns):
    """Grouped by document (titled by its 文号): every id whole in its cell (within its document below 80
    columns), every line within the width, and each document's table about a screenful at 60 columns."""
    res = CliRunner().invoke(app, ["programs", "list", "--format", "json"])
    every = json.loads(res.stdout)
    res = CliRunner().invoke(app, ["programs", "list"], env={"COLUMNS": str(columns)})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert all(cell_len(x) <= columns for x in lines), [x for x in lines if cell_len(x) > columns]
    cells = {c.strip() for x in lines for c in x.split("│")}
    for r in every:
        shown = r["id"] if columns >= 80 else r["id"].split(".", 1)[1]
        assert shown in cells, shown
    starts = [i for i, x in enumerate(lines) if x.startswith(tuple({r["document"] for r in every}))]
    assert len(starts) == len({r["document"] for r in every})  # one table per document
    if columns == 60:
        sizes = [b - a for a, b in zip(starts, starts[1:] + [len(lines)])]
        biggest = max(len([r for r in every if r["document"] == d]) for d in {r["document"] for r in every})
        assert max(sizes) <= biggest + 8  # one line per program plus the table's frame
        assert "programs show ID" in res.stdout


def test_compare_fits_80_columns_with_payer_names(tmp_path):
    """compare's headline and tables within 80 columns: payer names, not ids; headers never broken; numbers equal
    to compare.parquet."""
    import duckdb

    out = tmp_path / "cmp"
    res = CliRunner().invoke(
        app,
        [
            "compare",
            str(REPO / "scenarios" / "baseline.yaml"),
            str(REPO / "scenarios" / "reform.yaml"),
            "--draws",
            "100",
            "--out",
            str(out),
            "--no-draws-ledger",
            "--budget",
            "city=3亿",
        ],
        env={"COLUMNS": "80"},
    )
    assert res.exit_code == 0, res.output
    screen = _screen(res.output)
    assert all(cell_len(x) <= 80 for x in screen), [x for x in screen if cell_len(x) > 80]
    assert not set(re.findall(r"[A-Za-z]{2,}", res.output)) & set(CODES)
    for header in ("base", "reform", "change", "± se", "P5 Δ", "P95 Δ", "P(exceed) base → reform"):
        assert any(header in x for x in screen if x.startswith("┃")), header
    ((b, r),) = duckdb.sql(
        f"SELECT baseline_mean_cny, reform_mean_cny FROM '{out}/compare.parquet' WHERE program = 'ALL' "
        "AND payer = 'city' AND measure = 'cash' AND period = 'year' AND fiscal_year = 2027"
    ).fetchall()
    row = next(x for x in screen if x.startswith("│ Jiaxing city finance") and "│ 2027" in x)
    assert f"{round(b / 1e4):,d}" in row and f"{round(r / 1e4):,d}" in row
    ((line,),) = duckdb.sql(
        f"SELECT DISTINCT budget_cny FROM '{out}/baseline/summary.parquet' WHERE payer = 'city' "
        "AND program = 'ALL' AND budget_cny IS NOT NULL"
    ).fetchall()
    assert line == 3e8  # --budget applies to both sides


def test_an_unknown_language_is_refused(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(REPO / "scenarios" / "baseline.yaml"),
            "--lang",
            "fr",
            "--draws",
            "10",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert res.exit_code == 1 and "--lang 'fr': use zh or en" in res.output and not (tmp_path / "x").exists()
