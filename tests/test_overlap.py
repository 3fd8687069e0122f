"""Non-cumulation inside the simulation: linked applicants of a group receive only the highest award."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from fiscal_sim.calc import calculate_many
from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import InputError
from fiscal_sim.scenario import load_scenario

FIX = Path(__file__).parent / "fixtures" / "overlap"
WAN = 1e4


@pytest.fixture(scope="module")
def scen():
    return load_scenario(FIX / "overlap.yaml")


@pytest.fixture(scope="module")
def ledgers(scen):
    return simulate_chunk(scen, 0, scen.spec.draws)


def within(values: np.ndarray, expected: float) -> bool:
    """The mean of per-draw ``values`` is within 4 standard errors of ``expected``."""
    return abs(values.mean() - expected) < 4 * values.std(ddof=1) / np.sqrt(values.size) + 1e-9


def test_scenario_share_overrides_the_catalogue(scen):
    assert [(g.name, g.members, g.overlap) for g in scen.groups] == [("pair", ["o.grant", "o.rent"], 0.6)]


def test_overlap_matches_the_closed_form(ledgers, scen):
    """N_g ~ Poisson(6) grants of 30万元, N_r ~ Poisson(4) rents of 8万元 × 5 years (40万元 > 30万元).

    Linked applicants M ~ Binomial(min(N_g, N_r), 0.6) take the rent only, so per year
    E[grant committed] = 30·(6 − 0.6·E[min(N_g, N_r)]) and E[rent committed] = 40·4 (untouched).
    """
    k = np.arange(1, 200)
    e_min = float(np.sum(stats.poisson.sf(k - 1, 6) * stats.poisson.sf(k - 1, 4)))  # Σ P(N_g ≥ k) P(N_r ≥ k)
    grant = ledgers["o.grant"].committed.sum(axis=1) / WAN  # draws × years
    rent = ledgers["o.rent"].committed.sum(axis=1) / WAN
    for t in range(len(scen.years)):
        assert within(grant[:, t], 30 * (6 - 0.6 * e_min))
        assert within(rent[:, t], 40 * 4)
    assert within(grant.sum(axis=1) + rent.sum(axis=1), 3 * (30 * 6 + 40 * 4 - 30 * 0.6 * e_min))
    # the reduction is real: 3·30·0.6·E[min] ≈ 180万元 over the horizon, far beyond sampling noise
    assert grant.sum(axis=1).mean() < 3 * 30 * 6 - 100


def test_every_applicant_linked_pays_what_calc_pays_one_applicant(tmp_path):
    """With 5 applicants a year under each program and overlap 1, every grant applicant is also a rent
    applicant: the simulation pays 5 × (what calc pays one applicant claiming both) a year, exactly."""
    cat = load_catalogue(FIX)
    paid = sum(r.total_cny for r in calculate_many(cat, ["o.grant", "o.rent"], {}, jurisdiction="nanhu") if r.winner)
    assert paid == 40 * WAN
    fixed = "{uptake.count.dist: binomial, uptake.count.pool: 5, uptake.count.take_up: 1.0}"  # Binomial(5, 1)
    f = tmp_path / "all_linked.yaml"
    f.write_text(f"""scenario:
  name: all_linked
  horizon: {{start: 2025, end: 2027}}
  draws: 200
  overrides: {{o.grant: {fixed}, o.rent: {fixed}}}
  overlap: {{pair: 1.0}}
