"""Calibration from award history: conjugate updates, recovery, overlays, backtests, bad history files."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from hypothesis import given, settings, strategies as st
from scipy import stats
from typer.testing import CliRunner

from fiscal_sim.calibrate.backtest import crps_sample, pit, run_backtest
from fiscal_sim.calibrate.history import read_history
from fiscal_sim.calibrate.overlay import overlay_data, write_overlay
from fiscal_sim.calibrate.posterior import beta_update, calibrate, calibrate_program, gamma_update
from fiscal_sim.calibrate.synthetic import TRUE_RATES, synthetic_rows
from fiscal_sim.cli import app
from fiscal_sim.errors import InputError
from fiscal_sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
HISTORY = REPO / "scenarios" / "history" / "awards_synthetic.csv"
DRIFTING = "jwf2017-4.postdoc-researcher"


@pytest.fixture(scope="module")
def scen():
    return load_scenario(BASELINE)


@pytest.fixture(scope="module")
def hist(scen):
    return read_history(HISTORY, scen.catalogue)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    return path


# ---------------------------------------------------------------- conjugate updates by hand


def test_gamma_poisson_update_by_hand():
    # prior θ ~ Gamma(4, 4) (mean 1, CV 0.5); awards 15 and 13 where 10 and 10 were expected
    a, b = gamma_update(np.array([15.0, 13.0]), np.array([10.0, 10.0]), np.zeros(2), 4.0, 4.0)
    assert (a, b) == (32.0, 24.0)  # mean 4/3, CV 1/√32


def test_gamma_negbin_update_is_the_weighted_fixed_point():
    n, E, kappa = np.array([30.0, 50.0]), np.array([40.0, 40.0]), np.array([0.1, 0.1])
    a, b = gamma_update(n, E, kappa, 16.0, 16.0)
    w = 1 / (1 + (a / b) * E * kappa)
    assert a == pytest.approx(16 + w @ n) and b == pytest.approx(16 + w @ E)
    assert 1 / np.sqrt(a) > 1 / np.sqrt(16 + n.sum())  # overdispersion: less information than Poisson


def test_beta_binomial_update_by_hand():
    alpha, beta = beta_update(np.array([12.0, 9.0]), np.array([35.0, 35.0]), 0.0, 6.0, 14.0)
    assert (alpha, beta) == (27.0, 63.0)


# ---------------------------------------------------------------- recovery (property tests)


@settings(max_examples=12, deadline=None)
@given(
    mean=st.floats(0.5, 200),
    cv=st.floats(0.1, 0.6),
    d=st.sampled_from([0.0, 0.2, 0.4]),
    sigma=st.sampled_from([0.0, 0.15]),
    years=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
)
def test_posterior_interval_covers_the_true_rate_at_about_nominal_frequency(mean, cv, d, sigma, years, seed):
    """True rates drawn from the prior, histories from the engine's count model: 90% intervals cover ≈ 90%."""
    R = 600
    rng = np.random.default_rng(seed)
    theta = rng.gamma(1 / cv**2, cv**2, R)
    s2 = np.expm1(sigma**2)
    shock = np.exp(sigma * rng.standard_normal((R, years)) - sigma**2 / 2)
    over = rng.gamma(1 / d**2, d**2, (R, years)) if d > 0 else 1.0
    E = np.full(years, mean)
    n = rng.poisson(theta[:, None] * E * shock * over)
    a, b = gamma_update(n, E, np.full(years, s2 + d**2 * (1 + s2)), 1 / cv**2, 1 / cv**2)
    lo, hi = stats.gamma.ppf(0.05, a, scale=1 / b), stats.gamma.ppf(0.95, a, scale=1 / b)
    coverage = np.mean((lo <= theta) & (theta <= hi))
    assert abs(coverage - 0.9) < 0.065, coverage


