"""The assumption ledger: coverage of the catalogue's labelled assumptions, CRN isolation of each alternative,
deltas equal to separate runs of the switched scenarios, the tables by hand, clear errors, outputs read back."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from hypothesis import given, settings, strategies as st
from typer.testing import CliRunner

from fiscal_sim.analysis.assumptions import (
    Alternative,
    AlternativeError,
    Picks,
    ledger,
    load_alternatives,
    merge,
    named_programs,
    not_applicable,
    switched,
    tables,
)
from fiscal_sim.analysis.compare import compare
from fiscal_sim.cli import app
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.headline import assumption_lines
from fiscal_sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
RENEWED = REPO / "scenarios" / "lapse_2024_plan.yaml"
DRAWS = 200


@pytest.fixture(scope="module")
def base():
    return load_scenario(BASELINE).with_settings(draws=DRAWS)


@pytest.fixture(scope="module")
def alts(base):
    return load_alternatives(base)


@pytest.fixture(scope="module")
def two(base, alts, tmp_path_factory):
    """The ledger of two alternatives over 200 draws of the baseline."""
    chosen = [a for a in alts if a.name in ("lapse-2024-7-plan", "major-conversion-2-a-year")]
    return ledger(base, chosen, tmp_path_factory.mktemp("ledger") / "out")


# ------------------------------------------------------------------------------------------- catalogue coverage


def test_every_labelled_assumption_kind_has_an_alternative(base, alts):
    """Walk the catalogue and the baseline for labelled assumptions; each kind (and each document, family and
    assumed overlap share) must have a named alternative with a basis."""
    cat = base.catalogue
    have = {(a.kind, a.subject) for a in alts}
    kinds = {a.kind for a in alts}
    need: set[tuple[str, str | None]] = set()
    need |= {("validity", doc) for doc, v in cat.timeline.validity.items() if v.basis == "assumption"}
    need |= {("after_expiry", doc) for doc in cat.timeline.after_expiry}
    need |= {("family", fid) for fid, f in cat.timeline.families.items() if f.link.basis == "assumption"}
    need |= {("overlap", g.name) for g in base.groups if cat.groups[g.name].basis == "assumption"}
    if base.estimated or base.register is not None:
        need.add(("register", None))
    if any(sp.prog.spec.uptake.basis_in(base.spec.horizon.end) == "assumption" for sp in base.programs):
        need.add(("count", None))
    if any(a.kind == "timing" and a.basis == "assumption" for a in base.assumptions):
        need.add(("timing", None))
    weights = base.geography.data.allocation_weights
    if any(w.basis == "assumption" for w in weights.values()):
        need.add(("allocation", None))
    if base.unpriced:
        need.add(("price", None))
    if any(r.basis == "assumption" for r in base.geography.data.cost_sharing.values()):
        need.add(("cost_sharing", None))
    assert len(need) >= 14
    missing = [(k, s) for k, s in need if (s is None and k not in kinds) or (s is not None and (k, s) not in have)]
    assert not missing, f"labelled assumptions without an alternative: {missing}"
    assert all(a.basis.strip() and a.title.strip() for a in alts)
    assert len(alts) >= 30


def test_every_catalogue_alternative_compiles_against_the_baseline(base, alts):
    for a in alts:
        assert not_applicable(base, a) is None, a.name
        assert switched(base, a) is not None, a.name  # each changes something in the baseline


# ------------------------------------------------------------------------------------------- CRN isolation


def _cash(scen) -> dict[str, np.ndarray]:
    out = {}
    for pid, L in simulate_chunk(scen, 0, 100).items():
        out[pid] = L.cash if L.existing is None else np.concatenate([L.cash, L.existing.cash], axis=-1)
    return out


def test_each_alternative_changes_only_the_programs_it_names(base, alts):
    """Common random numbers: a program the alternative does not name is bit-identical to the scenario's."""
    before = _cash(base)
    checked = 0
    for a in alts:
        named = named_programs(base, a)
        if named is None:
            continue
        after = _cash(switched(base, a))
        for pid, cash in before.items():
            if pid not in named:
                assert np.array_equal(cash, after[pid]), (a.name, pid)
        assert set(after) - set(before) <= named, a.name  # a priced program is the only one it adds
        checked += 1
    assert checked >= 15


def test_an_overlap_alternative_moves_its_group(base, alts):
    a = next(a for a in alts if a.name == "overlap-flexible-salary-full")
    before, after = _cash(base), _cash(switched(base, a))
    assert any(not np.array_equal(before[p], after[p]) for p in named_programs(base, a))


