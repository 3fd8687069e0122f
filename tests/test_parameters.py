"""Parameters by name: formulas refer to named amounts, rates and caps; overrides, reforms and sweeps address them
by name; a place in the formula tree is refused with the name to use."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.catalogue.parameters import Parameter, name_at, override, resolve
from fiscal_sim.errors import InputError
from fiscal_sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
CAPPED = "jzf2017-3.major-conversion"


def test_references_are_replaced_by_values_and_their_places_recorded():
    raw = {
        "parameters": {
            "cap": {"value": 500, "unit": "万元", "clause": "最高500万元"},
            "by_tier": {"value": {"A": 100, "B": 60}, "unit": "万元", "clause": "分别给予100、60万元"},
        },
        "formula": {"kind": "cap", "max": "$cap", "of": {"kind": "tiered", "by": "tier", "amounts": "$by_tier"}},
        "caps": [{"per": "entity_year", "max": "$cap"}],
    }
    out = resolve(raw)
    assert out["formula"]["max"] == 500 and out["formula"]["of"]["amounts"] == {"A": 100, "B": 60}
    assert out["caps"][0]["max"] == 500
    assert out["parameters"]["cap"]["at"] == ["formula.max", "caps.0.max"]
    assert raw["formula"]["max"] == "$cap"  # the file's data is not changed
    params = {n: Parameter(**p) for n, p in out["parameters"].items()}
    assert name_at(params, "formula.max") == ("cap", None)
    assert name_at(params, "formula.of.amounts.B") == ("by_tier", "B")
    assert name_at(params, "formula.of.by") is None
    assert override(out, "cap", None, 300) is None
    assert out["formula"]["max"] == 300 and out["caps"][0]["max"] == 300 and out["parameters"]["cap"]["value"] == 300
    assert override(out, "by_tier", "B", 70) is None and out["formula"]["of"]["amounts"]["B"] == 70
    assert "did you mean cap" in override(out, "cpa", None, 1)
    assert "no entry 'C'" in override(out, "by_tier", "C", 1)
    assert "a table by category" in override(out, "by_tier", None, 1)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"formula": {"kind": "fixed", "amount": "$amout"}}, "$amout (did you mean amount?): no such parameter"),
        ({"formula": {"kind": "fixed", "amount": 20}}, None),  # no reference at all: nothing to resolve
        (
            {
                "parameters": {
                    "amount": {"value": 20, "unit": "万元", "clause": "每家20万元"},
                    "spare": {"value": 1, "unit": "万元", "clause": "unused one"},
                }
            },
            "spare are named but no formula",
        ),
    ],
)
def test_a_bad_reference_is_one_clear_error(change, message):
    raw = {
        "parameters": {"amount": {"value": 20, "unit": "万元", "clause": "每家20万元"}},
        "formula": {"kind": "fixed", "amount": "$amount"},
    } | change
    if message is None:
        assert resolve(raw)["formula"]["amount"] == 20
    else:
        with pytest.raises(ValueError, match=re.escape(message)):
            resolve(raw)


def _numbers(obj, path=()):
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [".".join(path)]
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in _numbers(v, path + (str(k),))]
    if isinstance(obj, list):
        return [p for i, v in enumerate(obj) for p in _numbers(v, path + (str(i),))]
    return []


def test_every_number_of_every_priced_formula_is_a_named_parameter():
    """Catalogue-wide: no amount, rate, cap or threshold of a priced program sits in its formula or aggregate caps
    unnamed (each has its unit and clause), so every reform can address it by name."""
    cat = load_catalogue()
    priced = [p for p in cat.programs.values() if p.priced]
    assert len(priced) >= 60
    for prog in priced:
        dump = prog.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        leaves = _numbers(dump.get("formula"), ("formula",)) + _numbers(dump.get("caps"), ("caps",))
        leaves = [p for p in leaves if not p.endswith(".per")]
        for leaf in leaves:
            assert name_at(prog.spec.parameters, leaf) is not None, f"{prog.id}: {leaf} has no name"
        for name, p in prog.spec.parameters.items():
            assert p.at and p.clause and p.unit, f"{prog.id}: parameter {name}"


def test_an_override_by_name_is_the_documents_value_changed(tmp_path):
    """A scenario's ``parameters.cap: 1500`` compiles to exactly the program whose file says 1500."""
    by_name = load_scenario(REPO / "scenarios" / "cap1500.yaml")
    root = tmp_path / "scenarios"
    shutil.copytree(REPO / "scenarios", root)
    f = root / "programs" / "jiazhengfa_2017_3.yaml"
    text = f.read_text(encoding="utf-8")
    i = text.index(f"id: {CAPPED}")
    j = text.index("cap: {value: 3000", i)
    f.write_text(text[:j] + "cap: {value: 1500" + text[j + len("cap: {value: 3000") :], encoding="utf-8")
    edited = load_catalogue(root).programs[CAPPED]
    mine = next(sp.prog for sp in by_name.programs if sp.id == CAPPED)
    assert mine.spec.formula.max == 1500  # type: ignore[union-attr]
    assert mine.spec.formula == edited.spec.formula and mine.spec.parameters == edited.spec.parameters