@settings(max_examples=8, deadline=None)
@given(
    p=st.floats(0.05, 0.9),
    cv=st.floats(0.1, 0.5),
    pool=st.integers(5, 200),
    years=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_take_up_interval_covers_the_true_take_up(p, cv, pool, years, seed):
    R = 600
    rng = np.random.default_rng(seed)
    # a proper prior (beta parameters summing to at least 2): near its limit sd → sqrt(p(1-p)) the beta piles its
    # mass at exactly 0 and 1 in floating point, where interval ends and draws compare equal by rounding alone
    sd = min(p * cv, np.sqrt(p * (1 - p) / 3))
    k = p * (1 - p) / sd**2 - 1
    q = rng.beta(p * k, (1 - p) * k, R)
    n = rng.binomial(pool, np.repeat(q[:, None], years, axis=1))
    alpha, beta = beta_update(n, np.full(years, float(pool)), 0.0, p * k, (1 - p) * k)
    lo, hi = stats.beta.ppf(0.05, alpha, beta), stats.beta.ppf(0.95, alpha, beta)
    assert abs(np.mean((lo <= q) & (q <= hi)) - 0.9) < 0.05


def test_more_history_narrows_the_interval(scen, hist):
    sp = next(s for s in scen.programs if s.id == "jzf2017-3.tech-transaction")
    h = hist.of(sp.id)
    widths = [np.diff(calibrate_program(sp, h.before(y), scen).interval)[0] for y in (2019, 2021, 2023, 2026)]
    assert all(b < a for a, b in zip(widths, widths[1:])), widths


def test_no_history_returns_the_prior_unchanged(scen, hist):
    sp = next(s for s in scen.programs if s.id == "jzbf2024-7.hnte-first-certification")
    cal = calibrate_program(sp, hist.of(sp.id), scen)
    c = sp.prog.spec.uptake.count
    assert (cal.post_mean, cal.post_cv, cal.overrides, cal.years) == (c.mean, c.rate_cv, {}, [])


def test_calibrated_rates_recover_the_stated_true_rates(scen, hist):
    for cal in calibrate(hist, scen):
        if cal.program in TRUE_RATES and cal.program != DRIFTING:
            truth = TRUE_RATES[cal.program].get("mean", TRUE_RATES[cal.program].get("take_up"))
            lo, hi = cal.interval
            assert lo * 0.8 < truth < hi * 1.2, (cal.program, truth, cal.interval)


def test_a_drifting_rate_gets_its_growth_from_enough_years(scen, hist):
    cals = {c.program: c for c in calibrate(hist, scen)}
    g = cals[DRIFTING].growth
    assert g["adopted"] and g["interval_90"][0] > 0 and "uptake.count.growth" in cals[DRIFTING].overrides
    short = calibrate_program(next(s for s in scen.programs if s.id == DRIFTING), hist.of(DRIFTING).before(2021), scen)
    assert short.growth is None  # three years: growth kept


# ---------------------------------------------------------------- overlay accepted by run


def test_overlay_runs_and_changes_only_calibrated_programs(tmp_path, scen, hist):
    cals = calibrate(hist, scen)
    path = write_overlay(overlay_data(scen, hist, cals, tmp_path / "cal.yaml"), tmp_path / "cal.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    basis = data["calibration"]["programs"]["jzf2017-3.tech-transaction"]
    assert basis["years_observed"] == 8 and basis["prior"]["mean"] == 30 and len(basis["posterior"]["interval_90"]) == 2
    cal_scen = load_scenario(path)
    assert cal_scen.spec.horizon == scen.spec.horizon and cal_scen.spec.budgets == scen.spec.budgets
    before, after = {s.id: s for s in scen.programs}, {s.id: s for s in cal_scen.programs}
    by = {c.program: c for c in cals}
    for pid, sp in after.items():
        if by[pid].years:
            assert sp.prog.spec.uptake.basis == "calibrated"
            if pid != DRIFTING and sp.prog.spec.uptake.count.mean is not None:
                assert sp.lam.sum() == pytest.approx(
                    before[pid].lam.sum() * by[pid].post_mean / by[pid].prior_mean, rel=1e-5
                )
        else:
            np.testing.assert_array_equal(sp.lam, before[pid].lam)


def test_extends_merges_overrides_and_reports_missing_or_circular_bases(tmp_path):
    base = tmp_path / "base.yaml"
    child = tmp_path / "child.yaml"
    base.write_text(
        yaml.safe_dump(
            {
                "scenario": {
                    "name": "b",
                    "horizon": {"start": 2025, "end": 2026},
                    "programs": ["jzf2017-3.science-award", "jzf2017-3.tech-transaction"],
                    "overrides": {"jzf2017-3.science-award": {"uptake.count.mean": 9, "uptake.count.rate_cv": 0.1}},
                }
            }
        )
    )
    child.write_text(
        yaml.safe_dump(
            {
                "scenario": {
                    "extends": "base.yaml",
                    "name": "c",
                    "overrides": {"jzf2017-3.science-award": {"uptake.count.mean": 12}},
                }
            }
        )
    )
    s = load_scenario(child)
    c = next(p for p in s.programs if p.id == "jzf2017-3.science-award").prog.spec.uptake.count
    assert (s.spec.name, c.mean, c.rate_cv, s.years) == ("c", 12, 0.1, [2025, 2026])
    base.write_text(yaml.safe_dump({"scenario": {"extends": "child.yaml", "name": "b"}}))
    with pytest.raises(InputError, match="circular extends"):
        load_scenario(child)
    child.write_text(yaml.safe_dump({"scenario": {"extends": "nowhere.yaml", "name": "c"}}))
    with pytest.raises(InputError, match="no such scenario file"):
        load_scenario(child)


# ---------------------------------------------------------------- scores


def test_crps_and_pit_by_hand():
    assert crps_sample(np.array([0.0, 1.0]), 0.0) == pytest.approx(0.25)  # E|X−0| = ½, ½E|X−X′| = ¼
    assert crps_sample(np.array([3.0]), 5.0) == 2.0  # a point forecast: the absolute error
    x = np.array([1.0, 2.0, 2.0, 3.0])
    assert (pit(x, 2.0, 0.0), pit(x, 2.0, 1.0), pit(x, 0.0, 0.5), pit(x, 9.0, 0.5)) == (0.25, 0.75, 0.0, 1.0)
    z = np.random.default_rng(0).standard_normal(20_000)  # closed form for N(0,1) at 0: 2φ(0) − 1/√π
    assert crps_sample(z, 0.0) == pytest.approx(2 * stats.norm.pdf(0) - 1 / np.sqrt(np.pi), abs=0.01)


# ---------------------------------------------------------------- backtests


def test_backtest_of_a_correct_model_has_near_nominal_coverage(tmp_path, scen):
    """Histories drawn from the true rates (the drifting program left out), four seeds, 400 draws each."""
    pits, in80, in90 = [], [], []
    for seed in range(4):
        rows = [r for r in synthetic_rows(seed=seed) if r["program"] != DRIFTING]
        hist = read_history(write_csv(tmp_path / f"h{seed}.csv", rows), scen.catalogue)
        out = tmp_path / f"bt{seed}"
        out.mkdir()
        t = run_backtest(hist, scen, 2022, out, draws=400).table.to_pylist()
        rows = [r for r in t if r["measure"] == "awards" and r["program"] != "ALL"]
        pits += [r["pit"] for r in rows]
        in80 += [r["in_80"] for r in rows]
        in90 += [r["in_90"] for r in rows]
    n = len(in80)  # 4 seeds × (6 programs × 4 years + innovation-salary, replaced from 2024-04-01, × 3 years)
    assert n == 108
    assert stats.binomtest(sum(in80), n, 0.8).pvalue > 0.01 and stats.binomtest(sum(in90), n, 0.9).pvalue > 0.01
    assert stats.kstest(pits, "uniform").pvalue > 0.01


def test_a_biased_overconfident_scenario_is_flagged(tmp_path, scen, hist):
    biased = tmp_path / "biased.yaml"
    biased.write_text(
        yaml.safe_dump(
            {
                "scenario": {
                    "extends": str(BASELINE),
                    "name": "biased",
                    "overrides": {
                        "jzf2017-3.tech-transaction": {"uptake.count.mean": 90, "uptake.count.rate_cv": 0.01}
                    },
                }
            }
        )
    )
    out = tmp_path / "bt"
    out.mkdir()
    bt = run_backtest(hist, load_scenario(biased), 2022, out, draws=300)
    # the drifting program is flagged too: four training years are too few to estimate its growth
    assert bt.summary["measures"]["awards"]["flagged"] == {
        "jzf2017-3.tech-transaction": "forecast too high",
        DRIFTING: "forecast too low",
    }
    assert bt.summary["measures"]["awards"]["verdict"].startswith("miscalibrated")


# ---------------------------------------------------------------- bad history files

NEXT_YEAR = dt.date.today().year + 1
GOOD = {"program": "jzf2017-3.science-award", "jurisdiction": "nanhu", "year": 2020, "awards": 3}


@pytest.mark.parametrize(
    "change, where, message",
    [
        ({"program": "jzf2017-3.nope"}, "row 2, column program", "unknown program 'jzf2017-3.nope'"),
        ({"jurisdiction": "shanghai"}, "row 2, column jurisdiction", "unknown jurisdiction 'shanghai'"),
        (
            {"program": "jwf2017-4.overseas-expert", "jurisdiction": "haining"},
            "row 2, column jurisdiction",
            "does not apply in 'haining'",
        ),
        ({"year": NEXT_YEAR}, "row 2, column year", f"year {NEXT_YEAR} is in the future"),
        ({"awards": -2}, "row 2, column awards", "negative count -2"),
        ({"awards": 2.5}, "row 2, column awards", "not a whole number"),
        ({"awards": "many"}, "row 2, column awards", "not a number"),
        ({"year": 2020, "jurisdiction": "nanhu"}, "row 2, column jurisdiction", "repeats the same program"),
        ({"awards": 0, "amount_wan": 30}, "row 2, column amount", "an amount of 300,000 yuan with no awards"),
    ],
)
def test_bad_rows_name_file_row_and_column(tmp_path, scen, change, where, message):
    path = write_csv(tmp_path / "h.csv", [GOOD, {**GOOD, "year": 2019, **change}])
    with pytest.raises(InputError) as e:
        read_history(path, scen.catalogue)
    text = str(e.value)
    assert str(path) in text and where in text and message in text, text


def test_bad_columns_and_units(tmp_path, scen):
    path = write_csv(tmp_path / "h.csv", [{"program": GOOD["program"], "year": 2020, "awards": 1, "colour": "x"}])
    with pytest.raises(InputError) as e:
        read_history(path, scen.catalogue)
    assert "column jurisdiction: required column is missing" in str(e.value)
    assert "column colour: unknown column" in str(e.value)
    path = write_csv(tmp_path / "u.csv", [{**GOOD, "amount": 35}])
    with pytest.raises(InputError, match="row 1, column unit: column amount needs a unit"):
        read_history(path, scen.catalogue)


def test_units_parquet_and_xlsx_read_alike(tmp_path, scen):
    import openpyxl
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{**GOOD, "amount": 35, "unit": "万元"}, {**GOOD, "year": 2021, "amount": 350000, "unit": "元"}]
    csv_h = read_history(write_csv(tmp_path / "h.csv", rows), scen.catalogue)
    assert csv_h.amount_cny.tolist() == [350000.0, 350000.0]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "h.parquet")
    wb = openpyxl.Workbook()
    wb.active.append(list(rows[0]))
    for r in rows:
        wb.active.append(list(r.values()))
    wb.active.append([GOOD["program"], "nanhu", 2022, -1])
    wb.save(tmp_path / "h.xlsx")
    assert read_history(tmp_path / "h.parquet", scen.catalogue).amount_cny.tolist() == [350000.0, 350000.0]
    with pytest.raises(InputError, match=r"h.xlsx: program 'jzf2017-3.science-award': row 3, column awards: negative"):
        read_history(tmp_path / "h.xlsx", scen.catalogue)


