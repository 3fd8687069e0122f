"""The headline: its numbers are the summary table's, in headline.json (zh and en), and printed after `run`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from fiscal_sim import headline
from fiscal_sim.cli import app

SCEN = Path(__file__).parent / "scenarios" / "crn_base.yaml"
REPO_SCEN = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("headline") / "run"
    res = CliRunner().invoke(
        app, ["run", str(SCEN), "--draws", "200", "--out", str(out), "--no-draws-ledger"], env={"COLUMNS": "80"}
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def q(sql: str):
    return duckdb.sql(sql).fetchall()


def test_headline_numbers_are_the_summary_tables(run_dir):
    out, _ = run_dir
    h = json.loads((out / "headline.json").read_text(encoding="utf-8"))
    s = f"'{out}/summary.parquet'"
    payers = q(
        f"SELECT payer, mean_cny, p90_cny, mcse_cny FROM {s} WHERE program = 'ALL' AND vintage = 'ALL' AND measure = 'cash' "
        "AND period = 'horizon' AND mean_cny > 0"
    )
    assert {(p["payer"], p["mean_cny"], p["p90_cny"]) for p in h["payers"]} == {r[:3] for r in payers}
    assert h["payers"][0]["payer"] == "ALL" and h["payers"][1]["payer"] == "city"
    lines = q(
        f"SELECT program, payer, max(p_exceed) FROM {s} WHERE budget_cny IS NOT NULL AND vintage = 'ALL' AND period = 'year' "
        "GROUP BY ALL"
    )
    assert {(b["program"], b["payer"], b["p_exceed"]) for b in h["budget_lines"]} == set(lines)
    for b in h["budget_lines"]:
        row = q(
            f"SELECT p_exceed_lo, p_exceed_hi, overrun_if_exceeded_cny, budget_cny FROM {s} WHERE program = "
            f"'{b['program']}' AND payer = '{b['payer']}' AND vintage = 'ALL' AND measure = 'cash' "
            f"AND fiscal_year = {b['worst_year']}"
        )
        assert row == [(b["p_exceed_lo"], b["p_exceed_hi"], b["overrun_if_exceeded_cny"], b["budget_cny"])]
    p95 = dict(
        q(
            f"SELECT program, p95_cny FROM {s} WHERE program NOT IN ('ALL', 'ALL_EQUITY') AND payer = 'ALL' "
            "AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"
        )
    )
    assert all(t["p95_cny"] == p95[t["program"]] for t in h["top_tail"])
    if h["top_tail"][0]["ranked_by"] == "p95":
        assert [(t["program"], t["p95_cny"]) for t in h["top_tail"]] == sorted(
            p95.items(), key=lambda kv: (-kv[1], kv[0])
        )[:3]
    else:  # ranked by the mean cash in the worst draws, which the run computed
        tails = [t["tail_mean_cny"] for t in h["top_tail"]]
        assert tails == sorted(tails, reverse=True) and len(tails) == 3
    assert h["pipeline"] is None
    assert len(h["text"]["zh"]) == len(h["text"]["en"]) and "全部财政" in h["text"]["zh"][2]


def test_overrun_if_exceeded_is_the_mean_excess_over_exceeding_draws():
    """Hand-computed: budget 10, draws 8, 12, 15, 10 → two exceed, by 2 and 5: overrun if exceeded 3.5."""
    import numpy as np

    from fiscal_sim.stats import Accumulator, summarise

    acc = Accumulator(2, np.array([10.0, np.inf]))
    acc.add([(0, 0, 4)], np.array([[8.0, 12.0, 15.0, 10.0], [1.0, 2.0, 3.0, 4.0]]))
    s = summarise(acc, 0.95)
    assert s["p_exceed"][0] == 0.5 and s["overrun_if_exceeded_cny"][0] == 3.5
    assert np.isnan(s["overrun_if_exceeded_cny"][1]) and np.isnan(s["p_exceed"][1])


def test_run_prints_the_headline_first_within_80_columns(run_dir):
    from rich.cells import cell_len

    out, output = run_dir
    h = json.loads((out / "headline.json").read_text(encoding="utf-8"))
    lines = output.splitlines()
    first_table = next(i for i, line in enumerate(lines) if line.startswith(("┏", "expected grant cash")))
    head = " ".join(x.strip() for x in lines[:first_table])  # long lines wrap between words
    for line in h["text"]["en"][:-1]:
        assert " ".join(line.split()) in " ".join(head.split())
    shown = [x for x in lines if not x.startswith("wrote ")]  # the folder line names a path
    assert all(cell_len(line) <= 80 for line in shown), [x for x in shown if cell_len(x) > 80]


def test_pipeline_headline_says_when_the_appropriation_runs_out(tmp_path):
    out = tmp_path / "tight"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(REPO_SCEN / "tight_budget.yaml"),
            "--pipeline",
            "--draws",
            "40",
            "--out",
            str(out),
            "-q",
            "--no-draws-ledger",
        ],
    )
    assert res.exit_code == 0, res.output
    h = headline.from_folder(out)
    assert h["pipeline"]
    p = h["pipeline"][0]
    ps = f"'{out}/pipeline_summary.parquet'"
    worst = q(
        f"SELECT max(mean) FROM {ps} WHERE measure = 'exhausted' AND program = 'ALL' AND pipeline = "
        f"'{p['pipeline']}' AND payer = '{p['payer']}'"
    )[0][0]
    assert p["p_exhausted"] == worst
    arrears = q(
        f"SELECT mean FROM {ps} WHERE measure = 'arrears_cny' AND program = 'ALL' AND pipeline = "
        f"'{p['pipeline']}' AND payer = '{p['payer']}' AND fiscal_year = {p['fiscal_year']}"
    )
    assert arrears == [(p["arrears_mean_cny"],)]
    assert any("P(runs out)" in line for line in h["text"]["en"])


def test_compare_and_sweep_print_a_headline_from_their_tables(tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "compare",
            str(SCEN),
            str(SCEN.parent / "crn_cap.yaml"),
            "--draws",
            "100",
            "--out",
            str(tmp_path / "cmp"),
            "--no-draws-ledger",
        ],
    )
    assert res.exit_code == 0, res.output
    ((b, r, c),) = q(
        f"SELECT baseline_mean_cny, reform_mean_cny, change_mean_cny FROM '{tmp_path}/cmp/compare.parquet' "
        "WHERE program = 'ALL' AND payer = 'ALL' AND measure = 'cash' AND period = 'horizon'"
    )
    assert f"all payers: {b / 1e8:,.2f} → {r / 1e8:,.2f} ({c / 1e8:+,.2f}" in res.output
    assert res.output.index("all payers:") < res.output.index("┏")
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(SCEN),
            "--set",
            "programs.jzf2017-3.major-conversion.cap=1500,3000",
            "--draws",
            "100",
            "--out",
            str(tmp_path / "sw"),
        ],
    )
    assert res.exit_code == 0, res.output
    for point, cap in ((0, 1500), (1, 3000)):
        ((m,),) = q(
            f"SELECT mean_cny FROM '{tmp_path}/sw/sweep.parquet' WHERE point = {point} AND program = 'ALL' "
            "AND payer = 'ALL' AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"
        )
        assert f"point {point}: programs_jzf2017_3_major_conversion_cap={cap}\n    mean {m / 1e8:,.2f}" in res.output


def test_tail_contributions_from_the_ledger_sum_to_the_worst_draws_mean(tmp_path):
    """With the per-draw ledger, the top programs are ranked by their mean cash in the worst 5% of draws; those
    means add up to the total's mean in the same draws (computed here independently with numpy)."""
    import numpy as np
    import pyarrow.dataset as ds

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(SCEN), "--draws", "200", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    t = (
        ds.dataset(out / "draws", format="parquet", partitioning="hive")
        .to_table(columns=["draw", "program", "spending", "cash_cny"])
        .to_pylist()
    )
    total = np.zeros(200)
    for r in t:
        if r["spending"] == "grant":
            total[r["draw"]] += r["cash_cny"]
    worst = set(sorted(range(200), key=lambda d: (-total[d], d))[:10])
    tail = headline.tail_contributions(out, 200)
    assert sum(tail.values()) == pytest.approx(total[list(worst)].mean(), rel=1e-9)
    mine = {}
    for r in t:
        if r["spending"] == "grant" and r["draw"] in worst:
            mine[r["program"]] = mine.get(r["program"], 0.0) + r["cash_cny"] / 10
    h = json.loads((out / "headline.json").read_text(encoding="utf-8"))  # the run's own (stats.TopDraws)
    best = sorted(mine, key=lambda p: (-mine[p], p))[:3]
    assert [x["program"] for x in h["top_tail"]] == best and h["top_tail"][0]["ranked_by"] == "tail_mean"
    assert h["top_tail"][0]["tail_mean_cny"] == pytest.approx(mine[best[0]], abs=0.01)