""")
    s = load_scenario(f, cat)
    L = simulate_chunk(s, 0, s.spec.draws)
    total = (L["o.grant"].committed + L["o.rent"].committed).sum(axis=1)
    np.testing.assert_array_equal(total, 5 * paid)
    assert L["o.grant"].committed.sum() == 0


def test_programs_outside_groups_are_unchanged(ledgers, scen, tmp_path):
    f = tmp_path / "no_overlap.yaml"
    f.write_text((FIX / "overlap.yaml").read_text().replace("{pair: 0.6}", "{pair: 0.0}"))
    s0 = load_scenario(f, scen.catalogue)
    assert s0.groups == []
    off = simulate_chunk(s0, 0, s0.spec.draws)
    np.testing.assert_array_equal(off["o.other"].committed, ledgers["o.other"].committed)
    # rents always win, so they are untouched; grants lose only where linked
    assert (ledgers["o.grant"].committed <= off["o.grant"].applicants * 30 * WAN).all()


def test_same_seed_same_result_whatever_the_chunks(scen, ledgers):
    s = scen.with_settings(chunk_size=300)
    parts = [simulate_chunk(s, a, min(a + 300, s.spec.draws)) for a in range(0, s.spec.draws, 300)]
    for pid in ("o.grant", "o.rent"):
        np.testing.assert_array_equal(np.concatenate([p[pid].committed for p in parts]), ledgers[pid].committed)


def test_unknown_group_in_a_scenario_is_an_error(tmp_path, scen):
    f = tmp_path / "bad.yaml"
    f.write_text((FIX / "overlap.yaml").read_text().replace("{pair: 0.6}", "{pari: 0.6}"))
    with pytest.raises(InputError) as e:
        load_scenario(f, scen.catalogue)
    assert "scenario.overlap.pari" in str(e.value) and "unknown non-cumulation group 'pari'" in str(e.value)


def test_a_group_without_an_entry_is_an_error(tmp_path):
    root = tmp_path / "cat"
    (root / "catalogue").mkdir(parents=True)
    (root / "programs").mkdir()
    (root / "catalogue" / "jurisdictions.yaml").write_text((FIX / "catalogue" / "jurisdictions.yaml").read_text())
    (root / "programs" / "p.yaml").write_text((FIX / "programs" / "overlap.yaml").read_text())
    with pytest.raises(InputError) as e:
        load_catalogue(root)
    assert "o.grant, o.rent" in str(e.value) and "group 'pair' has no entry" in str(e.value)


def test_the_overlap_share_can_be_swept(scen):
    from fiscal_sim.analysis.sweep import SweepError, plan, point_scenario

    p = plan(scen, ["overlap.pair=0,0.9"], [])
    assert point_scenario(scen, p, 0).groups == []
    assert [(g.name, g.overlap) for g in point_scenario(scen, p, 1).groups] == [("pair", 0.9)]
    with pytest.raises(SweepError, match="unknown non-cumulation group 'pari'"):
        plan(scen, ["overlap.pari=0.5"], [])


def test_per_cell_only_the_lower_award_is_withheld(ledgers):
    """In every (draw, place, year): rents (the higher commitment) are all paid; between N_g − min(N_g, N_r) and
    N_g grants are paid — at most one grant withheld per linked rent applicant."""
    g, r = ledgers["o.grant"], ledgers["o.rent"]
    np.testing.assert_array_equal(r.committed, r.applicants * 40 * WAN)
    paid_grants = g.committed / (30 * WAN)
    np.testing.assert_allclose(paid_grants, np.rint(paid_grants))
    assert (paid_grants <= g.applicants).all()
    assert (paid_grants >= g.applicants - np.minimum(g.applicants, r.applicants)).all()
    assert (paid_grants < g.applicants).any()


def test_run_records_groups_and_weights_read_back_with_duckdb(tmp_path):
    import json
    import subprocess
    import sys

    import duckdb

    exe = str(Path(sys.executable).with_name("fiscal-sim"))
    out = tmp_path / "run"
    r = subprocess.run(
        [exe, "run", str(FIX / "overlap.yaml"), "--draws", "200", "--no-draws-ledger", "--out", str(out), "-q"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    rows = duckdb.sql(
        f"select program, exclusive_group, overlap_share, allocation from '{out}/programs.parquet' where not is_total "
        "order by program"
    ).fetchall()
    assert rows == [
        ("o.grant", "pair", 0.6, "equal"),
        ("o.other", None, None, "equal"),
        ("o.rent", "pair", 0.6, "equal"),
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["non_cumulation"] == {"pair": {"members": ["o.grant", "o.rent"], "overlap": 0.6}}
    show = subprocess.run(
        [exe, "programs", "show", "o.grant", "-C", str(FIX)], capture_output=True, text=True, timeout=60
    )
    assert "non-cumulation group: pair (从优、从高、不重复); overlap share 0.5 (assumption: test share)" in show.stdout
    assert "allocation to jurisdictions: equal (assumption:" in show.stdout


def test_a_highest_only_family_pays_only_the_higher_in_the_simulation(tmp_path):
    """Timeline fixture: old.grant 10 × 100万元 a year, new.grant 6 × 50万元 (2026–2027), deterministic counts.
    As a highest_only family (group family:grants, overlap 1) the 6 new-grant applicants of 2026–27 are also
    old-grant applicants and take the higher 100万元: new.grant pays nothing, old.grant 1000 a year."""
    from tests.test_timeline import FIX as TL, scenario, totals

    cat = load_catalogue(TL)
    scen = scenario(tmp_path, cat, timeline={"families": {"grants": "highest_only"}})
    assert [(g.name, g.members, g.overlap) for g in scen.groups] == [("family:grants", ["old.grant", "new.grant"], 1.0)]
    t = totals(scen)
    np.testing.assert_array_equal(t["old.grant"]["committed"], [1000] * 7)
    np.testing.assert_array_equal(t["new.grant"]["committed"], [0] * 7)
    half = scenario(tmp_path, cat, timeline={"families": {"grants": "highest_only"}}, overlap={"family:grants": 0.5})
    assert [g.overlap for g in half.groups] == [0.5]


def _two_groups(tmp_path) -> Path:
    """The overlap fixture with a third program o.lab (50万元 once) and a second group pair2 = {o.rent, o.lab}:
    o.rent is in both groups."""
    import shutil

    root = tmp_path / "two_groups"
    shutil.copytree(FIX, root)
    progs = root / "programs" / "overlap.yaml"
    text = progs.read_text(encoding="utf-8")
    text = text.replace(
        "    schedule: {kind: annual, years: 5}\n    exclusive_group: pair\n",
        "    schedule: {kind: annual, years: 5}\n    exclusive_group: [pair, pair2]\n",
    )
    text += """  - id: o.lab
    title_zh: 研发机构
    title_en: 50万元 once, Poisson(3) a year
    source: {section: "4", quote: test lab}
    formula: {kind: fixed, amount: 50}
    exclusive_group: pair2
    uptake:
      basis: assumption
      count: {dist: poisson, mean: 3, shock: false}