def test_awards_where_the_program_expects_none_are_an_error(tmp_path, scen):
    path = write_csv(tmp_path / "h.csv", [{**GOOD, "program": "jzbf2024-7.research-institute", "year": 2020}])
    with pytest.raises(InputError, match="year 2020, jurisdiction nanhu: 3 awards where the program expects none"):
        calibrate(read_history(path, scen.catalogue), scen)


# ---------------------------------------------------------------- CLI end to end


def test_cli_calibrate_run_backtest_report(tmp_path):
    runner = CliRunner()
    small = tmp_path / "small.yaml"  # the baseline cut to the history's programs (a fast run and report)
    small.write_text(
        yaml.safe_dump(
            {
                "scenario": {
                    "extends": str(BASELINE),
                    "name": "small",
                    "budgets": [],
                    "commitments": None,
                    "programs": list(TRUE_RATES),
                }
            }
        )
    )
    overlay = tmp_path / "calibrated.yaml"
    res = runner.invoke(app, ["calibrate", str(HISTORY), "--scenario", str(small), "--out", str(overlay)])
    assert res.exit_code == 0, res.output
    assert "8 programs calibrated" in res.output
    growth = yaml.safe_load(overlay.read_text(encoding="utf-8"))["calibration"]["programs"][DRIFTING]["growth"]
    assert growth["adopted"]
    res = runner.invoke(
        app, ["run", str(overlay), "--draws", "100", "--out", str(tmp_path / "run"), "-q", "--no-draws-ledger"]
    )
    assert res.exit_code == 0, res.output
    ((basis,),) = duckdb.sql(
        f"SELECT uptake_basis FROM '{tmp_path}/run/programs.parquet' WHERE program = 'jzf2017-3.tech-transaction'"
    ).fetchall()
    assert basis == "calibrated"
    res = runner.invoke(
        app,
        [
            "backtest",
            str(HISTORY),
            "--scenario",
            str(small),
            "--holdout-from",
            "2023",
            "--draws",
            "200",
            "--out",
            str(tmp_path / "run" / "backtest"),
        ],
    )
    assert res.exit_code == 0, res.output
    n, programs = duckdb.sql(
        f"SELECT count(*), count(DISTINCT program) FROM '{tmp_path}/run/backtest/backtest.parquet'"
        " WHERE measure = 'awards'"
    ).fetchall()[0]
    assert (n, programs) == (26, 9)  # 8 programs + ALL, 2023–2025, less innovation-salary in 2025 (replaced)
    summary = json.loads((tmp_path / "run/backtest/backtest.json").read_text(encoding="utf-8"))
    assert sum(summary["measures"]["awards"]["pit_histogram"]) == 23
    res = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "run/report/report.html").read_text(encoding="utf-8")
    assert 'id="backtest"' in html and 'data-chart="backtest-pit"' in html


