"""``calc`` follows the simulation's policy timeline and payment timing: the catalogue's tranches and lag, a
replaced program's switch date; and calc's cash by fiscal year for one award equals the engine's cash for a
scenario with exactly that one award (read back from the run's summary with DuckDB)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from fiscal_sim.calc import calculate
from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.cli import app
from fiscal_sim.register import payments
from fiscal_sim.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1] / "scenarios"
CAT = load_catalogue(ROOT)
TRANCHED = [
    "jzf2017-3.national-major-carrier",
    "jwf2017-4.team-rolling-support",
    "jwf2017-4.new-rd-institution",
    "jzf2017-3.major-conversion",
    "jzf2017-3.rd-headquarters",
    "jwf2017-4.city-leading-team",
]


@pytest.mark.parametrize("pid", TRANCHED)
def test_large_packages_are_paid_in_three_tranches(pid):
    """A package of 1,000万元 and more: 40/30/30 over t+1…t+3 (labelled default), in the scenario and in calc."""
    scen = load_scenario(ROOT / "baseline.yaml")
    sched = {sp.id: sp.prog.spec.schedule for sp in scen.programs}[pid]
    assert payments(sched, 1000.0, annual=False) == [(1, 400.0), (2, 300.0), (3, 300.0)]


def test_calc_of_a_major_conversion_pays_40_30_30_from_the_next_year():
    r = calculate(CAT, "jzf2017-3.major-conversion", {"fai": "5000"}, "nanhu", dt.date(2025, 6, 1))
    assert r.award_cny == 5_000_000  # 10% of 5000万元
    assert [(s["fiscal_year"], s["cash_cny"]) for s in r.schedule] == [(2026, 2e6), (2027, 1.5e6), (2028, 1.5e6)]
    assert any("instalments 40%/30%/30%" in n for n in r.notes)


def test_calc_says_a_replaced_program_pays_nothing_after_the_switch():
    """省级重点企业研究院 construction grant (2017) is replaced by the 2024 reward from 2024-04-01."""
    before = calculate(
        CAT, "jzf2017-3.provincial-institute-build", {"grant_share": "0.5"}, "nanhu", dt.date(2023, 6, 1)
    )
    after = calculate(CAT, "jzf2017-3.provincial-institute-build", {"grant_share": "0.5"}, "nanhu", dt.date(2024, 6, 1))
    assert before.in_force and before.paid_cny > 0
    assert not after.in_force and after.paid_cny == 0 and after.schedule == []
    assert any("replaced by jzbf2024-7.research-institute from 2024-04-01" in n for n in after.notes)


def test_calc_cash_by_year_equals_the_engine_for_one_award(tmp_path):
    """One major-conversion award a year for certain (fai fixed at 5000万元, no shock), 2025–2028: the engine's
    mean city-proper cash by year is the sum of calc's schedules of the awards of 2025, 2026, … shifted by year."""
    pid = "jzf2017-3.major-conversion"
    scen = {
        "scenario": {
            "name": "one_award",
            "programs": [pid],
            "horizon": {"start": 2025, "end": 2028},
            "draws": 20,
            "seed": 1,
            "chunk_size": 20,
            "shock": {"sigma": 0.0, "correlation": 0.0},
            "overrides": {
                pid: {
                    "uptake.count": {"dist": "binomial", "pool": 1, "take_up": 1.0, "shock": False},
                    "uptake.allocation": {"nanhu": 1},
                    "uptake.inputs": {"fai": {"dist": "fixed", "value": 5000}},
                }
            },
        }
    }
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(scen, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "-q", "--no-draws-ledger"])
    assert res.exit_code == 0, res.output
    engine = dict(
        duckdb.sql(f"""SELECT fiscal_year, mean_cny FROM read_parquet('{out}/summary.parquet')
        WHERE program = '{pid}' AND payer = 'ALL' AND vintage = 'ALL' AND measure = 'cash' AND period = 'year'
        ORDER BY 1""").fetchall()
    )
    expected = {y: 0.0 for y in range(2025, 2029)}
    for award_year in range(2025, 2029):
        r = calculate(CAT, pid, {"fai": "5000"}, "nanhu", dt.date(award_year, 6, 1))
        for s in r.schedule:
            if s["fiscal_year"] in expected:
                expected[s["fiscal_year"]] += s["cash_cny"]
    assert expected == {2025: 0.0, 2026: 2e6, 2027: 3.5e6, 2028: 5e6}  # hand-computed: 40%, 40+30%, 40+30+30%
    assert engine == pytest.approx(expected, abs=1e-6)
