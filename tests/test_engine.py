"""Monte Carlo engine: analytic checks at fixed seeds, invariants, reproducibility, outputs read by DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from fiscal_sim.engine.ledger import layout, series_values
from fiscal_sim.orchestrate.run import run
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.engine.simulate import blocks_of, simulate_program
from fiscal_sim.errors import InputError
from fiscal_sim.scenario import load_scenario
from fiscal_sim.uptake.random import shared_shock

FIX = Path(__file__).parent / "fixtures" / "engine"
SMALL = FIX / "small.yaml"
WAN = 1e4


@pytest.fixture(scope="module")
def scen():
    return load_scenario(SMALL)


@pytest.fixture(scope="module")
def ledgers(scen):
    return simulate_chunk(scen, 0, scen.spec.draws)


def test_poisson_fixed_amount_mean(ledgers, scen):
    """Poisson(500) × 20万元 a year has mean 10,000万元 a year, within 4 standard errors."""
    total = ledgers["t.hnte"].committed.sum(axis=1)  # draws × years
    n = total.shape[0]
    se = np.sqrt(500) * 20 * WAN / np.sqrt(n)  # sd of Poisson(500) × 20万
    assert np.all(np.abs(total.mean(axis=0) - 10_000 * WAN) < 4 * se)
    np.testing.assert_array_equal(ledgers["t.hnte"].cash, ledgers["t.hnte"].committed)


def test_rent_stream_with_attrition_matches_closed_form(ledgers):
    """Awards of 10万元 a year for 10 years, only in 2025, 10% annual attrition: E[cash_k] = 100·10·0.9^k."""
    cash = ledgers["t.rent"].cash.sum(axis=1)
    n = cash.shape[0]
    expected = 100 * 10 * WAN * 0.9 ** np.arange(10)
    # each year's cash is 10万 × a thinned Poisson count with mean 100·0.9^k
    se = 10 * WAN * np.sqrt(100 * 0.9 ** np.arange(10)) / np.sqrt(n)
    assert np.all(np.abs(cash.mean(axis=0) - expected) < 4 * se)
    committed = ledgers["t.rent"].committed.sum(axis=1)
    assert np.all(committed[:, 1:] == 0)
    # what attrition takes lapses; commitments = cash + lapses within the full 10-year horizon
    L = ledgers["t.rent"]
    np.testing.assert_allclose(L.committed.sum(axis=(1, 2)), (L.cash + L.cancelled).sum(axis=(1, 2)))


def test_city_and_district_carry_half_each_in_every_draw(scen, ledgers):
    lay = layout(scen)
    v = series_values(scen, lay, ledgers)
    c_city, c_nanhu = lay.blocks[("t.hnte", "city", "ALL")], lay.blocks[("t.hnte", "nanhu", "ALL")]
    np.testing.assert_array_equal(v[c_city : c_city + 32], v[c_nanhu : c_nanhu + 32])
    assert v[c_city : c_city + 10].sum() > 0


def test_county_program_puts_nothing_on_the_city(scen):
    lay = layout(scen)
    assert ("t.rent", "city", "ALL") not in lay.blocks and ("t.rent", "haining", "ALL") in lay.blocks


def test_payer_shares_add_up_to_program_total_in_every_draw(scen, ledgers):
    lay = layout(scen)
    v = series_values(scen, lay, ledgers)
    for sp in scen.programs:
        total = v[lay.blocks[(sp.id, "ALL", "ALL")] : lay.blocks[(sp.id, "ALL", "ALL")] + 32]
        parts = sum(v[c : c + 32] for (p, payer, _), c in lay.blocks.items() if p == sp.id and payer != "ALL")
        np.testing.assert_allclose(parts, total, rtol=1e-12, atol=1e-6)


def test_ledger_invariants(ledgers):
    for pid, L in ledgers.items():
        assert np.all(L.cash.sum(axis=2) <= L.committed.sum(axis=2) + 1e-6), pid
        assert np.all(L.outstanding >= -1e-6), pid
        # committed − paid − lapsed = outstanding, year by year
        np.testing.assert_allclose(np.cumsum(L.committed - L.cash - L.cancelled, axis=2), L.outstanding)


def test_aggregate_caps_hold_in_every_draw(scen):
    sp = next(p for p in scen.programs if p.id == "t.contract")
    shocks = {b: shared_shock(scen.spec.seed, b, nb, len(scen.years)) for b, _, nb in blocks_of(scen, 0, 200)}
    L = simulate_program(scen, sp, 0, 200, shocks, keep_awards=True)
    a = L.awards
    assert a is not None and a.amount_cny.max() <= 10 * WAN + 1e-6
    # entity ids are not kept, but per (draw, jurisdiction, year) two entities share at most 2 × 100万
    per_cell = np.bincount((a.draw * 16 + a.jur) * 16 + a.year, weights=a.amount_cny)
    assert per_cell.max() <= 200 * WAN * (1 + 1e-9)  # float rounding of cumulative sums, far below a fen


def test_equity_kept_apart_from_grants(tmp_path, scen):
    res = run(scen.with_settings(draws=200), tmp_path / "r", write_draws=False)
    s = res.summary.to_pylist()
    eq = [
        r
        for r in s
        if r["program"] == "ALL_EQUITY"
        and r["payer"] == "ALL"
        and r["measure"] == "committed"
        and r["period"] == "year"
    ]
    assert eq and abs(np.mean([r["mean_cny"] for r in eq]) - 1000 * WAN) < 0.3 * 1000 * WAN

    def mean(program, payer="city"):
        return next(
            r["mean_cny"]
            for r in s
            if r["program"] == program
            and r["payer"] == payer
            and r["fiscal_year"] == 2025
            and r["measure"] == "committed"
            and r["period"] == "year"
        )

    grant_programs = [sp.id for sp in scen.programs if sp.prog.spec.status != "equity"]
    city_grants = [p for p in grant_programs if any(r["program"] == p and r["payer"] == "city" for r in s)]
    assert mean("ALL") == pytest.approx(sum(mean(p) for p in city_grants), rel=1e-12)
    assert mean("ALL_EQUITY") == pytest.approx(mean("t.fund"), rel=1e-12)


def _summary_bytes(path: Path) -> bytes:
    """The summary file's contents (not its run-id metadata), for a bit-for-bit comparison."""
    return repr(pq.read_table(path / "summary.parquet").to_pydict()).encode()