def test_cli_bad_history_is_one_clear_error(tmp_path):
    path = write_csv(tmp_path / "h.csv", [{**GOOD, "awards": -1}])
    res = CliRunner().invoke(app, ["calibrate", str(path), "--out", str(tmp_path / "x.yaml")])
    assert res.exit_code == 1 and "row 1, column awards: negative count" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x.yaml").exists()


# ---------------------------------------------------------------- amounts


def test_amounts_recover_the_true_award_size(scen, hist):
    cals = {c.program: c for c in calibrate(hist, scen)}
    team = cals["jwf2017-4.key-innovation-team"]  # true grant share 0.7 of 200万元, prior 0.55
    assert team.amount["input"] == "grant_share" and team.amount["calibrated"] == "yes"
    assert 0.62 < team.overrides["uptake.inputs.grant_share.mean"] < 0.78
    lo, hi = team.amount["interval_90_cny"]
    assert lo < team.amount["observed_mean_per_award_cny"] < hi
    award = cals["jwf2017-4.postdoc-researcher"]  # a fixed award: checked, not changed
    assert award.amount["calibrated"].startswith("no") and not any(
        k.startswith("uptake.inputs") for k in award.overrides
    )


def test_amounts_equal_to_the_model_keep_the_distribution(tmp_path, scen):
    from fiscal_sim.calibrate.amounts import calibrate_amount, commitments

    prog = scen.catalogue.programs["jzf2017-3.tech-transaction"]
    mean = float(commitments(prog).mean())
    path = write_csv(
        tmp_path / "h.csv",
        [
            {"program": prog.id, "jurisdiction": "ALL", "year": y, "awards": 50, "amount_cny": 50 * mean}
            for y in (2020, 2021)
        ],
    )
    basis, changes = calibrate_amount(prog, read_history(path, scen.catalogue), 0.9)
    assert basis["scale"] == pytest.approx(1.0, abs=1e-4)
    assert changes["uptake.inputs.transaction.median"] == pytest.approx(100, rel=1e-4)


