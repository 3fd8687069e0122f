"""The two named baselines and the labels of what figures rest on: policy basis and synthetic register rows,
read back from headline.json, programs.parquet (DuckDB), the workbook and the report."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from fiscal_sim.cli import app
from fiscal_sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1] / "scenarios"


def run(name: str, out: Path) -> dict:
    res = CliRunner().invoke(app, ["run", str(ROOT / f"{name}.yaml"), "--draws", "100", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    return json.loads((out / "headline.json").read_text(encoding="utf-8"))


def test_the_two_baselines_differ_only_in_the_validity_rule():
    cur, wri = load_scenario(ROOT / "baseline.yaml"), load_scenario(ROOT / "baseline_as_written.yaml")
    assert (cur.spec.policy_basis, wri.spec.policy_basis) == ("current_policy", "as_written")
    a, b = cur.spec.model_dump(), wri.spec.model_dump()
    differ = {k for k in a if a[k] != b[k]}
    assert differ == {"name", "description", "policy_basis", "timeline", "extends"}
    # as written: the 2017 documents stop (assumption), the fixed-term plans lapse; current policy: they renew
    ends = {sp.id: sp.prog.spec.in_force.to for sp in wri.programs}
    assert str(ends["jzf2017-3.major-conversion"]) == "2021-12-31"
    assert str(ends["jzbf2024-7.research-institute"]) == "2026-12-31"
    assert {sp.id: sp.prog.spec.in_force.to for sp in cur.programs}["jzbf2024-7.research-institute"] is None
    notes = {(a.kind, a.subject): a for a in wri.assumptions}
    assert notes[("validity", "嘉政发〔2017〕3号")].basis == "assumption"
    assert "ASSUMPTION" in notes[("validity", "嘉委发〔2017〕4号")].text


def test_headline_states_policy_basis_and_synthetic_rows(tmp_path):
    h = run("baseline_as_written", tmp_path / "w")
    assert h["basis"]["policy_basis"] == "as_written" and h["basis"]["synthetic_programs"] == []
    assert any(line.startswith("Policy as written") for line in h["text"]["en"])
    assert not any("SYNTHETIC" in line for line in h["text"]["en"])
    out = tmp_path / "demo"
    h = run("illustrative_register", out)
    scen = load_scenario(ROOT / "illustrative_register.yaml")
    flagged = sorted(
        r[0]
        for r in duckdb.sql(
            f"SELECT program FROM read_parquet('{out}/programs.parquet') WHERE synthetic_rows"
        ).fetchall()
    )
    assert flagged == sorted(scen.register.books) and h["basis"]["synthetic_programs"] == flagged
    assert h["basis"]["synthetic_register"].endswith("illustrative_register.csv")
    assert any(
        f"existing book of {len(flagged)} programs comes from the SYNTHETIC register" in line
        for line in h["text"]["en"]
    )
    assert any("合成" in line for line in h["text"]["zh"])
    sources = dict(
        duckdb.sql(
            f"SELECT program, existing_source FROM read_parquet('{out}/programs.parquet') WHERE synthetic_rows"
        ).fetchall()
    )
    assert all(s.startswith("register (SYNTHETIC)") for s in sources.values())


@pytest.mark.parametrize("command", ["export", "report"])
def test_export_and_report_say_synthetic(tmp_path, command):
    out = tmp_path / "demo"
    run("illustrative_register", out)
    extra = ["--xlsx", str(tmp_path / "book.xlsx")] if command == "export" else []
    res = CliRunner().invoke(app, [command, str(out), *extra])
    assert res.exit_code == 0, res.output
    if command == "report":
        html = (out / "report" / "report.html").read_text(encoding="utf-8")
        assert "SYNTHETIC (illustrative, not real) register" in html and "合成登记册" in html  # headline in zh
    else:
        import openpyxl

        book = tmp_path / "book.xlsx"
        ws = openpyxl.load_workbook(book, read_only=True)["Assumptions 假设"]
        cells = [c for row in ws.iter_rows(values_only=True) for c in row if isinstance(c, str)]
        assert any(c.startswith("SYNTHETIC register") for c in cells) and "SYNTHETIC" in cells


def test_assumed_count_share_is_computed_from_the_run(tmp_path):
    """headline.json's share of horizon cash on assumed counts, recomputed with DuckDB from summary.parquet and
    programs.parquet (a program-year is target-based while its quoted target covers the year)."""
    out = tmp_path / "b"
    h = run("baseline", out)
    share = duckdb.sql(f"""
        SELECT sum(CASE WHEN p.uptake_basis = 'target' AND (p.uptake_target_until IS NULL
                        OR s.fiscal_year <= p.uptake_target_until) OR p.uptake_basis = 'calibrated'
                   THEN 0 ELSE s.mean_cny END) / sum(s.mean_cny)
        FROM read_parquet('{out}/summary.parquet') s JOIN read_parquet('{out}/programs.parquet') p USING (program)
        WHERE s.period = 'year' AND s.measure = 'cash' AND s.payer = 'ALL' AND s.vintage = 'ALL'
          AND NOT p.is_total""").fetchall()[0][0]
    assert h["basis"]["assumed_count_share"] == pytest.approx(share, rel=1e-9)
    assert 0.5 < share < 1  # most counts are labelled assumptions
    assert any("of horizon cash rests on assumed counts" in line for line in h["text"]["en"])
    basis = dict(
        duckdb.sql(
            f"SELECT program, count_basis FROM read_parquet('{out}/programs.parquet') WHERE count_basis IS NOT NULL"
        ).fetchall()
    )
    assert basis["jzbf2024-7.municipal-st-project"] == "target 2025–2026, assumption after"
    assert basis["jzf2017-3.major-conversion"] == "assumption"


def test_headline_labels_illustrative_budget_lines_and_what_it_leaves_out(tmp_path):
    out = tmp_path / "b"
    h = run("baseline", out)
    assert h["basis"]["budget_basis"] == {"city/ALL": "illustrative", "ALL/jwf2017-4.talent-housing": "illustrative"}
    assert all(b["basis"] == "illustrative" for b in h["budget_lines"])
    en, zh = h["text"]["en"], h["text"]["zh"]
    assert sum(line.startswith("Illustrative line ") for line in en) == 2
    assert sum(line.startswith("示意预算线 ") for line in zh) == 2
    assert any("not appropriations" in line for line in en) and not any(line.startswith("Budget line") for line in en)
    unpriced, cases = duckdb.sql(f"""SELECT count(*) FILTER (status = 'unpriced'),
        list(program ORDER BY program) FILTER (regexp_matches(quote, '一事一议|一企一策|一案一策|一事一策'))
        FROM read_parquet('{out}/programs.parquet') WHERE NOT simulated""").fetchall()[0]
    assert h["basis"]["left_out"] == {"unpriced": unpriced, "case_by_case": cases} and unpriced > 40 and cases
    i = next(i for i, line in enumerate(en) if line.startswith(f"The total leaves out {unpriced} unpriced provisions"))
    assert en[i + 1 : i + 1 + len(cases)] == [f"  {c}" for c in cases]


def test_a_document_budget_line_needs_its_source(tmp_path):
    from fiscal_sim.errors import InputError

    text = (
        (ROOT / "baseline.yaml")
        .read_text(encoding="utf-8")
        .replace("amount: 25000, unit: 万元, basis: illustrative", "amount: 25000, unit: 万元, basis: document")
    )
    (tmp_path / "s.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="source"):
        load_scenario(tmp_path / "s.yaml")