# ---------------------------------------------------------------- drivers of a budget line's breach


def _brute_drivers(values, lines, budget, members):
    """Per line and part: the sum over the draws exceeding the line of overrun · part / total, in fen (loops)."""
    import numpy as np

    out = np.zeros(members.shape, dtype=np.int64)
    for i, c in enumerate(lines):
        for d in range(values.shape[1]):
            total = values[c, d]
            if total > budget[i]:
                for j, m in enumerate(members[i]):
                    if m >= 0:
                        out[i, j] += int(np.rint(values[m, d] * (total - budget[i]) / total * 100))
    return out


def test_breach_drivers_by_hand():
    """Two programs, a line of 10: draw 0 (6 + 6 = 12) is 2 over, split 1 / 1; draw 1 (3 + 9 = 12) splits
    0.5 / 1.5; draw 2 (4 + 5 = 9) is under the line and counts for nothing."""
    import numpy as np

    from fiscal_sim.stats import BreachDrivers

    values = np.array([[6.0, 3.0, 4.0], [6.0, 9.0, 5.0], [12.0, 12.0, 9.0]])  # rows: a, b, total
    d = BreachDrivers(np.array([2]), np.array([10.0]), np.array([[0, 1]]))
    d.add(np.arange(3), values)
    assert d.overrun.tolist() == [[150, 250]]  # fen: a 1 + 0.5 yuan, b 1 + 1.5 yuan


