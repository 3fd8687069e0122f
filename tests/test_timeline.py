"""Policy timeline: families, validity, lapse/renew after expiry, payment lags and instalments — hand-computed.

The fixture catalogue (tests/fixtures/timeline) has deterministic counts (binomial with take-up 1, no shock):
old.grant 10 × 100万元 a year (open-ended OLD document), new.grant 6 × 50万元 and new.big 2 × 200万元 a year
(NEW document, 2026–2027), with a family old.grant → new.grant and a default lag of 1 year.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import yaml

from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import InputError
from fiscal_sim.rules.formula import EvalContext
from fiscal_sim.rules.schedule import Annual, Instalments, OneOff, ScheduleChoice, cash_by_offset, with_timing
from fiscal_sim.scenario import load_scenario, timeline_manifest

FIX = Path(__file__).parent / "fixtures" / "timeline"
WAN = 1e4


@pytest.fixture(scope="module")
def cat():
    return load_catalogue(FIX)


def scenario(tmp_path: Path, cat, **extra):
    data = yaml.safe_load((FIX / "base.yaml").read_text())
    data["scenario"].update(extra)
    path = tmp_path / "scen.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return load_scenario(path, cat)


def totals(scen) -> dict[str, dict[str, np.ndarray]]:
    """Per program: committed and cash by year (万元), all draws equal (checked)."""
    out = {}
    for pid, L in simulate_chunk(scen, 0, scen.spec.draws).items():
        c, k = L.committed.sum(axis=1) / WAN, L.cash.sum(axis=1) / WAN
        assert np.all(c == c[0]) and np.all(k == k[0]), pid  # deterministic counts
        out[pid] = {"committed": c[0], "cash": k[0]}
    return out


def test_successor_replaces_with_lag_and_instalments(tmp_path, cat):
    """2025: old.grant 1000 decided (paid 2026). 2026–27: new.grant 300 (paid t+1), new.big 400 paid 60/40 in
    t+1, t+2. The 2027 cohort of a plan ending 2027-12-31 is paid in 2028 and 2029."""
    t = totals(scenario(tmp_path, cat))
    np.testing.assert_array_equal(t["old.grant"]["committed"], [1000, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(t["old.grant"]["cash"], [0, 1000, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(t["new.grant"]["cash"], [0, 0, 300, 300, 0, 0, 0])
    np.testing.assert_array_equal(t["new.big"]["cash"], [0, 0, 240, 400, 160, 0, 0])
    cash = sum(p["cash"] for p in t.values())
    np.testing.assert_array_equal(cash, [0, 1000, 540, 700, 160, 0, 0])


def test_stack_keeps_the_predecessor(tmp_path, cat):
    scen = scenario(tmp_path, cat, timeline={"families": {"grants": "stack"}})
    t = totals(scen)
    np.testing.assert_array_equal(t["old.grant"]["committed"], [1000] * 7)
    np.testing.assert_array_equal(t["old.grant"]["cash"], [0] + [1000] * 6)
    assert next(sp for sp in scen.programs if sp.id == "old.grant").prog.spec.in_force.to is None


def test_highest_only_puts_the_family_in_one_non_cumulation_group(tmp_path, cat):
    scen = scenario(tmp_path, cat, timeline={"families": {"grants": "highest_only"}})
    groups = {sp.id: sp.prog.spec.exclusive_group for sp in scen.programs}
    assert groups["old.grant"] == groups["new.grant"] == "family:grants" and groups["new.big"] is None
    assert next(a for a in scen.assumptions if a.kind == "family").set_by == "scenario"


def test_superseded_from_a_date(tmp_path, cat):
    """Superseded from 2025-07-01: in force to 2025-06-30, i.e. 181 of 365 days of 2025, nothing after."""
    scen = scenario(
        tmp_path, cat, timeline={"validity": {"OLD〔2017〕1号": {"status": "superseded", "from": "2025-07-01"}}}
    )
    sp = next(sp for sp in scen.programs if sp.id == "old.grant")
    assert sp.prog.spec.in_force.to == dt.date(2025, 6, 30)
    np.testing.assert_allclose(sp.lam.sum(axis=0), [10 * 181 / 365, 0, 0, 0, 0, 0, 0])
    assert any("superseded from 2025-07-01" in n for n in sp.prog.timeline_notes)


def test_renew_on_the_same_terms(tmp_path, cat):
    scen = scenario(tmp_path, cat, timeline={"after_expiry": {"NEW〔2026〕1号": "renew"}})
    t = totals(scen)
    np.testing.assert_array_equal(t["new.grant"]["committed"], [0, 300, 300, 300, 300, 300, 300])
    np.testing.assert_array_equal(t["new.big"]["cash"], [0, 0, 240, 400, 400, 400, 400])


def test_renew_with_overrides_is_a_renewed_copy_from_the_day_after_expiry(tmp_path, cat):
    """Renewed 2028–2029 with 80万元 per award: the original keeps 50万元 for its 2026–2027 awards."""
    scen = scenario(
        tmp_path,
        cat,
        timeline={
            "after_expiry": {
                "NEW〔2026〕1号": {
                    "mode": "renew_with",
                    "until": "2029-12-31",
                    "overrides": {"new.grant": {"formula.amount": 80}},
                }
            }
        },
    )
    t = totals(scen)
    np.testing.assert_array_equal(t["new.grant"]["committed"], [0, 300, 300, 0, 0, 0, 0])
    np.testing.assert_array_equal(t["new.grant.renewed"]["committed"], [0, 0, 0, 480, 480, 0, 0])
    np.testing.assert_array_equal(t["new.grant.renewed"]["cash"], [0, 0, 0, 0, 480, 480, 0])
    np.testing.assert_array_equal(t["new.big.renewed"]["committed"], [0, 0, 0, 400, 400, 0, 0])


def test_renewal_does_not_revive_a_replaced_predecessor(tmp_path, cat):
    scen = scenario(tmp_path, cat, timeline={"after_expiry": {"grants": "renew"}})
    t = totals(scen)
    np.testing.assert_array_equal(t["old.grant"]["committed"], [1000, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(t["new.grant"]["committed"], [0, 300, 300, 300, 300, 300, 300])
    np.testing.assert_array_equal(t["new.big"]["committed"], [0, 400, 400, 0, 0, 0, 0])  # not in the family


def test_timing_overrides_in_a_scenario(tmp_path, cat):
    scen = scenario(tmp_path, cat, timeline={"timing": {"default": {"lag": 0}, "new.big": {"lag": 2}}})
    t = totals(scen)
    np.testing.assert_array_equal(t["old.grant"]["cash"], t["old.grant"]["committed"])
    np.testing.assert_array_equal(t["new.big"]["cash"], [0, 0, 0, 400, 400, 0, 0])  # one-off, two years late


def test_bad_timeline_settings_name_the_field(tmp_path, cat):
    with pytest.raises(InputError) as e:
        scenario(
            tmp_path,
            cat,
            timeline={
                "families": {"nope": "stack"},
                "validity": {"X〔1〕1号": {"status": "in_force"}},
                "timing": {"no.program": {"lag": 1}},
            },
        )
    text = str(e.value)
    assert "scenario.timeline.families.nope: unknown family 'nope'" in text
    assert "scenario.timeline.validity.X〔1〕1号: unknown document" in text
    assert "scenario.timeline.timing.no.program" in text and str(tmp_path / "scen.yaml") in text
    with pytest.raises(InputError, match="superseded needs 'from'"):
        scenario(tmp_path, cat, timeline={"validity": {"OLD〔2017〕1号": {"status": "superseded"}}})


def test_manifest_states_every_assumption_and_the_uptake_basis_by_year(tmp_path, cat):
    m = timeline_manifest(scenario(tmp_path, cat))
    kinds = {(a["kind"], a["subject"]) for a in m["timeline"]}
    assert {
        ("validity", "OLD〔2017〕1号"),
        ("after_expiry", "NEW〔2026〕1号"),
        ("family", "grants"),
        ("timing", "default"),
        ("timing", "new.big"),
    } <= kinds
    assert m["program_timeline"]["new.grant"]["uptake_basis"] == "target 2025–2027, assumption after"
    assert m["program_timeline"]["old.grant"]["in_force"] == ["2017-01-01", "2025-12-31"]
    assert m["program_timeline"]["new.big"]["schedule"] == "instalments 60%/40% from year +1"


def test_with_timing_sets_lags_and_splits_only_one_off_awards():
    ctx = EvalContext(n=2, inputs={"opt": np.array([0, 1])}, categories={"opt": ["buy", "rent"]}, unit_cny=1.0)
    choice = ScheduleChoice(
        kind="choice", by="opt", options={"buy": OneOff(kind="one_off"), "rent": Annual(kind="annual", years=3)}
    )
    timed = with_timing(choice, 1, [0.5, 0.5])
    assert isinstance(timed.options["buy"], Instalments) and timed.options["buy"].lag == 1
    assert isinstance(timed.options["rent"], Annual) and timed.options["rent"].lag == 1
    committed, cash = cash_by_offset(timed, np.array([100.0, 10.0]), ctx)
    np.testing.assert_array_equal(cash, [[0, 50, 50, 0], [0, 10, 10, 10]])
    np.testing.assert_array_equal(committed, [100, 30])
    assert with_timing(OneOff(kind="one_off", lag=2), None) == OneOff(kind="one_off", lag=2)


def test_catalogue_timeline_relabels_expired_targets():
    """No baseline program counts as a document target after the target's year."""
    scen = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml")
    basis = timeline_manifest(scen)["program_timeline"]
    assert basis["jwf2017-4.city-leading-team"]["uptake_basis"] == "target 2025–2027, assumption after"
    assert basis["jzf2017-3.major-conversion"]["uptake_basis"] == "assumption"
    assert basis["jzbf2024-7.research-institute"]["uptake_basis"] == "assumption"
    assert basis["jzbf2024-7.hnte-first-certification"]["uptake_basis"] == "target 2025–2026, assumption after"


def test_programs_show_prints_each_assumption_with_its_basis():
    from typer.testing import CliRunner

    from fiscal_sim.cli import app

    res = CliRunner().invoke(app, ["programs", "show", "jzf2017-3.provincial-institute-build"])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "validity 嘉政发〔2017〕3号: in_force [assumption, catalogue]" in text
    assert (
        "family research-institute: successor_replaces: jzf2017-3.provincial-institute-build → "
        "jzbf2024-7.research-institute [quote, catalogue]" in text
    )
    assert "timing default: lag 1 [assumption, catalogue]" in text
    assert "replaced by jzbf2024-7.research-institute from 2024-04-01" in text
    res = CliRunner().invoke(app, ["programs", "show", "jzbf2024-7.hnte-first-certification"])
    text = " ".join(res.output.split())
    assert "after_expiry 嘉政办发〔2024〕7号: lapse [assumption, catalogue]" in text
    assert "uptake basis: target to 2026, assumption (carried forward) after" in text
