"""`calc` for whole cases: several claims of one entity, stays, user-priced awards, and input errors."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiscal_sim.calc import calculate, calculate_many
from fiscal_sim.errors import InputError
from tests.test_cli import INTERMEDIARY, calc_json, run

DAY = dt.date(2025, 5, 1)


def test_repeated_inputs_are_claims_of_one_intermediary_with_the_entity_cap():
    # 12 contracts of 400万元: 3% = 12 → 10万元 each (per-contract cap); 120 > 每家每年累计不超过100万元
    res = calc_json(
        INTERMEDIARY, *[a for _ in range(12) for a in ("-i", "contract=400")], "-j", "haining", "--date", "2025-05-01"
    )
    assert res["total_cny"] == pytest.approx(1_000_000)
    assert [c["award_before_caps_cny"] for c in res["claims"]] == [100_000] * 12
    # in order: the first ten fill the cap, the last two get nothing
    assert [c["award_cny"] for c in res["claims"]] == pytest.approx([100_000] * 10 + [0, 0])
    assert any("over 12 claims" in n for n in res["notes"])


def test_repeated_program_id_is_claims_not_independent_applicants():
    one = calc_json(
        INTERMEDIARY, "-i", "contract=2000", "-i", "used_entity_year=85", "-j", "nanhu", "--date", "2025-05-01"
    )
    two = calc_json(
        INTERMEDIARY,
        INTERMEDIARY,
        "-i",
        "contract=2000",
        "-i",
        "used_entity_year=85",
        "-j",
        "nanhu",
        "--date",
        "2025-05-01",
    )
    # 10 + 10 from two identical claims, but only 15 of the 100万元 cap is left
    assert one["total_cny"] == pytest.approx(100_000)
    assert two["total_cny"] == pytest.approx(150_000) and len(two["claims"]) == 2
    assert two["payers"] == pytest.approx({"city": 75_000, "nanhu": 75_000})


def test_claims_and_repeated_ids_must_agree():
    r = run("calc", INTERMEDIARY, INTERMEDIARY, "-i", "contract=100", "-i", "contract=200", "-i", "contract=300")
    assert r.returncode != 0 and "listed 2 times (= 2 claims) but inputs are given 3 times" in r.stderr
    with pytest.raises(InputError, match="inputs.tier: given 2 times, but another input is given 3 times"):
        calculate(
            _cat(),
            "jwf2017-4.innovation-salary",
            {"tier": ["A", "B"], "term": "long", "salary": ["100", "200", "300"]},
            "nanhu",
            DAY,
        )


def test_the_amount_already_used_is_one_per_entity():
    with pytest.raises(InputError, match="give it once, not per claim"):
        calculate(_cat(), INTERMEDIARY, {"contract": ["100", "200"], "used_entity_year": ["10", "20"]}, "nanhu", DAY)


def test_person_cap_across_a_brokers_claims():
    # a broker's contracts: 1.5% of 300 = 4.5 → 3 each (per-contract cap); 8 × 3 = 24 → 每人每年累计不超过20万元
    r = calculate(_cat(), "jzbf2024-7.tech-broker-reward", {"contract": ["300"] * 8}, "jiashan", DAY)
    assert r.total_cny == pytest.approx(200_000)
    assert [c["award_cny"] for c in r.claims] == pytest.approx([30_000] * 6 + [20_000, 0])


@pytest.mark.parametrize(
    "inputs, says",
    [
        (["contract=100", "used_entity_yaer=3"], "inputs.used_entity_yaer: not an input of this program"),
        (["contract=100", "used_person_year=3"], "inputs.used_person_year: not an input of this program"),
        (["contract=100", "award=5"], "inputs.award: an award amount prices only unpriced programs"),
    ],
)
def test_mistyped_or_foreign_inputs_are_errors(inputs, says):
    r = run("calc", INTERMEDIARY, *[a for kv in inputs for a in ("-i", kv)], "-j", "nanhu", "--date", "2025-05-01")
    assert r.returncode != 0 and says in r.stderr and "Traceback" not in r.stderr


def test_stay_rent_subsidy_for_a_talent_who_leaves_after_4_years():
    res = calc_json(
        "jwf2017-4.talent-housing",
        "-i",
        "tier=national",
        "-i",
        "option=rent",
        "--stay",
        "4",
        "-j",
        "nanhu",
        "--date",
        "2025-03-01",
    )
    # 10万元 a year for 10 years: 4 payments made, 6 lapse
    assert res["total_cny"] == 1_000_000 and res["paid_cny"] == 400_000 and res["lapsed_cny"] == 600_000
    # paid from t+1, as the simulation pays it (catalogue timing: lag 1)
    assert [(s["fiscal_year"], s["cash_cny"]) for s in res["schedule"]] == [(y, 100_000) for y in range(2026, 2030)]
    assert res["payers"] == {"city": 200_000, "nanhu": 200_000}


def test_amount_prices_the_unpriced_6hao_reward():
    res = calc_json("jzbf2024-6.nri-performance-reward", "--amount", "60万元", "-j", "xiuzhou", "--date", "2026-06-30")
    assert res["total_cny"] == 600_000 and res["payers"] == {"city": 300_000, "xiuzhou": 300_000}
    assert res["steps"][0]["text"] == "award priced by the user: 60万元 (the document gives no amount)"
    county = calc_json("jzbf2024-6.nri-performance-reward", "--amount", "60", "-j", "tongxiang", "--date", "2026-06-30")
    assert county["payers"] == {"tongxiang": 600_000}
    r = run("calc", "jzbf2024-6.nri-performance-reward", "--amount", "60", "-i", "award=50")
    assert r.returncode != 0 and "give the award once" in r.stderr


def test_calc_help_documents_claims_and_used_inputs():
    r = run("calc", "--help")
    text = " ".join(r.stdout.split())
    for phrase in ("claims", "used_entity_year", "--stay", "--amount"):
        assert phrase in text


def test_several_programs_still_apply_non_cumulation():
    res = calculate_many(
        _cat(),
        ["jwf2017-4.elite-venture", "jwf2017-4.hi-talent-venture"],
        {"tier": "B", "level": "provincial"},
        jurisdiction="nanhu",
        award_date=dt.date(2025, 3, 1),
    )
    assert [r.winner for r in res] == [True, False]


def _cat():
    from fiscal_sim.catalogue.loader import load_catalogue

    return load_catalogue()


def test_claims_from_a_csv_file(tmp_path):
    # 3% of 100, 200, …, 1200万元 = 3, 6, 9, then 10 each (per-contract cap): 3 + 6 + 9 + 9 × 10 = 108 → 100
    f = tmp_path / "contracts.csv"
    f.write_text("contract\n" + "".join(f"{100 * k}万元\n" for k in range(1, 13)), encoding="utf-8")
    res = calc_json(INTERMEDIARY, "--claims", str(f), "-j", "haining", "--date", "2025-05-01")
    assert len(res["claims"]) == 12 and res["total_cny"] == pytest.approx(1_000_000)
    assert res["claims"][-1]["award_cny"] == pytest.approx(20_000)  # the 12th gets what is left: 100 − 98


@pytest.mark.parametrize(
    "text, says",
    [
        ("contract,contract\n1,2\n", "column 2: empty or repeated column name"),
        ("contract\n100\n\n200,3\n", "row 4: has 2 fields, the header has 1"),
        ("contract\n", "needs a header row of input names and one row per claim"),
    ],
)
def test_bad_claims_files_are_named(tmp_path, text, says):
    f = tmp_path / "claims.csv"
    f.write_text(text, encoding="utf-8")
    r = run("calc", INTERMEDIARY, "--claims", str(f), "-j", "nanhu")
    assert r.returncode != 0 and str(f) in r.stderr and says in r.stderr and "Traceback" not in r.stderr


@settings(max_examples=40, deadline=None)
@given(contracts=st.lists(st.floats(0, 5000), min_size=1, max_size=15), used=st.floats(0, 120))
def test_claims_never_exceed_the_room_left_under_the_entity_cap(contracts, used):
    r = calculate(
        _cat(),
        INTERMEDIARY,
        {"contract": [str(c) for c in contracts], "used_entity_year": str(used)},
        "haining",
        DAY,
        explain=False,
    )
    uncapped = [min(0.03 * c, 10) * 1e4 for c in contracts]  # 3%, at most 10万元 a contract
    assert r.total_cny == pytest.approx(min(sum(uncapped), max(100 - used, 0) * 1e4), abs=1e-6)
    assert all(0 <= c["award_cny"] <= c["award_before_caps_cny"] + 1e-9 for c in r.claims)


@pytest.mark.parametrize("name", ["haining", "Haining", "海宁市", "海宁", "Haining (county-level city)"])
def test_a_place_by_any_of_its_names(catalogue, name):
    r = calculate(catalogue, INTERMEDIARY, {"contract": 200}, jurisdiction=name, award_date=DAY)
    assert r.jurisdiction == "haining" and r.total_cny == pytest.approx(6e4)  # 3% of 200万元 = 6万元, under the cap


def test_an_unknown_place_lists_the_places(catalogue):
    with pytest.raises(InputError, match=r"'海盐市' is not a place fiscal-sim knows: nanhu \(南湖区\)"):
        calculate(catalogue, INTERMEDIARY, {"contract": 200}, jurisdiction="海盐市", award_date=DAY)


@pytest.mark.parametrize(
    "text, refused", [("5000000", True), ("100000", True), ("99999", False), ("5000000元", False), ("50亿", False)]
)
def test_a_bare_number_that_looks_like_yuan_is_refused_with_both_readings(text, refused):
    from fiscal_sim.units import parse_money

    if not refused:
        assert parse_money(text, "万元") > 0
        return
    with pytest.raises(ValueError) as e:
        parse_money(text, "万元")
    msg = str(e.value)
    assert f"write {text}元 for" in msg and f"or {text}万元 if you mean" in msg
    if text == "5000000":
        assert "500亿元" in msg and "500万元" in msg


def test_a_typo_in_a_full_id_gets_the_close_match(catalogue):
    with pytest.raises(InputError, match="did you mean jzbf2024-7.tech-intermediary-reward"):
        catalogue.get("jzbf2024-7.tech-intermediary-rewrd")
    with pytest.raises(InputError, match="did you mean jwf2017-4.talent-housing"):
        catalogue.get("jwf2017-4.talent-hosuing")