"""
    progs.write_text(text, encoding="utf-8")
    groups = root / "catalogue" / "exclusive_groups.yaml"
    groups.write_text(
        groups.read_text(encoding="utf-8")
        + """  pair2:
    rule: 从优、从高、不重复
    document: TEST〔2025〕2号
    quote: test non-cumulation two
    overlap: 0.5
    basis: assumption
    note: test share two
""",
        encoding="utf-8",
    )
    return root


def test_a_program_in_two_groups_is_paid_only_where_it_is_highest_in_both(tmp_path):
    """One applicant claiming o.grant (30), o.rent (40 in all, groups pair and pair2) and o.lab (50, pair2):
    rent beats grant in pair, lab beats rent in pair2, so only lab pays, 50万元 — by calc, and in the simulation
    when every applicant is linked (5 a year under each program, overlap 1 in both groups): 5 × 50万元 a year."""
    root = _two_groups(tmp_path)
    cat = load_catalogue(root)
    res = calculate_many(cat, ["o.grant", "o.rent", "o.lab"], {}, jurisdiction="nanhu")
    assert [r.program for r in res if r.winner] == ["o.lab"]
    assert sum(r.total_cny for r in res if r.winner) == 50 * WAN
    assert any("pair2" in n for n in next(r for r in res if r.program == "o.rent").notes)
    fixed = "{uptake.count.dist: binomial, uptake.count.pool: 5, uptake.count.take_up: 1.0}"
    f = tmp_path / "all_linked.yaml"
    f.write_text(f"""scenario:
  name: all_linked
  horizon: {{start: 2025, end: 2027}}
  draws: 100
  overrides: {{o.grant: {fixed}, o.rent: {fixed}, o.lab: {fixed}}}
  overlap: {{pair: 1.0, pair2: 1.0}}
""")
    s = load_scenario(f, cat)
    assert [(g.name, g.members) for g in s.groups] == [("pair", ["o.grant", "o.rent"]), ("pair2", ["o.rent", "o.lab"])]
    L = simulate_chunk(s, 0, s.spec.draws)
    committed = sum(L[p].committed for p in ("o.grant", "o.rent", "o.lab")).sum(axis=1)
    np.testing.assert_array_equal(committed, 5 * 50 * WAN)


def test_a_second_group_changes_nothing_outside_its_component(tmp_path):
    """Common random numbers: o.other (in no group) draws the same whatever pair2's share; o.grant and o.rent
    draw the same as without pair2 when its share is 0 (the group is then inactive)."""
    root = _two_groups(tmp_path)
    cat = load_catalogue(root)
    runs = {}
    for share in (0.0, 0.8):
        f = tmp_path / f"s{share}.yaml"
        f.write_text((FIX / "overlap.yaml").read_text().replace("{pair: 0.6}", f"{{pair: 0.6, pair2: {share}}}"))
        s = load_scenario(f, cat)
        runs[share] = simulate_chunk(s, 0, 400)
    np.testing.assert_array_equal(runs[0.0]["o.other"].committed, runs[0.8]["o.other"].committed)
    base = load_scenario(FIX / "overlap.yaml")
    alone = simulate_chunk(base, 0, 400)
    for pid in ("o.grant", "o.rent", "o.other"):
        np.testing.assert_array_equal(runs[0.0][pid].committed, alone[pid].committed)
    assert runs[0.8]["o.rent"].committed.sum() < runs[0.0]["o.rent"].committed.sum()  # rents now lose to labs


def test_groups_sharing_a_program_are_one_component():
    from fiscal_sim.catalogue.groups import SimGroup, components

    a, b, c, d = (
        SimGroup("a", ["p", "q"], 1),
        SimGroup("b", ["r"], 1),
        SimGroup("c", ["q", "s"], 1),
        SimGroup("d", ["s", "r"], 1),
    )
    assert [[g.name for g in comp] for comp in components([a, b, c])] == [["a", "c"], ["b"]]
    assert [[g.name for g in comp] for comp in components([a, b, c, d])] == [["a", "b", "c", "d"]]