# ------------------------------------------------------------------------------------------- against separate runs


def test_ledger_equals_a_separate_compare_of_the_switched_scenario_file(two, base, tmp_path):
    """lapse-2024-7-plan is scenarios/lapse_2024_plan.yaml; compare it separately with the same seed and draws."""
    sep = compare(base, load_scenario(RENEWED), tmp_path / "c", write_draws=False).table.to_pylist()
    row = next(r for r in two.table.to_pylist() if r["alternative"] == "lapse-2024-7-plan")
    for payer, who in (("ALL", "all"), ("city", "city")):
        c = next(
            r for r in sep if (r["program"], r["payer"], r["measure"], r["period"]) == ("ALL", payer, "cash", "horizon")
        )
        assert row[f"change_horizon_cash_{who}_cny"] == pytest.approx(c["change_mean_cny"], rel=1e-9)
        assert row[f"change_horizon_cash_{who}_se_cny"] == pytest.approx(c["change_se_cny"], rel=1e-6)
        assert row[f"baseline_horizon_cash_{who}_cny"] == pytest.approx(c["baseline_mean_cny"], rel=1e-9)
        assert row[f"alternative_horizon_cash_{who}_cny"] == pytest.approx(c["reform_mean_cny"], rel=1e-9)
    for b in (b for b in two.budgets.to_pylist() if b["alternative"] == "lapse-2024-7-plan"):
        years = [
            r
            for r in sep
            if (r["program"], r["payer"], r["measure"], r["period"]) == (b["program"], b["payer"], b["measure"], "year")
        ]
        worst = max(years, key=lambda r: (r["reform_p_exceed"], -r["fiscal_year"]))
        assert (b["alternative_worst_year"], b["alternative_p_exceed"]) == (
            worst["fiscal_year"],
            worst["reform_p_exceed"],
        )
        first = max(years, key=lambda r: (r["baseline_p_exceed"], -r["fiscal_year"]))
        assert (b["baseline_worst_year"], b["baseline_p_exceed"]) == (first["fiscal_year"], first["baseline_p_exceed"])


def test_workers_and_chunks_give_identical_ledgers(two, base, alts, tmp_path):
    chosen = [a for a in alts if a.name in ("lapse-2024-7-plan", "major-conversion-2-a-year")]
    again = ledger(base.with_settings(chunk_size=100), chosen, tmp_path / "w", workers=2)
    assert again.table.drop(["declared_in"]).equals(two.table.drop(["declared_in"]))
    assert again.budgets.equals(two.budgets)


def test_outputs_read_back_with_duckdb(two):
    folder = Path(two.out)
    rows = duckdb.sql(
        f"SELECT alternative, change_horizon_cash_all_cny, rank FROM '{folder}/assumptions.parquet' ORDER BY rank"
    ).fetchall()
    assert rows == [(r["alternative"], r["change_horizon_cash_all_cny"], r["rank"]) for r in two.table.to_pylist()]
    assert rows[0][0] == "lapse-2024-7-plan" and rows[0][1] < 0 and rows[1][1] < 0  # a lapse and fewer conversions cut
    n = duckdb.sql(f"SELECT count(*) FROM '{folder}/assumptions_budgets.parquet'").fetchall()[0][0]
    assert n == 2 * len(base_lines(two))


def base_lines(result) -> set:
    return {(b["program"], b["payer"], b["measure"]) for b in result.budgets.to_pylist()}


# ------------------------------------------------------------------------------------------- by hand


def _picks() -> Picks:
    keys = [
        ("ALL", "ALL", "cash", "horizon", None),
        ("ALL", "city", "cash", "horizon", None),
        ("ALL", "city", "cash", "year", 2025),
        ("ALL", "city", "cash", "year", 2026),
    ]
    return Picks(keys, np.array([math.inf, math.inf, 10.0, 10.0]), [("ALL", "city", "cash")], [np.array([2, 3])])


def _alt(name: str) -> Alternative:
    return Alternative(name=name, kind="count", subject="x", title=name, basis="b", set={"shock.sigma": 0})


