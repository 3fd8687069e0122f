"""Compare: common random numbers make the reform − baseline difference far less noisy than independent runs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fiscal_sim.analysis.compare import compare
from fiscal_sim.cli import app
from fiscal_sim.orchestrate.run import run
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.scenario import load_scenario

HERE = Path(__file__).parent / "scenarios"
BASE, CAP = HERE / "crn_base.yaml", HERE / "crn_cap.yaml"
CAPPED = "jzf2017-3.major-conversion"


@pytest.fixture(scope="module")
def scenarios():
    return load_scenario(BASE), load_scenario(CAP)


@pytest.fixture(scope="module")
def crn(scenarios, tmp_path_factory):
    return compare(*scenarios, tmp_path_factory.mktemp("crn") / "cmp")


@pytest.fixture(scope="module")
def independent(scenarios, tmp_path_factory):
    return compare(*scenarios, tmp_path_factory.mktemp("ind") / "cmp", independent=True, write_draws=False)


def rows(table, **where) -> list[dict]:
    return [r for r in table.to_pylist() if all(r[k] == v for k, v in where.items())]


def test_crn_variance_of_the_difference_is_at_least_10x_smaller(crn, independent):
    """One cap changes; the variance of the change in total cash is ≥10× smaller with common random numbers."""
    for payer in ("ALL", "city"):
        for period, year in [("horizon", None)] + [("year", y) for y in range(2025, 2030)]:
            key = dict(program="ALL", payer=payer, measure="cash", period=period, fiscal_year=year)
            (c,), (i,) = rows(crn.table, **key), rows(independent.table, **key)
            assert c["change_sd_cny"] ** 2 * 10 <= i["change_sd_cny"] ** 2, (payer, year)
            assert c["crn_variance_ratio"] >= 10
            assert c["change_se_cny"] < i["change_se_cny"] / 3
            # the independent run's own ratio is ≈ 1: the sides are uncorrelated there
            assert 0.5 < i["crn_variance_ratio"] < 2


def test_same_expected_change_either_way(crn, independent):
    """Both estimate the same mean change; CRN only removes noise."""
    (c,) = rows(crn.table, program="ALL", payer="ALL", measure="cash", period="horizon")
    (i,) = rows(independent.table, program="ALL", payer="ALL", measure="cash", period="horizon")
    assert c["change_mean_cny"] < 0
    assert abs(c["change_mean_cny"] - i["change_mean_cny"]) < 4 * np.hypot(c["change_se_cny"], i["change_se_cny"])


def test_untouched_programs_do_not_change_in_any_draw(crn):
    """Streams are keyed by (block, program): other programs see identical applicants."""
    for r in rows(crn.table, payer="ALL", period="horizon", measure="cash"):
        if r["program"] not in ("ALL", CAPPED):
            assert r["change_min_cny"] == 0 and r["change_max_cny"] == 0, r["program"]
    (capped,) = rows(crn.table, program=CAPPED, payer="ALL", period="horizon", measure="cash")
    assert capped["change_max_cny"] <= 0 < -capped["change_min_cny"]  # a lower cap never raises an award


def test_change_is_reform_minus_baseline_and_baseline_equals_a_plain_run(crn, scenarios, tmp_path):
    t = crn.table
    d = np.array(t["reform_mean_cny"]) - np.array(t["baseline_mean_cny"])
    np.testing.assert_allclose(np.array(t["change_mean_cny"]), d, rtol=1e-9, atol=1e-3)
    plain = run(scenarios[0], tmp_path / "plain", write_draws=False).summary
    plain = plain.filter(pc.equal(plain["vintage"], "ALL"))  # a comparison keeps the vintage totals only
    saved = pq.read_table(crn.out / "baseline" / "summary.parquet")
    np.testing.assert_array_equal(np.array(saved["mean_cny"]), np.array(plain["mean_cny"]))
    np.testing.assert_array_equal(np.array(saved["p95_cny"]), np.array(plain["p95_cny"]))
    assert (crn.out / "reform" / "manifest.json").is_file() and (crn.out / "manifest.json").is_file()


def test_per_draw_change_matches_statistics(crn):
    parts = f"{crn.out}/compare_draws/*.parquet"
    got = duckdb.sql(f"""
        SELECT fiscal_year, avg(change_cash_cny) AS m, max(abs(change_cash_cny - (reform_cash_cny - baseline_cash_cny))) AS err,
               count(*) AS n
        FROM read_parquet('{parts}') WHERE program = 'ALL' AND payer = 'city' GROUP BY fiscal_year ORDER BY 1""").fetchall()
    stats = {r["fiscal_year"]: r for r in rows(crn.table, program="ALL", payer="city", measure="cash", period="year")}
    assert [g[0] for g in got] == sorted(stats)
    for year, m, err, n in got:
        assert n == 400 and err < 1e-6
        assert m == pytest.approx(stats[year]["change_mean_cny"], rel=1e-9)
    progs = {p for (p,) in duckdb.sql(f"SELECT DISTINCT program FROM read_parquet('{parts}')").fetchall()}
    assert progs == {"ALL", CAPPED}  # totals, and only the program the reform changes


def test_change_in_probability_of_exceeding_the_budget_line(crn):
    lines = rows(crn.table, program=CAPPED, payer="ALL", measure="cash", period="year")
    assert lines and all(r["baseline_budget_cny"] == 1500e4 for r in lines)
    for r in lines:
        assert r["change_p_exceed"] == pytest.approx(r["reform_p_exceed"] - r["baseline_p_exceed"])
        assert r["change_p_exceed"] < 0 and 0 < r["change_p_exceed_se"] < 0.05
    assert rows(crn.table, program="ALL", payer="nanhu", measure="cash", period="year")[0]["change_p_exceed"] is None


def test_horizons_must_match(scenarios, tmp_path):
    base, reform = scenarios
    other = reform.with_settings(horizon={"start": 2025, "end": 2028})
    with pytest.raises(FiscalSimError, match="horizon"):
        compare(base, other, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_cli_prints_the_headline_in_wan(tmp_path):
    res = CliRunner().invoke(app, ["compare", str(BASE), str(CAP), "--draws", "200", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "万元" in res.output and "common random numbers" in res.output and CAPPED in res.output
    assert (tmp_path / "c" / "compare.parquet").is_file()


def test_workers_give_bit_identical_statistics(scenarios, crn, tmp_path):
    two = compare(*scenarios, tmp_path / "w2", workers=2, write_draws=False)
    for col in ("change_mean_cny", "change_sd_cny", "change_p05_cny", "change_p95_cny", "change_p_exceed"):
        a = np.array(crn.table[col].to_pylist(), float)
        b = np.array(two.table[col].to_pylist(), float)
        assert np.array_equal(a, b, equal_nan=True), col


def test_a_program_only_in_the_baseline_counts_as_zero_in_the_reform(scenarios, tmp_path):
    import copy

    from fiscal_sim.analysis.common import spec_data, variant

    base = scenarios[0].with_settings(draws=100)
    data = copy.deepcopy(spec_data(base))
    data["exclude"] = ["jzbf2024-7.tech-intermediary-reward"]
    res = compare(base, variant(base, data, "test"), tmp_path / "x", write_draws=False)
    (gone,) = rows(
        res.table, program="jzbf2024-7.tech-intermediary-reward", payer="ALL", measure="cash", period="horizon"
    )
    assert gone["in_baseline"] and not gone["in_reform"] and gone["reform_mean_cny"] == 0
    assert gone["change_mean_cny"] == pytest.approx(-gone["baseline_mean_cny"])
    (total,) = rows(res.table, program="ALL", payer="ALL", measure="cash", period="horizon")
    assert total["change_mean_cny"] == pytest.approx(gone["change_mean_cny"])


def test_float_noise_is_not_a_change():
    import pyarrow as pa

    from fiscal_sim.analysis.compare import headline

    rows = [
        {
            "program": p,
            "payer": "ALL",
            "measure": "cash",
            "period": "horizon",
            "fiscal_year": None,
            "baseline_mean_cny": 1e9,
            "reform_mean_cny": 1e9 + d,
            "change_mean_cny": d,
        }
        for p, d in (("a", 1e-10), ("b", -0.5), ("c", 2.0), ("d", -5e4))
    ]
    assert [r["program"] for r in headline(pa.Table.from_pylist(rows))["programs"]] == ["d", "c"]
    assert [r["program"] for r in headline(pa.Table.from_pylist(rows), tolerance=1e4)["programs"]] == ["d"]
