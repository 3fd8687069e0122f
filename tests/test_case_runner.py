"""`fiscal-sim test` runs YAML case files like `openfisca test`; `validate` fails on a wrong expectation."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fiscal_sim.cli import app

CASES = Path(__file__).parent / "cases"
runner = CliRunner()


def wrong_case(tmp_path: Path) -> Path:
    """A copy of a real case file with one expectation made wrong (48 → 49 万元 a year)."""
    text = (CASES / "jiaweifa_2017_4.yaml").read_text(encoding="utf-8")
    assert "{award_wan: 48, total_wan: 240" in text
    f = tmp_path / "wrong.yaml"
    f.write_text(text.replace("{award_wan: 48, total_wan: 240", "{award_wan: 49, total_wan: 240", 1), encoding="utf-8")
    return f


def test_the_case_files_pass():
    res = runner.invoke(app, ["test", str(CASES)])
    assert res.exit_code == 0, res.output
    assert " 0 failed" in res.output


def test_a_wrong_case_fails_with_the_difference(tmp_path):
    res = runner.invoke(app, ["test", str(wrong_case(tmp_path))])
    assert res.exit_code == 1
    assert "FAIL" in res.output and "award: expected 49 万元, got 48 万元" in res.output
    assert "1 failed" in res.output


def test_validate_does_not_call_a_wrong_case_ok(tmp_path):
    res = runner.invoke(app, ["validate", str(wrong_case(tmp_path))])
    assert res.exit_code == 1 and "expected 49 万元, got 48 万元" in res.output and "all valid" not in res.output