def test_allocation_by_hand(tmp_path, scen):
    from fiscal_sim.calibrate.posterior import calibrate_allocation

    sp = next(s for s in scen.programs if s.id == "jwf2017-4.overseas-expert")  # nanhu, xiuzhou, jetz; equal prior
    rows = [
        {"program": sp.id, "jurisdiction": j, "year": 2020, "awards": n}
        for j, n in (("nanhu", 20), ("xiuzhou", 10), ("jetz", 0))
    ]
    basis, over = calibrate_allocation(sp, read_history(write_csv(tmp_path / "h.csv", rows), scen.catalogue), scen)
    k = 20 / 3  # Dirichlet(20 × 1/3 each) + (20, 10, 0)
    assert over["uptake.allocation"] == pytest.approx(
        {"nanhu": (k + 20) / 50, "xiuzhou": (k + 10) / 50, "jetz": k / 50}, rel=1e-5
    )
    rows[2]["jurisdiction"] = "ALL"  # incomplete by jurisdiction: the split is kept
    with pytest.raises(InputError):  # an ALL row beside rows by jurisdiction is a double count
        read_history(write_csv(tmp_path / "h2.csv", rows), scen.catalogue)
    basis, over = calibrate_allocation(sp, read_history(write_csv(tmp_path / "h3.csv", rows[:2]), scen.catalogue), scen)
    assert (basis, over) == (None, {})