def test_tables_by_hand(base):
    b = np.array([[1.0, 2, 3, 4], [1, 1, 1, 1], [11, 0, 0, 0], [0, 0, 12, 13]])  # 2026 exceeds in 2 of 4 draws
    a = np.array([[2.0, 2, 5, 4], [1, 1, 1, 2], [11, 11, 11, 0], [0, 0, 0, 0]])  # 2025 exceeds in 3 of 4
    city = b + np.array([[0.0], [5], [0], [0]])  # moves only the city's cash: ranked by its larger change
    led, lines = tables(
        base, [_alt("a"), _alt("same"), _alt("copy"), _alt("city")], _picks(), b, [a, None, b.copy(), city]
    )
    r = {x["alternative"]: x for x in led.to_pylist()}
    assert r["city"]["rank"] == 1 and r["a"]["rank"] == 2
    assert r["same"]["note"] == "changes nothing in this scenario"
    assert r["copy"]["changes_scenario"] and r["copy"]["note"].startswith("switched, but no reported series moves")
    # per-draw change of all payers: 1, 0, 2, 0 → mean 0.75, sd² = (0.0625+0.5625+1.5625+0.5625)/3 = 11/12
    assert r["a"]["change_horizon_cash_all_cny"] == 0.75
    assert r["a"]["change_horizon_cash_all_se_cny"] == pytest.approx(math.sqrt(11 / 12) / 2)
    assert r["a"]["change_horizon_cash_city_cny"] == 0.25
    assert r["same"]["change_horizon_cash_all_cny"] == 0 and not r["same"]["changes_scenario"]
    line = next(x for x in lines.to_pylist() if x["alternative"] == "a")
    assert (line["baseline_worst_year"], line["baseline_p_exceed"]) == (2026, 0.5)
    assert (line["alternative_worst_year"], line["alternative_p_exceed"]) == (2025, 0.75)
    # per draw: alt exceeds in 2025 (1,1,1,0) − base exceeds in 2026 (0,0,1,1) = 1,1,0,−1 → mean 0.25
    assert line["change_p_exceed"] == 0.25
    assert line["change_p_exceed_se"] == pytest.approx(math.sqrt((0.5625 * 2 + 0.0625 + 1.5625) / 3) / 2)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=2, max_size=6), st.integers(0, 2**32 - 1))
def test_ranking_is_by_the_size_of_the_change(base, shifts, seed):
    rng = np.random.default_rng(seed)
    b = rng.integers(0, 100, size=(4, 5)).astype(float)
    vals = [b + np.array([[s], [0], [0], [0]]) for s in shifts]
    led, _ = tables(base, [_alt(f"a{i}") for i in range(len(shifts))], _picks(), b, vals)
    rows = sorted(led.to_pylist(), key=lambda r: r["rank"])
    sizes = [max(abs(r["change_horizon_cash_all_cny"]), abs(r["change_horizon_cash_city_cny"])) for r in rows]
    assert sizes == sorted(sizes, reverse=True)
    assert sorted(r["change_horizon_cash_all_cny"] for r in rows) == sorted(float(s) for s in shifts)


def test_merge_replaces_leaves_and_keeps_siblings():
    data = {
        "commitments": {"register": "r.csv", "estimate_before": {"from": 2017, "programs": "uncovered"}},
        "overlap": {"a": 0.25},
    }
    out = merge(data, {"commitments": {"register": None, "estimate_before": {"from": 2020}}, "overlap": {"b": 1}})
    assert out == {
        "commitments": {"register": None, "estimate_before": {"from": 2020, "programs": "uncovered"}},
        "overlap": {"a": 0.25, "b": 1},
    }
    assert data["commitments"]["register"] == "r.csv"  # the input is not changed


def test_headline_lines_name_the_top_alternatives(two):
    lines = assumption_lines(two.table.to_pylist(), two.budgets.to_pylist())
    assert lines[0].startswith("The answer moves most with")
    assert "1. lapse-2024-7-plan" in lines[1] and "2. major-conversion-2-a-year" in lines[3]
    top = two.table.to_pylist()[0]
    assert f"{top['change_horizon_cash_all_cny'] / 1e8:+,.2f}" in lines[2]
    assert assumption_lines(two.table.to_pylist(), two.budgets.to_pylist(), "zh")[0].startswith("答案变动最大")


# ------------------------------------------------------------------------------------------- the scenario's own, errors