def test_same_seed_same_summary_whatever_chunks_and_workers(tmp_path, scen):
    s = scen.with_settings(draws=400)
    a = run(s.with_settings(chunk_size=100), tmp_path / "a", workers=1, write_draws=False)
    b = run(s.with_settings(chunk_size=300), tmp_path / "b", workers=2, write_draws=False)
    c = run(s.with_settings(chunk_size=400), tmp_path / "c", workers=1, write_draws=False)
    assert a.summary.equals(b.summary) and a.summary.equals(c.summary)
    assert _summary_bytes(tmp_path / "a") == _summary_bytes(tmp_path / "b")


def test_different_seed_differs(tmp_path, scen):
    a = run(scen.with_settings(draws=200, seed=1), tmp_path / "a", write_draws=False)
    b = run(scen.with_settings(draws=200, seed=2), tmp_path / "b", write_draws=False)
    assert not a.summary.equals(b.summary)


def test_cli_run_then_duckdb_reads_summary_and_draws(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fiscal_sim.cli",
            "run",
            str(SMALL),
            "--draws",
            "200",
            "--out",
            str(out),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "expected grant cash" in proc.stdout and str(out) in proc.stdout
    con = duckdb.connect()
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM '{out}/summary.parquet'").fetchall()}
    assert types["fiscal_year"] == "SMALLINT" and types["mean_cny"] == "DOUBLE" and types["program"] == "VARCHAR"
    draws = f"read_parquet('{out}/draws/**/*.parquet', hive_partitioning=true)"
    dtypes = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM {draws}").fetchall()}
    assert {"draw", "program", "jurisdiction", "payer", "cash_cny", "scenario", "fiscal_year"} <= set(dtypes)
    # the mean over draws of the per-draw city cash in 2027 equals the summary's mean
    per_draw = con.execute(f"""
        SELECT avg(c) FROM (SELECT d.draw, sum(cash_cny) c FROM {draws} d
        WHERE payer = 'city' AND fiscal_year = 2027 AND spending = 'grant' GROUP BY d.draw)""").fetchone()[0]
    n_draws = con.execute(f"SELECT count(DISTINCT draw) FROM {draws}").fetchone()[0]
    assert n_draws == 200
    summary_mean = con.execute(f"""SELECT mean_cny FROM '{out}/summary.parquet' WHERE program = 'ALL' AND payer = 'city'
        AND measure = 'cash' AND period = 'year' AND fiscal_year = 2027""").fetchone()[0]
    assert per_draw == pytest.approx(summary_mean, rel=1e-9)
    meta = pq.read_schema(out / "summary.parquet").metadata
    assert meta[b"fiscal_sim.schema_version"] and meta[b"fiscal_sim.run_id"]
    assert pq.read_schema(out / "summary.parquet").field("program").type.value_type == "string"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["draws"] == 200 and manifest["seed_entropy"] == 7 and len(manifest["scenario"]["sha256"]) == 64
    assert len(manifest["catalogue_sha256"]) == 64 and manifest["horizon"] == {"start": 2025, "end": 2034}


def test_budget_exceedance_probability_and_wilson_interval(tmp_path, scen):
    res = run(scen.with_settings(draws=300), tmp_path / "r", write_draws=False)
    rows = [
        r
        for r in res.summary.to_pylist()
        if r["program"] == "t.hnte" and r["payer"] == "nanhu" and r["measure"] == "cash" and r["fiscal_year"] == 2026
    ]
    r = rows[0]
    assert r["budget_cny"] == 5200 * WAN
    assert 0 < r["p_exceed"] < 1 and r["p_exceed_lo"] <= r["p_exceed"] <= r["p_exceed_hi"]
    other = [
        x
        for x in res.summary.to_pylist()
        if x["program"] == "t.hnte" and x["payer"] == "nanhu" and x["measure"] == "cash" and x["fiscal_year"] == 2027
    ][0]
    assert other["budget_cny"] is None or np.isnan(other["budget_cny"])


def test_quantiles_and_tail_measures_are_ordered(tmp_path, scen):
    res = run(scen.with_settings(draws=300), tmp_path / "r", write_draws=False)
    for r in res.summary.to_pylist():
        assert (
            r["min_cny"] - 1e-6
            <= r["p05_cny"]
            <= r["p10_cny"]
            <= r["p50_cny"]
            <= r["p90_cny"]
            <= r["p95_cny"]
            <= r["max_cny"] + 1e-6
        )
        assert r["var_cny"] <= r["tvar_cny"] + 1e-6 and r["mcse_cny"] >= 0


BAD = {
    "unknown program": ("programs: [t.nope]", "unknown program 't.nope'"),
    "negative draws": ("draws: -5", "draws"),
    "horizon reversed": ("horizon: {start: 2030, end: 2025}", "horizon reversed"),
    "missing parameter": ("overrides: {t.hnte: {formula.cap: 300}}", "no parameter 'formula.cap'"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_scenarios_fail_before_any_output(tmp_path, name):
    line, message = BAD[name]
    base = {"name": "bad", "programs": "all", "horizon": "{start: 2025, end: 2030}", "draws": "10"}
    key = line.split(":")[0]
    body = "\n".join(f"  {k}: {v}" for k, v in base.items() if k != key) + f"\n  {line}\n"
    f = FIX / f"_bad_{name.replace(' ', '_')}.yaml"
    f.write_text("scenario:\n" + body, encoding="utf-8")
    try:
        with pytest.raises(InputError) as e:
            load_scenario(f)
        assert message in str(e.value) and str(f) in str(e.value)
        out = tmp_path / "out"
        proc = subprocess.run(
            [sys.executable, "-m", "fiscal_sim.cli", "run", str(f), "--out", str(out)], capture_output=True, text=True
        )
        assert proc.returncode != 0 and message in proc.stderr and not out.exists()
    finally:
        f.unlink()


def test_failed_run_leaves_previous_result_untouched(tmp_path, scen, monkeypatch):
    out = tmp_path / "r"
    run(scen.with_settings(draws=100), out, write_draws=False)
    before = (out / "manifest.json").read_text()
    import fiscal_sim.orchestrate.run as engine_run

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(engine_run, "summary_table", boom)
    with pytest.raises(RuntimeError):
        run(scen.with_settings(draws=100), out, write_draws=True)
    assert (out / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r"]


def test_budget_lines_accept_every_money_unit_the_validator_accepts(tmp_path):
    text = SMALL.read_text(encoding="utf-8").replace("amount: 6000, unit: 万元", "amount: 0.6, unit: 亿")
    f = FIX / "_budget_unit.yaml"
    f.write_text(text, encoding="utf-8")
    try:
        lay = layout(load_scenario(f))
    finally:
        f.unlink()
    cols = [
        i
        for i in range(lay.size)
        if lay.program[i] == "ALL" and lay.payer[i] == "city" and lay.measure[i] == "cash" and lay.period[i] == "year"
    ]
    assert cols and all(lay.budget_cny[i] == 6000 * WAN for i in cols)