def test_a_gb18030_csv_from_excel_reads(tmp_path, scen):
    path = tmp_path / "h.csv"
    path.write_bytes(
        "program,jurisdiction,year,awards,source\njzf2017-3.science-award,nanhu,2020,3,财政局台账\n".encode("gb18030")
    )
    assert read_history(path, scen.catalogue).awards.tolist() == [3.0]


def test_an_unusable_trend_keeps_the_prior_growth(tmp_path, scen):
    rows = [
        {"program": "jwf2017-4.overseas-expert", "jurisdiction": "ALL", "year": y, "awards": 9 if y == 2022 else 0}
        for y in range(2018, 2023)
    ]
    cals = {c.program: c for c in calibrate(read_history(write_csv(tmp_path / "h.csv", rows), scen.catalogue), scen)}
    cal = cals["jwf2017-4.overseas-expert"]
    assert cal.growth["estimate"] is None and "uptake.count.growth" not in cal.overrides
    assert cal.growth["note"].startswith("no usable trend") and not cal.growth["adopted"]
    assert np.isfinite(cal.post_mean)


@pytest.mark.parametrize("awards", [[9, 0, 0, 0, 0], [0, 0, 0, 0, 9], [0, 0, 0, 0, 1e-300], [1, 0, 0, 0, 400]])
def test_trend_without_a_finite_fit_is_none_on_every_machine(awards):
    """Awards only at one end of the years (no finite maximum) or a slope far outside ±log 2 give None, not a
    value that depends on where floating point stops the divergence."""
    from fiscal_sim.calibrate.posterior import Evidence, trend

    years = np.arange(2018, 2023)
    ev = Evidence(
        years=years, awards=np.array(awards, float), expected=np.full(5, 2.0), pool=np.zeros(5), herfindahl=np.zeros(5)
    )
    assert trend(ev, np.zeros(5), 2020) is None


def test_trend_recovers_a_known_growth():
    """Counts that are exactly expected × 1.1^t fit β = log 1.1 (hand-computed: the Poisson MLE is exact)."""
    from fiscal_sim.calibrate.posterior import Evidence, trend

    years = np.arange(2018, 2023)
    ev = Evidence(
        years=years,
        awards=10 * 1.1 ** (years - 2020.0),
        expected=np.full(5, 10.0),
        pool=np.zeros(5),
        herfindahl=np.zeros(5),
    )
    b, se, centre = trend(ev, np.zeros(5), 2020)
    assert b == pytest.approx(np.log(1.1), abs=1e-9) and se > 0 and 2019 < centre < 2021


