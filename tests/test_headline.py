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
    res = CliRunner().invoke(app, ["run", str(SCEN), "--draws", "200", "--out", str(out), "--no-draws-ledger"],
                             env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    return out, res.output


def q(sql: str):
    return duckdb.sql(sql).fetchall()


def test_headline_numbers_are_the_summary_tables(run_dir):
    out, _ = run_dir
    h = json.loads((out / "headline.json").read_text(encoding="utf-8"))
    s = f"'{out}/summary.parquet'"
    payers = q(f"SELECT payer, mean_cny, p90_cny, mcse_cny FROM {s} WHERE program = 'ALL' AND vintage = 'ALL' AND measure = 'cash' "
               "AND period = 'horizon' AND mean_cny > 0")
    assert {(p["payer"], p["mean_cny"], p["p90_cny"]) for p in h["payers"]} == {r[:3] for r in payers}
    assert h["payers"][0]["payer"] == "ALL" and h["payers"][1]["payer"] == "city"
    lines = q(f"SELECT program, payer, max(p_exceed) FROM {s} WHERE budget_cny IS NOT NULL AND vintage = 'ALL' AND period = 'year' "
              "GROUP BY ALL")
    assert {(b["program"], b["payer"], b["p_exceed"]) for b in h["budget_lines"]} == set(lines)
    for b in h["budget_lines"]:
        row = q(f"SELECT p_exceed_lo, p_exceed_hi, overrun_if_exceeded_cny, budget_cny FROM {s} WHERE program = "
                f"'{b['program']}' AND payer = '{b['payer']}' AND vintage = 'ALL' AND measure = 'cash' "
                f"AND fiscal_year = {b['worst_year']}")
        assert row == [(b["p_exceed_lo"], b["p_exceed_hi"], b["overrun_if_exceeded_cny"], b["budget_cny"])]
    p95 = dict(q(f"SELECT program, p95_cny FROM {s} WHERE program NOT IN ('ALL', 'ALL_EQUITY') AND payer = 'ALL' "
                 "AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"))
    assert all(t["p95_cny"] == p95[t["program"]] for t in h["top_tail"])
    if h["top_tail"][0]["ranked_by"] == "p95":
        assert [(t["program"], t["p95_cny"]) for t in h["top_tail"]] == sorted(p95.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
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
    head = lines[:first_table]
    for line in h["text"]["en"][:-1]:
        assert line in head
    shown = [x for x in lines if not x.startswith("wrote ")]  # the folder line names a path
    assert all(cell_len(line) <= 80 for line in shown), [x for x in shown if cell_len(x) > 80]


def test_pipeline_headline_says_when_the_appropriation_runs_out(tmp_path):
    out = tmp_path / "tight"
    res = CliRunner().invoke(app, ["run", str(REPO_SCEN / "tight_budget.yaml"), "--pipeline", "--draws", "40",
                                   "--out", str(out), "-q", "--no-draws-ledger"])
    assert res.exit_code == 0, res.output
    h = headline.from_folder(out)
    assert h["pipeline"]
    p = h["pipeline"][0]
    ps = f"'{out}/pipeline_summary.parquet'"
    worst = q(f"SELECT max(mean) FROM {ps} WHERE measure = 'exhausted' AND program = 'ALL' AND pipeline = "
              f"'{p['pipeline']}' AND payer = '{p['payer']}'")[0][0]
    assert p["p_exhausted"] == worst
    arrears = q(f"SELECT mean FROM {ps} WHERE measure = 'arrears_cny' AND program = 'ALL' AND pipeline = "
                f"'{p['pipeline']}' AND payer = '{p['payer']}' AND fiscal_year = {p['fiscal_year']}")
    assert arrears == [(p["arrears_mean_cny"],)]
    assert any("P(runs out)" in line for line in h["text"]["en"])


def test_compare_and_sweep_print_a_headline_from_their_tables(tmp_path):
    res = CliRunner().invoke(app, ["compare", str(SCEN), str(SCEN.parent / "crn_cap.yaml"), "--draws", "100",
                                   "--out", str(tmp_path / "cmp"), "--no-draws-ledger"])
    assert res.exit_code == 0, res.output
    ((b, r, c),) = q(f"SELECT baseline_mean_cny, reform_mean_cny, change_mean_cny FROM '{tmp_path}/cmp/compare.parquet' "
                     "WHERE program = 'ALL' AND payer = 'ALL' AND measure = 'cash' AND period = 'horizon'")
    assert f"all payers: {b / 1e8:,.2f} → {r / 1e8:,.2f} ({c / 1e8:+,.2f}" in res.output
    assert res.output.index("all payers:") < res.output.index("┏")
    res = CliRunner().invoke(app, ["sweep", str(SCEN), "--set", "programs.jzf2017-3.major-conversion.cap=1500,3000",
                                   "--draws", "100", "--out", str(tmp_path / "sw")])
    assert res.exit_code == 0, res.output
    for point, cap in ((0, 1500), (1, 3000)):
        ((m,),) = q(f"SELECT mean_cny FROM '{tmp_path}/sw/sweep.parquet' WHERE point = {point} AND program = 'ALL' "
                    "AND payer = 'ALL' AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'")
        assert f"point {point}: programs_jzf2017_3_major_conversion_cap={cap}\n    mean {m / 1e8:,.2f}" in res.output


def test_tail_contributions_from_the_ledger_sum_to_the_worst_draws_mean(tmp_path):
    """With the per-draw ledger, the top programs are ranked by their mean cash in the worst 5% of draws; those
    means add up to the total's mean in the same draws (computed here independently with numpy)."""
    import numpy as np
    import pyarrow.dataset as ds

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(SCEN), "--draws", "200", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    t = ds.dataset(out / "draws", format="parquet", partitioning="hive").to_table(
        columns=["draw", "program", "spending", "cash_cny"]).to_pylist()
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