def _scenario_with(tmp_path: Path, alternatives: list) -> Path:
    data = yaml.safe_load(BASELINE.read_text(encoding="utf-8"))
    data["scenario"]["commitments"]["register"] = str(REPO / "scenarios" / "commitments" / "illustrative_register.csv")
    data["scenario"]["alternatives"] = alternatives
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_a_scenario_adds_its_own_alternative(tmp_path):
    path = _scenario_with(
        tmp_path,
        [
            {
                "name": "bureau-cap",
                "kind": "count",
                "subject": "jzf2017-3.major-conversion",
                "title": "cap at 1000万元",
                "basis": "the bureau's own reading",
                "set": {"programs.jzf2017-3.major-conversion.cap": 1000},
            }
        ],
    )
    res = CliRunner().invoke(
        app, ["assumptions", str(path), "--draws", "100", "--only", "bureau-cap", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    row = duckdb.sql(
        f"SELECT declared_in, change_horizon_cash_all_cny FROM '{tmp_path}/o/assumptions.parquet'"
    ).fetchall()[0]
    assert row[0] == str(path) and row[1] < 0
    assert "1. bureau-cap" in res.output


@pytest.mark.parametrize(
    "alt, says",
    [
        (
            {
                "name": "bad",
                "kind": "count",
                "subject": "x",
                "title": "t",
                "basis": "b",
                "set": {"uptake.no-such-program.mean": 3},
            },
            "unknown program",
        ),
        (
            {
                "name": "bad",
                "kind": "overlap",
                "subject": "g",
                "title": "t",
                "basis": "b",
                "patch": {"overlap": {"elite-venture": 1.5}},
            },
            "overlap",
        ),
        (
            {"name": "bad", "kind": "guess", "subject": "x", "title": "t", "basis": "b", "set": {"shock.sigma": 0}},
            "kind",
        ),
        ({"name": "bad", "kind": "count", "subject": "x", "title": "t", "basis": "b"}, "patch"),
    ],
)
def test_a_bad_alternative_is_one_line_naming_file_and_alternative(tmp_path, alt, says):
    path = _scenario_with(tmp_path, [alt])
    res = CliRunner().invoke(app, ["assumptions", str(path), "--draws", "100", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0
    text = res.output.strip()
    assert "Traceback" not in text and len(text.splitlines()) == 1, text
    assert str(path) in text and "alternative bad" in text and says in text
    assert not (tmp_path / "o").exists()  # nothing written


def test_the_report_shows_the_ledger_of_the_run_folder(tmp_path):
    run, runner = tmp_path / "run", CliRunner()
    res = runner.invoke(app, ["run", str(BASELINE), "--draws", "100", "--out", str(run), "-q", "--no-draws-ledger"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        app,
        [
            "assumptions",
            str(BASELINE),
            "--draws",
            "100",
            "--out",
            str(run / "assumptions"),
            "-q",
            "--only",
            "major-conversion-2-a-year",
            "--only",
            "shock-none",
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["report", str(run)])
    assert res.exit_code == 0, res.output
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    row = duckdb.sql(
        f"SELECT change_horizon_cash_all_cny FROM '{run}/assumptions/assumptions.parquet' "
        "WHERE alternative = 'major-conversion-2-a-year'"
    ).fetchall()[0][0]
    assert "Assumption ledger" in html and "The answer moves most with" in html
    assert f"{row / 1e8:+,.2f}" in html and row < 0


def test_validate_checks_an_alternatives_file_against_the_baseline(tmp_path):
    from fiscal_sim.analysis.assumptions import check_file

    assert check_file(REPO / "scenarios" / "catalogue" / "alternatives.yaml", REPO / "scenarios") >= 30
    bad = tmp_path / "alternatives.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "alternatives": [
                    {
                        "name": "late",
                        "kind": "validity",
                        "subject": "嘉政发〔2017〕3号",
                        "title": "t",
                        "basis": "b",
                        "patch": {"timeline": {"validity": {"嘉政发〔2099〕1号": {"status": "in_force"}}}},
                    }
                ]
            },
            allow_unicode=True,
        ),
        encoding="utf-8",
    )
    with pytest.raises(AlternativeError, match=rf"{bad}: alternative late: .*嘉政发〔2099〕1号"):
        check_file(bad, REPO / "scenarios")


def test_only_an_unknown_name_is_one_line_listing_the_known(tmp_path):
    res = CliRunner().invoke(
        app, ["assumptions", str(BASELINE), "--only", "renew-2024-7", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code != 0 and len(res.output.strip().splitlines()) == 1
    assert "--only renew-2024-7: no such alternative" in res.output and "lapse-2024-7-plan" in res.output
    assert not (tmp_path / "o").exists()