def test_cli_backtest_errors_name_the_file(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["backtest", str(HISTORY), "--holdout-from", "2030", "--out", str(tmp_path / "bt")])
    assert res.exit_code == 1 and "no history from 2030 on to hold out (years 2018–2025)" in res.output
    assert not (tmp_path / "bt").exists()
    small = tmp_path / "small.yaml"
    small.write_text(
        yaml.safe_dump(
            {
                "scenario": {
                    "extends": str(BASELINE),
                    "name": "small",
                    "budgets": [],
                    "commitments": None,
                    "programs": ["jzf2017-3.science-award"],
                }
            }
        )
    )
    res = runner.invoke(app, ["calibrate", str(HISTORY), "--scenario", str(small), "--out", str(tmp_path / "c.yaml")])
    assert (
        res.exit_code == 1
        and "program 'jzf2017-3.tech-transaction': program: has history but is not simulated in scenario 'small'"
        in res.output
    )


def test_calibrate_never_overwrites_a_file_it_did_not_write(tmp_path):
    runner = CliRunner()
    mine = tmp_path / "scenario.yaml"
    mine.write_text("scenario: {name: mine}\n")
    res = runner.invoke(app, ["calibrate", str(HISTORY), "--out", str(mine), "-q"])
    assert res.exit_code == 1 and "was not written by fiscal-sim calibrate; not overwriting it" in res.output
    assert mine.read_text() == "scenario: {name: mine}\n"
    ours = tmp_path / "cal.yaml"
    for _ in range(2):  # a second calibrate replaces its own overlay
        assert runner.invoke(app, ["calibrate", str(HISTORY), "--out", str(ours), "-q"]).exit_code == 0


@settings(max_examples=15, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["nanhu", "xiuzhou", "jetz", "haining"]),
            st.integers(2017, 2025),
            st.integers(0, 500),
            st.floats(0, 1e5, allow_nan=False),
            st.sampled_from(["元", "万元", "亿元"]),
        ),
        min_size=1,
        max_size=12,
        unique_by=lambda r: (r[0], r[1]),
    )
)
def test_history_round_trip_keeps_counts_and_converts_units(tmp_path_factory, scen, rows):
    from fiscal_sim.units import cny_per

    cat = scen.catalogue
    data = [
        {
            "program": "jzf2017-3.science-award",
            "jurisdiction": j,
            "year": y,
            "awards": n,
            "amount": repr(a if n else 0.0),
            "unit": u,
        }
        for j, y, n, a, u in rows
    ]
    h = read_history(write_csv(tmp_path_factory.mktemp("h") / "h.csv", data), cat)
    assert h.awards.tolist() == [float(r[2]) for r in rows]
    assert h.amount_cny == pytest.approx([(r[3] if r[2] else 0.0) * cny_per(r[4]) for r in rows], rel=1e-12)


def test_a_calibrated_target_drops_its_target_until(tmp_path, scen):
    """jwf2017-4.city-leading-team's prior is a target until 2027; calibrated, it is no longer a target."""
    rows = [
        {"program": "jwf2017-4.city-leading-team", "jurisdiction": "ALL", "year": y, "awards": 5} for y in (2020, 2021)
    ]
    hist = read_history(write_csv(tmp_path / "h.csv", rows), scen.catalogue)
    path = write_overlay(overlay_data(scen, hist, calibrate(hist, scen), tmp_path / "c.yaml"), tmp_path / "c.yaml")
    up = next(s for s in load_scenario(path).programs if s.id == "jwf2017-4.city-leading-team").prog.spec.uptake
    assert (up.basis, up.target_until, up.basis_in(2025)) == ("calibrated", None, "calibrated")