def test_breach_drivers_match_brute_force_whatever_the_chunks():
    """Property: for random non-negative ledgers the accumulator equals the brute-force loop, and splitting the
    draws into chunks merged in any order gives bit-identical sums; rows absent from a chunk count as zero."""
    import numpy as np
    from hypothesis import given, settings, strategies as st

    from fiscal_sim.stats import BreachDrivers

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.lists(st.integers(1, 39), max_size=4))
    def check(seed, n, cuts):
        rng = np.random.default_rng(seed)
        parts = rng.gamma(0.5, 1e6, size=(3, 2, n)) * (rng.random((3, 2, n)) < 0.7)  # 3 programs × 2 years
        values = np.vstack([parts.reshape(6, n), parts.sum(axis=0)])  # rows 0–5 programs, 6–7 totals by year
        lines, budget = np.array([6, 7]), np.array([np.median(values[6]), 0.0])
        members = np.array([[0, 2, 4], [1, 3, -1]])  # the second line leaves out program 3
        want = _brute_drivers(values, lines, budget, members)
        whole = BreachDrivers(lines, budget, members)
        whole.add(np.arange(8), values)
        assert (whole.overrun == want).all()
        edges = sorted({c for c in cuts if c < n} | {0, n})
        pieces = []
        for a, b in zip(edges, edges[1:]):
            p = whole.reset()
            live = np.flatnonzero(values[:, a:b].any(axis=1))  # a chunk hands over only its non-zero rows
            p.add(live, values[live, a:b])
            pieces.append(p)
        merged = whole.reset()
        for p in reversed(pieces):
            merged.merge(p)
        assert (merged.overrun == want).all()

    check()


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory) -> Path:
    """The baseline with the 2024 plan lapsing at its end (lapse_2024_plan.yaml) with modest draws, its per-draw ledger kept, two chunks."""
    out = tmp_path_factory.mktemp("drivers") / "run"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(REPO_SCEN / "lapse_2024_plan.yaml"),
            "--draws",
            "400",
            "--chunk-size",
            "200",
            "--out",
            str(out),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    return out


