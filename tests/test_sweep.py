"""Sweep: every combination once, swept values really used, clear errors for unknown parameters."""

from __future__ import annotations

import re

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from fiscal_sim.analysis.sweep import SweepError, design_points, plan, point_scenario, resolve_program, sweep
from fiscal_sim.cli import app
from fiscal_sim.scenario import load_scenario

BASE = Path(__file__).parent / "scenarios" / "crn_base.yaml"
CAPPED = "jzf2017-3.major-conversion"
HOUSING = "jwf2017-4.talent-housing"
CAP = f"programs.{CAPPED}.parameters.cap"
GROWTH = f"uptake.{HOUSING}.growth"
CAP_COL, GROWTH_COL = (re.sub(r"[^a-z0-9]+", "_", c.lower()) for c in (CAP, GROWTH))  # SQL-safe column names


@pytest.fixture(scope="module")
def scen():
    return load_scenario(BASE).with_settings(draws=100)


@pytest.fixture(scope="module")
def grid(scen, tmp_path_factory):
    p = plan(scen, [f"{CAP}=300,500,800", f"{GROWTH}=0,0.05"], [])
    return sweep(scen, p, tmp_path_factory.mktemp("sweep") / "out")


def test_grid_runs_every_combination_once(grid):
    points = pq.read_table(grid.out / "points.parquet").to_pylist()
    combos = [(r[CAP_COL], r[GROWTH_COL]) for r in points]
    assert sorted(combos) == sorted((c, g) for c in (300, 500, 800) for g in (0, 0.05))
    assert len(set(combos)) == len(combos) == 6
    t = pq.read_table(grid.out / "sweep.parquet")
    assert sorted(set(t["point"].to_pylist())) == list(range(6))
    per_point = np.bincount(np.array(t["point"]))
    assert len(set(per_point)) == 1  # the same summary rows for every point
    assert {CAP_COL, GROWTH_COL} <= set(t.column_names)


def test_swept_values_are_the_parameters_used(scen, grid):
    p = grid.plan
    for i, (cap, growth) in enumerate(p.points):
        v = point_scenario(scen, p, i)
        progs = {sp.id: sp for sp in v.programs}
        assert progs[CAPPED].prog.spec.formula.max == cap
        assert progs[HOUSING].prog.spec.uptake.count.growth == growth
        lam = progs[HOUSING].lam.sum(axis=0)
        assert lam[-1] / lam[0] == pytest.approx((1 + growth) ** 4)  # growth reaches the expected counts


def test_swept_values_change_the_results(grid):
    rows = [
        r
        for r in grid.table.to_pylist()
        if r["program"] == CAPPED
        and r["payer"] == "ALL"
        and r["vintage"] == "ALL"
        and r["measure"] == "cash"
        and r["period"] == "horizon"
    ]
    by = {(r[CAP_COL], r[GROWTH_COL]): r["mean_cny"] for r in rows}
    for g in (0, 0.05):
        assert by[(300, g)] < by[(500, g)] < by[(800, g)]  # a higher cap pays more, same applicants
    housing = {
        (r[CAP_COL], r[GROWTH_COL]): r["mean_cny"]
        for r in grid.table.to_pylist()
        if r["program"] == HOUSING
        and r["payer"] == "ALL"
        and r["vintage"] == "ALL"
        and r["measure"] == "cash"
        and r["period"] == "horizon"
    }
    assert housing[(300, 0.05)] > housing[(300, 0)]


@pytest.mark.parametrize(
    "target, message",
    [
        (f"programs.{CAPPED}.formula.maxx=1", "unknown parameter path 'formula.maxx'"),
        (f"programs.{CAPPED}.formula.max=1", f"address parameters by name: programs.{CAPPED}.parameters.cap"),
        (f"programs.{CAPPED}.parameters.cpa=1", "has no parameter 'cpa' (parameters: cap, rate); did you mean cap?"),
        (f"programs.{CAPPED}.uptake.count.grwth=1", "unknown parameter path 'uptake.count.grwth'"),
        (f"uptake.{HOUSING}.grow=0.1", "'grow' is neither an uptake field"),
        ("programs.no-such.program.formula.max=1", "unknown program"),
        (f"programs.{CAPPED}=1", "no parameter path"),
        ("budget.city=1", "unknown parameter"),
        ("cost_sharing.existing_regime.county.mayor=0.5", "unknown payer 'mayor'"),
    ],
)
def test_unknown_parameter_is_a_clear_error(scen, target, message):
    with pytest.raises(SweepError) as e:
        plan(scen, [target], [])
    assert target.split("=")[0] in str(e.value) and message in str(e.value)