def test_a_place_in_the_tree_is_refused_with_the_name(tmp_path):
    f = tmp_path / "old.yaml"
    f.write_text(
        f"scenario:\n  extends: {REPO / 'scenarios' / 'baseline.yaml'}\n  name: old\n"
        f"  overrides:\n    {CAPPED}: {{formula.max: 1500}}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as e:
        load_scenario(f)
    assert f"address parameters by name: programs.{CAPPED}.parameters.cap (not formula.max)" in "\n".join(
        e.value.lines()
    )


def test_calc_explain_and_programs_show_print_the_names():
    from typer.testing import CliRunner

    from fiscal_sim.cli import app

    r = CliRunner().invoke(
        app,
        [
            "calc",
            "jzbf2024-7.tech-intermediary-reward",
            "-i",
            "contract=500",
            "-j",
            "haining",
            "--date",
            "2025-05-01",
            "--explain",
        ],
    )
    assert r.exit_code == 0 and "parameter cap = 10 万元  「单个项目最高分别不超过10万元」" in r.output
    r = CliRunner().invoke(app, ["programs", "show", "jwf2017-4.talent-housing"])
    assert (
        r.exit_code == 0
        and "purchase_amount_by_tier = national 100, provincial 80, municipal 60, senior 35 万元" in r.output
    )


RD = "jzbf2024-7.rd-input-subsidy"


def dated(tmp_path: Path, changes: dict, **extra) -> Path:
    import yaml

    f = tmp_path / "dated.yaml"
    sc = {"extends": str(REPO / "scenarios" / "baseline.yaml"), "name": "dated", "dated_overrides": changes} | extra
    f.write_text(yaml.safe_dump({"scenario": sc}, allow_unicode=True), encoding="utf-8")
    return f


def test_a_change_from_a_date_splits_the_program_at_that_day(tmp_path):
    """From 2027-07-01 the R&D-input cap is 800万元: the program keeps 500 to 2027-06-30 and a part
    ``<id>.from-2027-07-01`` pays 800 from then on; the expected claims of every year are shared by the days each
    part is in force (2027: 181 and 184 days of 365), so the two parts together expect what the program did."""
    import datetime as dt

    import numpy as np

    base = load_scenario(REPO / "scenarios" / "baseline.yaml")
    scen = load_scenario(dated(tmp_path, {"2027-07-01": {RD: {"parameters.cap": 800}}}))
    (old,) = [sp for sp in base.programs if sp.id == RD]
    first, later = (next(sp for sp in scen.programs if sp.id == pid) for pid in (RD, f"{RD}.from-2027-07-01"))
    assert first.prog.spec.parameters["cap"].value == 500 and later.prog.spec.parameters["cap"].value == 800
    assert later.prog.spec.formula.max == 800  # type: ignore[union-attr]
    assert first.prog.spec.in_force.to == dt.date(2027, 6, 30) and later.prog.spec.in_force.from_ == dt.date(2027, 7, 1)
    assert later.prog.spec.in_force.to == old.prog.spec.in_force.to  # the baseline renews the 2024 plan: open
    np.testing.assert_allclose(first.lam + later.lam, old.lam, rtol=1e-12)
    y2027 = base.spec.horizon.years.index(2027)
    assert first.lam[:, y2027].sum() == pytest.approx(old.lam[:, y2027].sum() * 181 / 365)
    assert later.lam[:, :y2027].sum() == 0 and first.lam[:, y2027 + 1 :].sum() == 0
    other = [sp.id for sp in scen.programs if sp.id not in (RD, later.id)]
    assert other == [sp.id for sp in base.programs if sp.id != RD]


def test_dated_changes_compose_and_bad_ones_are_named(tmp_path):
    top = "jwf2017-4.top-talent"
    changes = {
        "2027-01-01": {top: {"parameters.term1_amount": 250}},
        "2029-01-01": {top: {"parameters.term2_amount": 900}},
    }
    scen = load_scenario(dated(tmp_path, changes))
    parts = {sp.id: sp.prog.spec.parameters for sp in scen.programs if sp.id.startswith(top)}
    assert [(p["term1_amount"].value, p["term2_amount"].value) for p in parts.values()] == [
        (200, 800),  # to 2026-12-31, as the document says
        (250, 800),  # from 2027
        (250, 900),  # from 2029: both changes
    ]
    for changes, extra, words in (
        ({"2020-01-01": {RD: {"parameters.cap": 800}}}, {}, "is not inside program"),
        ({"2027-01-01": {RD: {"parameters.nope": 1}}}, {}, "nope"),
        (
            {"2027-01-01": {RD: {"parameters.cap": 800}}},
            {"budgets": [{"payer": "ALL", "program": RD, "amount": 1000}]},
            "put the line on ALL",
        ),
    ):
        with pytest.raises(InputError) as e:
            load_scenario(dated(tmp_path, changes, **extra))
        text = "\n".join(e.value.lines())
        assert words in text and "dated_overrides" in text, text


def test_set_and_sweep_say_from_a_date(tmp_path):
    """``--set programs.ID.parameters.NAME=VALUE@DATE`` is the same dated change as the scenario block; a sweep
    over dated values runs each; the same value from a date changes nothing but the program's split."""
    from fiscal_sim import api

    by_file = load_scenario(dated(tmp_path, {"2027-01-01": {RD: {"parameters.cap": 800}}}))
    by_set = api.load(REPO / "scenarios" / "baseline.yaml", sets=[f"programs.{RD}.parameters.cap=800@2027-01-01"])
    assert [(sp.id, sp.prog.spec) for sp in by_set.programs] == [(sp.id, sp.prog.spec) for sp in by_file.programs]
    (a,) = api.assignments(by_set, [f"programs.{RD}.parameters.cap=900@2028-01-01"])
    assert (a.value, str(a.since), a.path) == (900, "2028-01-01", "parameters.cap")
    with pytest.raises(Exception, match="VALUE@YYYY-MM-DD"):
        api.load(REPO / "scenarios" / "baseline.yaml", sets=[f"programs.{RD}.parameters.cap=800@soon"])
    t = api.sweep(
        REPO / "scenarios" / "baseline.yaml", [f"programs.{RD}.parameters.cap=500@2027-01-01,800@2027-01-01"], draws=200
    )
    base = api.simulate(api.load(REPO / "scenarios" / "baseline.yaml").with_settings(draws=200)).summary

    def horizon(table, **where):
        rows = [
            r
            for r in table.to_pylist()
            if (r["program"], r["payer"], r["vintage"], r["measure"], r["period"])
            == ("ALL", "ALL", "ALL", "cash", "horizon")
            and all(r[k] == v for k, v in where.items())
        ]
        return rows[0]

    same, more = horizon(t, point=0), horizon(t, point=1)
    ref = horizon(base)
    assert abs(same["mean_cny"] - ref["mean_cny"]) < 4 * (
        same["mcse_cny"] + ref["mcse_cny"]
    )  # 500 from 2027: as before
    assert more["mean_cny"] > same["mean_cny"]  # a higher cap from 2027