def test_breach_drivers_equal_a_duckdb_query_of_the_ledger(baseline_run):
    """The city line's drivers in its worst year: each program's share of the overrun in the draws exceeding the
    line, and its mean part per exceeding draw, recomputed from draws/ with DuckDB."""
    h = json.loads((baseline_run / "headline.json").read_text(encoding="utf-8"))
    (b,) = [x for x in h["budget_lines"] if x["payer"] == "city" and x["program"] == "ALL"]
    y, line = b["worst_year"], b["budget_cny"]
    glob = f"{baseline_run}/draws/**/*.parquet"
    rows = q(f"""
        WITH d AS (SELECT draw, program, sum(cash_cny) AS cash FROM read_parquet('{glob}', hive_partitioning = true)
                   WHERE payer = 'city' AND fiscal_year = {y} AND spending = 'grant' GROUP BY ALL),
             t AS (SELECT draw, sum(cash) AS total FROM d GROUP BY draw HAVING sum(cash) > {line})
        SELECT program, sum(cash * (total - {line}) / total) AS part, count(*) FILTER (WHERE true) AS n
        FROM d JOIN t USING (draw) GROUP BY program ORDER BY part DESC, program""")
    ((exceeded,),) = q(f"""SELECT count(*) FROM (SELECT draw FROM read_parquet('{glob}', hive_partitioning = true)
                           WHERE payer = 'city' AND fiscal_year = {y} AND spending = 'grant' GROUP BY draw
                           HAVING sum(cash_cny) > {line})""")
    assert exceeded == round(b["p_exceed"] * 400) > 0
    total = sum(r[1] for r in rows)
    assert [d["program"] for d in b["drivers"]] == [r[0] for r in rows[:3]]
    for d, r in zip(b["drivers"], rows):
        assert d["share"] == pytest.approx(r[1] / total, abs=1e-6)
        assert d["overrun_mean_cny"] == pytest.approx(r[1] / exceeded, abs=1.0)  # the ledger keeps whole fen
    assert sum(d["overrun_mean_cny"] for d in b["drivers"]) <= b["overrun_if_exceeded_cny"] + 1


def test_holding_appropriation_is_the_summarys_p90_and_p95(baseline_run):
    """The appropriation holding the risk at 10% / 5% in each year is that year's P90 / P95 of the line's
    series in summary.parquet; the every-year figure is the largest of them."""
    h = json.loads((baseline_run / "headline.json").read_text(encoding="utf-8"))
    for b in h["budget_lines"]:
        rows = q(
            f"SELECT fiscal_year, p90_cny, p95_cny FROM '{baseline_run}/summary.parquet' WHERE program = "
            f"'{b['program']}' AND payer = '{b['payer']}' AND vintage = 'ALL' AND measure = 'cash' "
            "AND period = 'year' ORDER BY fiscal_year"
        )
        assert [(y["fiscal_year"], y["hold_p90_cny"], y["hold_p95_cny"]) for y in b["years"]] == rows
        assert b["hold"]["p90_cny"] == max(r[1] for r in rows) and b["hold"]["p95_cny"] == max(r[2] for r in rows)
        # a line one histogram bin (stats: 10^(1/100), 2.3%) above the P90 is exceeded in at most 10% of the draws
        for y, p90, _ in rows:
            ((n,),) = q(f"""SELECT count(*) FROM (SELECT draw FROM read_parquet('{baseline_run}/draws/**/*.parquet',
                            hive_partitioning = true) WHERE fiscal_year = {y} AND spending = 'grant'
                            {"" if b["payer"] == "ALL" else f"AND payer = '{b['payer']}'"}
                            {"" if b["program"] == "ALL" else f"AND program = '{b['program']}'"}
                            GROUP BY draw HAVING sum(cash_cny) > {p90 * 10 ** (1 / 100)})""")
            assert n <= 0.10 * 400
    text = "\n".join(h["text"]["en"])
    city = next(b for b in h["budget_lines"] if b["payer"] == "city")
    assert f"{city['hold']['p90_cny'] / 1e4:,.0f} / {city['hold']['p95_cny'] / 1e4:,.0f}万元" in text