def test_invalid_value_names_the_point(scen):
    with pytest.raises(Exception) as e:
        plan(scen, [f"{CAP}=500,-5"], [])
    assert "sweep point 1" in str(e.value) and CAP in str(e.value) and "greater than or equal to 0" in str(e.value)


def test_cli_reports_an_unknown_path_and_exits_non_zero(tmp_path):
    res = CliRunner().invoke(
        app, ["sweep", str(BASE), "--set", f"programs.{CAPPED}.formula.maxx=1,2", "--out", str(tmp_path / "s")]
    )
    assert res.exit_code == 1
    assert "formula.maxx" in res.output and not (tmp_path / "s").exists()


def test_program_ids_with_dots_resolve_to_the_longest_id():
    fake = SimpleNamespace(catalogue=SimpleNamespace(programs={"a.b": 1, "a.b.c": 2, "a": 3}))
    assert resolve_program(fake, "t", "a.b.c.formula.max") == ("a.b.c", "formula.max")
    assert resolve_program(fake, "t", "a.b.x") == ("a.b", "x")


def test_shorthands(scen):
    p = plan(scen, [f"{GROWTH}=0.1", f"uptake.{HOUSING}.attrition=0.2", f"programs.{CAPPED}.cap=900"], [])
    assert [t.path for t in p.targets] == ["uptake.count.growth", "uptake.attrition", "parameters.cap"]
    with pytest.raises(SweepError, match="not a cap"):
        plan(scen, [f"programs.{HOUSING}.cap=1"], [])


def test_cost_share_sweep_moves_the_rest_to_the_other_payer(scen):
    p = plan(scen, ["cost_sharing.existing_regime.city_proper.city=0.8"], [])
    v = point_scenario(scen, p, 0)
    assert v.spec.cost_sharing["existing_regime"]["city_proper"] == pytest.approx({"city": 0.8, "local": 0.2})
    sp = next(s for s in v.programs if s.id == HOUSING)  # nanhu, xiuzhou (city proper), jetz (development zone)
    assert sp.shares.sum(axis=1) == pytest.approx(1.0)
    assert list(sp.shares[:, v.geography.payers.index("city")]) == pytest.approx([0.8, 0.8, 0.5])


def test_designs_sample_ranges(scen):
    pts = design_points([(300.0, 800.0, True), (0.0, 0.1, False)], "lhs", 10, seed=3)
    assert pts.shape == (10, 2)
    assert np.all((pts[:, 0] >= 300) & (pts[:, 0] <= 800)) and np.all(pts[:, 0] == np.rint(pts[:, 0]))
    strata = np.floor(pts[:, 1] / 0.01).astype(int)  # Latin hypercube: one point per stratum
    assert sorted(strata) == list(range(10))
    sob = design_points([(0.0, 1.0, False)] * 3, "sobol", 8, seed=1)
    assert sob.shape == (8, 3) and np.all((sob >= 0) & (sob <= 1))
    p = plan(scen, [f"{GROWTH}=0,0.05"], [f"{CAP}=300:800", "shock.sigma=0:0.3"], design="sobol", samples=4)
    assert len(p.points) == 8 and len(set(p.points)) == 8  # the --set list crossed with the design


def test_range_needs_a_design_and_targets_are_not_repeated(scen):
    with pytest.raises(SweepError, match="--design lhs"):
        plan(scen, [], [f"{CAP}=300:800"])
    with pytest.raises(SweepError, match="already swept"):
        plan(scen, [f"{CAP}=1,2", f"programs.{CAPPED}.cap=3"], [])
    with pytest.raises(SweepError, match="nothing to sweep"):
        plan(scen, [], [])