def test_calibrate_prints_the_change_in_money_first_equal_to_separate_runs(tmp_path):
    """The plain-words lines `calibrate` prints before its statistics equal two `fiscal-sim run`s (the calibrated
    programs alone, new awards, same seed and draws) read back with DuckDB."""
    from fiscal_sim.calibrate.impact import DRAWS

    runner = CliRunner()
    overlay = tmp_path / "cal.yaml"
    res = runner.invoke(app, ["calibrate", str(HISTORY), "--out", str(overlay)], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    text = res.output
    assert (
        text.index(f"NOTE: {HISTORY} is synthetic")
        < text.index("What the history changes")
        < text.index("the statistics behind it")
    )
    ids = yaml.safe_load(overlay.read_text(encoding="utf-8"))["scenario"]["overrides"].keys()
    totals = {}
    for side, base in (("before", BASELINE), ("after", overlay)):
        scen = tmp_path / f"{side}.yaml"
        scen.write_text(
            yaml.safe_dump(
                {
                    "scenario": {
                        "extends": str(base),
                        "name": side,
                        "programs": sorted(ids),
                        "commitments": None,
                        "budgets": [],
                    }
                }
            ),
            encoding="utf-8",
        )
        out = tmp_path / side
        assert (
            runner.invoke(
                app, ["run", str(scen), "--draws", str(DRAWS), "--out", str(out), "-q", "--no-draws-ledger"]
            ).exit_code
            == 0
        )
        ((totals[side],),) = duckdb.sql(
            f"SELECT sum(mean_cny) FROM '{out}/summary.parquet' WHERE program NOT IN "
            "('ALL', 'ALL_EQUITY') AND payer = 'ALL' AND vintage = 'ALL' AND measure = 'cash' "
            "AND period = 'horizon'"
        ).fetchall()
    b, a = totals["before"], totals["after"]
    assert f"together: {b / 1e8:,.2f} → {a / 1e8:,.2f}亿元 ({(a - b) / 1e8:+,.2f}亿元 over the horizon)" in text


def test_backtest_prints_plain_totals_equal_to_its_parquet(tmp_path):
    import re

    res = CliRunner().invoke(
        app,
        ["backtest", str(HISTORY), "--holdout-from", "2023", "--draws", "100", "--out", str(tmp_path / "bt")],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    note = res.output.index(f"NOTE: {HISTORY} is synthetic")  # said before any figure
    assert note < res.output.index("Held out") and "not the bureau's records" in res.output
    assert json.loads((tmp_path / "bt" / "backtest.json").read_text(encoding="utf-8"))["history_synthetic"] is True
    overlay = (tmp_path / "bt" / "calibration.yaml").read_text(encoding="utf-8")
    assert f"# Run it with: fiscal-sim run {tmp_path / 'bt' / 'calibration.yaml'}\n" in overlay  # not the temp folder
    assert "(synthetic: not the bureau's records)" in yaml.safe_load(overlay)["scenario"]["description"]
    rows = duckdb.sql(
        f"SELECT fiscal_year, measure, actual, forecast_mean FROM '{tmp_path}/bt/backtest.parquet' "
        "WHERE program = 'ALL' ORDER BY 1, 2"
    ).fetchall()
    want = {}
    for y, m, actual, mean in rows:
        want.setdefault(y, {})[m] = (actual, mean)
    for y, got in want.items():
        aw, am = got["awards"], got["amount_cny"]
        assert (
            f"  {y}: {aw[0]:,.0f} awards (expected {aw[1]:,.1f}); {am[0] / 1e4:,.0f}万元 awarded "
            f"(expected {am[1] / 1e4:,.0f}万元)"
        ) in res.output
    ((inside, n),) = duckdb.sql(
        f"SELECT count(*) FILTER (WHERE in_80), count(*) FROM '{tmp_path}/bt/backtest.parquet' "
        "WHERE program <> 'ALL' AND measure = 'awards'"
    ).fetchall()
    assert f"{inside} of {n} program-years' award counts fell inside the 80% band" in res.output
    m = re.search(r"│ awards\s+│ (\d+)\s+│ (\d+)%", res.output)
    assert m and int(m.group(1)) == n and int(m.group(2)) == round(100 * inside / n)


@pytest.mark.parametrize(
    "source, synthetic", [(None, False), ("bureau ledger 2024", False), ("Synthetic example rows", True)]
)
def test_history_says_when_it_is_synthetic(tmp_path, source, synthetic):
    """The source column decides the synthetic note (kept through the held-out split); no column, no note."""
    from fiscal_sim.calibrate.history import read_history
    from fiscal_sim.scenario import load_scenario

    with HISTORY.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:6]
    for r in rows:
        r.pop("source")
        if source is not None:
            r["source"] = source
    hist = read_history(
        write_csv(tmp_path / "h.csv", rows), load_scenario(REPO / "scenarios" / "baseline.yaml").catalogue
    )
    assert hist.synthetic is synthetic and hist.before(2100).synthetic is synthetic
    note = hist.synthetic_note()
    assert (note is not None) is synthetic
    if synthetic:
        assert note.startswith(f"NOTE: {tmp_path / 'h.csv'} is synthetic (source: Synthetic example rows)")