def test_the_caveat_names_the_lapsing_plan(baseline_run):
    """The city's risk falls from 2027 to 2028 because 嘉政办发〔2024〕7号 (in force to 2026-12-31, awards paid a
    year later) lapses: the headline says so next to the numbers, in both languages."""
    h = json.loads((baseline_run / "headline.json").read_text(encoding="utf-8"))
    city = next(b for b in h["budget_lines"] if b["payer"] == "city")
    cav = [c for c in city["caveats"] if c["to_year"] == 2028]
    assert cav and cav[0]["document_number"] == "嘉政办发〔2024〕7号" and cav[0]["change"] == "lapses"
    p = dict(
        q(
            f"SELECT fiscal_year, p_exceed FROM '{baseline_run}/summary.parquet' WHERE program = 'ALL' AND payer = "
            "'city' AND vintage = 'ALL' AND measure = 'cash' AND period = 'year'"
        )
    )
    ((doc, until),) = q(
        f"SELECT DISTINCT document_number, in_force_to FROM '{baseline_run}/programs.parquet' "
        "WHERE program LIKE 'jzbf2024-7.%'"
    )
    assert (doc, until.isoformat()) == (cav[0]["document_number"], cav[0]["date"])
    assert (cav[0]["p_from"], cav[0]["p_to"]) == (p[2027], p[2028]) and p[2027] > 5 * p[2028]
    assert any("嘉政办发〔2024〕7号 in force until 2026-12-31" in x for x in h["text"]["en"])
    assert any("嘉政办发〔2024〕7号施行至2026-12-31" in x for x in h["text"]["zh"])


def test_drivers_are_bit_identical_across_chunks_and_workers(tmp_path):
    from fiscal_sim.orchestrate.run import breach_parts, simulate
    from fiscal_sim.scenario import load_scenario

    scen = load_scenario(REPO_SCEN / "baseline.yaml").with_settings(draws=200, chunk_size=200)
    a, lay, _ = simulate(scen)
    b, _, _ = simulate(scen.with_settings(chunk_size=100), workers=2)
    assert breach_parts(scen, lay, a) == breach_parts(scen, lay, b)
    assert (a.drivers.overrun == b.drivers.overrun).all() and a.drivers.overrun.any()