@pytest.fixture(scope="module")
def swept_baseline(tmp_path_factory) -> tuple[Path, str]:
    """The bureau's baseline (it has an existing book) swept over two caps, 100 draws, as the terminal shows it."""
    baseline = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    out = tmp_path_factory.mktemp("sweep") / "sw"
    res = CliRunner().invoke(
        app,
        ["sweep", str(baseline), "--set", f"programs.{CAPPED}.cap=1000,3000", "--draws", "100", "--out", str(out)],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def test_printed_sweep_table_equals_duckdb_on_sweep_parquet(swept_baseline):
    """The table `sweep` prints is the all-vintage horizon cash of sweep.parquet, point by point (the baseline
    has an existing book, so a filter that forgets `vintage` would print the existing-vintage rows)."""
    import duckdb

    out, text = swept_baseline
    expected = duckdb.sql(f"""
        SELECT point, payer, mean_cny, p95_cny
        FROM '{out}/sweep.parquet' WHERE program = 'ALL' AND vintage = 'ALL' AND measure = 'cash'
          AND period = 'horizon' AND payer IN ('ALL', 'city') ORDER BY point, payer""").fetchall()
    want = {}
    for point, payer, m, p in expected:  # whole 万元 as the terminal rounds them (Python's round of yuan / 1e4)
        want.setdefault(point, {})[payer] = (round(m / 1e4), round(p / 1e4))
    printed = re.findall(
        r"^│ (\d+)\s+│ (\d+)\s+│ ([\d,]+)\s+│ ([\d,]+)\s+│ ([\d,]+)\s+│ ([\d,]+)\s+│$", text, flags=re.M
    )
    assert len(printed) == 2
    for point, _cap, *cells in printed:
        a_m, a_p, c_m, c_p = (int(c.replace(",", "")) for c in cells)
        assert (a_m, a_p) == want[int(point)]["ALL"] and (c_m, c_p) == want[int(point)]["city"]
    assert want[0]["ALL"][0] < want[1]["ALL"][0]  # the cap moves the total: the rows are not the fixed book


def test_printed_sweep_point_lines_equal_duckdb_on_sweep_parquet(swept_baseline):
    """Each point's line: all payers' horizon mean and P90 (亿元) and the riskiest budget line's worst-year
    P(exceed), read back from sweep.parquet."""
    import duckdb

    out, text = swept_baseline
    printed = re.findall(r"^    mean ([\d,.]+), P90 ([\d,.]+); P\(exceed\) .+ ([\d.]+)% in (\d{4})$", text, flags=re.M)
    totals = duckdb.sql(
        f"SELECT mean_cny, p90_cny FROM '{out}/sweep.parquet' WHERE program = 'ALL' "
        "AND vintage = 'ALL' AND payer = 'ALL' AND measure = 'cash' AND period = 'horizon' "
        "ORDER BY point"
    ).fetchall()
    assert len(printed) == len(totals) == 2
    for point, ((mean, p90, pct, year), (w_mean, w_p90)) in enumerate(zip(printed, totals)):
        assert (mean, p90) == (f"{w_mean / 1e8:,.2f}", f"{w_p90 / 1e8:,.2f}"), point
        ((worst,),) = duckdb.sql(
            f"SELECT max(p_exceed) FROM '{out}/sweep.parquet' WHERE point = {point} "
            "AND vintage = 'ALL' AND period = 'year' AND budget_cny > 0"
        ).fetchall()
        ((at_year,),) = duckdb.sql(
            f"SELECT max(p_exceed) FROM '{out}/sweep.parquet' WHERE point = {point} "
            f"AND vintage = 'ALL' AND period = 'year' AND fiscal_year = {year} "
            "AND budget_cny > 0"
        ).fetchall()
        assert pct == f"{100 * worst:.1f}" == f"{100 * at_year:.1f}", point  # the riskiest line, in its worst year


def test_two_sweeps_of_different_scenarios_in_one_process(scen):
    """A long-lived process (a notebook, the workbench) sweeps one scenario, then another: each point's layout is
    made for its own scenario, never taken from the earlier sweep's point of the same number."""
    from fiscal_sim.orchestrate.executors import Executor
    from fiscal_sim.orchestrate.run import simulate_points

    other = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml").with_settings(draws=100)
    for s in (scen, other):
        p = plan(s, [f"programs.{CAPPED}.cap=1000,3000"], [])
        done = {i: lay for i, _, lay in simulate_points([point_scenario(s, p, i) for i in range(2)], Executor())}
        assert set(done) == {0, 1} and set(done[0].program) >= {sp.id for sp in s.programs if sp.lam.any()} - {"ALL"}
