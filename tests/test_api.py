"""The Python API: in-memory results equal the CLI's files; the docstring and the notebook example run."""

from __future__ import annotations

import doctest
import runpy
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

import fiscal_sim as fs
from fiscal_sim import api
from fiscal_sim.cli import app

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).parent / "scenarios"
STATS = ["mean_cny", "sd_cny", "p05_cny", "p50_cny", "p95_cny", "p_exceed", "budget_cny"]


def test_docstring_examples_run(monkeypatch):
    monkeypatch.chdir(REPO)
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 5 and result.failed == 0


def test_simulate_in_memory_equals_the_run_folder(tmp_path):
    scen = fs.load(HERE / "crn_base.yaml").with_settings(draws=300)
    res = fs.simulate(scen)
    out = tmp_path / "run"
    assert (
        CliRunner()
        .invoke(
            app, ["run", str(HERE / "crn_base.yaml"), "--draws", "300", "--out", str(out), "-q", "--no-draws-ledger"]
        )
        .exit_code
        == 0
    )
    on_disk = pq.read_table(out / "summary.parquet")
    assert res.summary.select(STATS).equals(on_disk.select(STATS))
    import json

    written = json.loads((out / "headline.json").read_text(encoding="utf-8"))
    assert res.headline["payers"] == written["payers"] and res.headline["budget_lines"] == written["budget_lines"]
    assert fs.simulate(scen, workers=2).summary.equals(res.summary)  # whatever the workers


def test_sets_apply_like_the_sweep(tmp_path):
    scen = fs.load(HERE / "crn_base.yaml").with_settings(draws=100)
    lo = fs.simulate(scen, sets=["programs.jzf2017-3.major-conversion.cap=1000"])
    hi = fs.simulate(scen, sets=["programs.jzf2017-3.major-conversion.cap=3000"])
    mean = lambda r: r.cash().loc[2027, "mean_cny"]  # noqa: E731
    assert mean(lo) < mean(hi)
    table = fs.sweep(scen, ["programs.jzf2017-3.major-conversion.cap=1000,3000"]).to_pylist()
    point = {
        r["point"]: r["mean_cny"]
        for r in table
        if r["program"] == "ALL"
        and r["payer"] == "ALL"
        and r["vintage"] == "ALL"
        and r["measure"] == "cash"
        and r["fiscal_year"] == 2027
    }
    assert point == {0: mean(lo), 1: mean(hi)}


def test_compare_in_memory_equals_the_cli(tmp_path):
    mem = fs.compare(HERE / "crn_base.yaml", HERE / "crn_cap.yaml", draws=200)
    out = tmp_path / "cmp"
    assert (
        CliRunner()
        .invoke(
            app,
            [
                "compare",
                str(HERE / "crn_base.yaml"),
                str(HERE / "crn_cap.yaml"),
                "--draws",
                "200",
                "--out",
                str(out),
                "-q",
            ],
        )
        .exit_code
        == 0
    )
    disk = pq.read_table(out / "compare.parquet").to_pylist()  # written rounded to the fen
    memory = mem.table.to_pylist()
    assert len(disk) == len(memory)
    for a, b in zip(memory, disk):
        assert {k: a[k] for k in ("program", "payer", "measure", "period", "fiscal_year")} == {
            k: b[k] for k in ("program", "payer", "measure", "period", "fiscal_year")
        }
        for k in ("baseline_mean_cny", "reform_mean_cny", "change_mean_cny", "change_se_cny"):
            assert a[k] == pytest.approx(b[k], abs=0.006), k


def test_calc_and_describe():
    case = fs.calculate(
        "jzbf2024-7.tech-intermediary-reward", {"contract": "200万元"}, jurisdiction="海宁市", date="2025-05-01"
    )
    assert case.total_cny == pytest.approx(60_000)  # 3% of 200万元, hand-computed
    d = fs.describe("jzf2017-3.major-conversion")
    assert d["document"] == "嘉政发〔2017〕3号" and d["formula"]["max"] == 3000


@pytest.mark.slow
def test_the_notebook_example_runs(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("FISCAL_SIM_EXAMPLE_DRAWS", "100")
    runpy.run_path(str(REPO / "examples" / "notebook_baseline.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "city, horizon change (亿元):" in printed and "yuan" in printed


def test_sensitivity_calibrate_backtest_in_memory(tmp_path):
    run = tmp_path / "run"
    assert (
        CliRunner()
        .invoke(
            app, ["run", str(HERE / "crn_base.yaml"), "--draws", "200", "--out", str(run), "-q", "--no-draws-ledger"]
        )
        .exit_code
        == 0
    )
    scen, changed = fs.scenario_of_run(run)
    assert scen.spec.draws == 200 and not changed
    table = fs.sensitivity(run)
    assert CliRunner().invoke(app, ["sensitivity", str(run), "-q"]).exit_code == 0
    disk = pq.read_table(run / "sensitivity.parquet")
    cols = ["factor", "payer", "rank", "spearman_rho"]
    assert table.select(cols).to_pylist() == disk.select(cols).to_pylist()
    history = REPO / "scenarios" / "history" / "awards_synthetic.csv"
    cals = {c.program: c for c in fs.calibration(history)}
    assert cals["jzf2017-3.major-conversion"].model in ("gamma-negbin", "beta-binomial")
    assert cals["jzf2017-3.major-conversion"].post_mean > 0
    bt = fs.backtest(history, 2023, draws=100)
    assert set(bt.column_names) >= {"program", "fiscal_year", "actual", "pit", "crps"} and bt.num_rows > 0


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path):
    from fiscal_sim.errors import FiscalSimError

    with pytest.raises(FiscalSimError, match="not a run folder with a manifest naming its scenario"):
        fs.scenario_of_run(tmp_path)


def test_every_api_name_is_reachable_from_the_package():
    """No API name is shadowed by a submodule of the same name (``fiscal_sim.calc`` is a module: the API says
    ``calculate``)."""
    import importlib

    for name in fs.api.__all__:
        assert not importlib.util.find_spec(f"fiscal_sim.{name}") if name[0].islower() else True, name
        assert getattr(fs, name) is getattr(fs.api, name)


def test_assumption_ledger_in_memory_equals_the_cli(tmp_path):
    table, budgets = fs.assumptions(REPO / "scenarios" / "baseline.yaml", draws=100, only=["major-conversion-2-a-year"])
    out = tmp_path / "ledger"
    assert (
        CliRunner()
        .invoke(
            app,
            [
                "assumptions",
                str(REPO / "scenarios" / "baseline.yaml"),
                "--draws",
                "100",
                "--only",
                "major-conversion-2-a-year",
                "--out",
                str(out),
                "-q",
            ],
        )
        .exit_code
        == 0
    )
    disk = pq.read_table(out / "assumptions.parquet")
    cols = ["alternative", "change_horizon_cash_all_cny", "change_horizon_cash_city_cny"]
    assert table.select(cols).to_pylist() == disk.select(cols).to_pylist()
    assert table.to_pylist()[0]["change_horizon_cash_all_cny"] < 0  # fewer major conversions cost less