def test_budget_option_replaces_the_line_and_set_applies_a_value(tmp_path):
    """--budget city=2.8亿 replaces the scenario's city line (2.5亿); --set takes the sweep's grammar."""
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(REPO_SCEN / "baseline.yaml"),
            "--draws",
            "100",
            "--out",
            str(out),
            "--no-draws-ledger",
            "--budget",
            "city=2.8亿",
            "--budget",
            "ALL:jwf2017-4.talent-housing=12000",
            "--set",
            "programs.jzf2017-3.major-conversion.cap=1500",
        ],
        env={"COLUMNS": "80"},
    )
    assert res.exit_code == 0, res.output
    lines = q(
        f"SELECT DISTINCT program, payer, budget_cny FROM '{out}/summary.parquet' WHERE budget_cny IS NOT NULL "
        "ORDER BY payer"
    )
    assert lines == [("jwf2017-4.talent-housing", "ALL", 1.2e8), ("ALL", "city", 2.8e8)]
    plain = tmp_path / "plain"
    res = CliRunner().invoke(
        app, ["run", str(REPO_SCEN / "baseline.yaml"), "--draws", "100", "--out", str(plain), "--no-draws-ledger", "-q"]
    )
    assert res.exit_code == 0, res.output
    sql = (
        "SELECT mean_cny FROM '{}/summary.parquet' WHERE program = 'jzf2017-3.major-conversion' AND payer = 'ALL' "
        "AND vintage = 'ALL' AND measure = 'committed' AND period = 'horizon'"
    )
    ((capped,),), ((as_written,),) = q(sql.format(out)), q(sql.format(plain))
    assert 0 < capped < as_written  # the per-award cap of 1,500万元 (the document's: 3,000万元) bites
    for bad, words in (
        (["--budget", "nowhere=1亿"], "unknown payer 'nowhere'"),
        (["--budget", "city"], "expected PAYER[:PROGRAM]=AMOUNT"),
        (["--set", "programs.jzf2017-3.major-conversion.cap=1,2"], "one value per target"),
    ):
        res = CliRunner().invoke(
            app, ["run", str(REPO_SCEN / "baseline.yaml"), "--draws", "10", "--out", str(tmp_path / "bad"), *bad]
        )
        assert res.exit_code != 0 and words in res.output and "Traceback" not in res.output, res.output


def test_budget_lines_can_be_swept(tmp_path):
    """sweep --set budgets.city=2亿,2.5亿,30000: one point per line (values in 万元 in the points' column), the
    city line at each point is the one asked for, and a higher line is exceeded less often."""
    out = tmp_path / "sw"
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(REPO_SCEN / "baseline.yaml"),
            "--set",
            "budgets.city=2亿,2.5亿,30000",
            "--draws",
            "100",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = q(
        f"SELECT point, budgets_city, min(budget_cny), max(budget_cny), max(p_exceed) FROM '{out}/sweep.parquet' "
        "WHERE payer = 'city' AND program = 'ALL' AND vintage = 'ALL' AND budget_cny IS NOT NULL "
        "GROUP BY ALL ORDER BY point"
    )
    assert [r[:4] for r in rows] == [(0, 20000.0, 2e8, 2e8), (1, 25000.0, 2.5e8, 2.5e8), (2, 30000.0, 3e8, 3e8)]
    assert rows[0][4] > rows[1][4] > rows[2][4]
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(REPO_SCEN / "baseline.yaml"),
            "--set",
            "budgets.nowhere=1亿,2亿",
            "--draws",
            "10",
            "--out",
            str(tmp_path / "bad"),
        ],
    )
    assert res.exit_code != 0 and "unknown payer 'nowhere'" in res.output and "Traceback" not in res.output


def test_convergence_wording_follows_the_monte_carlo_error():
    """±0.2% on the means and ±1 point on P(exceed) (as at 10,000 draws): more draws would not change the answer;
    ±1.6% or ±2.1 points: they may."""

    def h(mcse: float, lo: float, hi: float) -> dict:
        payers = [{"mean_cny": 45e8, "mcse_cny": mcse}]
        budgets = [{"p_exceed_lo": lo, "p_exceed_hi": hi}]
        return {"convergence": headline._convergence(payers, budgets), "budget_lines": budgets}

    settled = h(0.045e8, 0.36, 0.38)
    assert settled["convergence"]["max_2mcse_relative"] == pytest.approx(0.002)
    assert headline.convergence_text(settled, False).endswith("more draws would not change the answer")
    assert headline.convergence_text(settled, True).endswith("增加模拟次数不会改变结论")
    assert "±0.09亿元 (0.2%)" in headline.convergence_text(settled, False)
    for loose in (h(0.36e8, 0.36, 0.38), h(0.045e8, 0.35, 0.392)):
        assert headline.convergence_text(loose, False).endswith("may change the answer")
