"""Payment schedules: one award → cash by year offset, with attrition."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from pydantic import TypeAdapter, ValidationError

from fiscal_sim.calc import calculate
from fiscal_sim.rules.formula import EvalContext
from fiscal_sim.rules.schedule import (
    Annual,
    Instalments,
    OneOff,
    Schedule,
    ScheduleChoice,
    cash_by_offset,
    category_refs,
    schedule_classes,
)

WAN = 1e4
schedule = TypeAdapter(Schedule).validate_python
CATS = {"term": ["long", "short"], "option": ["purchase", "rent"], "tier": ["A", "B", "C"]}


def ctx(n: int, **codes) -> EvalContext:
    inputs = {k: np.array([CATS[k].index(x) for x in v], dtype=np.intp) for k, v in codes.items()}
    return EvalContext(n=n, inputs=inputs, categories=CATS, unit_cny=WAN)


def amounts(*wan):
    return np.array(wan, dtype=float) * WAN


# ─────────────────────────────────────────── one-off ───────────────────────────────────────────


def test_one_off_in_the_award_year():
    s = schedule({"kind": "one_off"})
    assert isinstance(s, OneOff) and s.max_len() == 1
    committed, cash = cash_by_offset(s, amounts(20, 0), ctx(2))
    assert_allclose(committed / WAN, [20, 0])
    assert_allclose(cash / WAN, [[20], [0]])


def test_one_off_with_lag():
    s = schedule({"kind": "one_off", "lag": 2})
    assert s.max_len() == 3
    committed, cash = cash_by_offset(s, amounts(20), ctx(1))
    assert_allclose(committed / WAN, [20])
    assert_allclose(cash / WAN, [[0, 0, 20]])


def test_wider_window_is_zero_padded():
    committed, cash = cash_by_offset(schedule({"kind": "one_off", "lag": 1}), amounts(5), ctx(1), width=5)
    assert_allclose(cash / WAN, [[0, 5, 0, 0, 0]])
    assert_allclose(committed / WAN, [5])


@pytest.mark.parametrize("lag", [-1, 11])
def test_lag_out_of_range(lag):
    with pytest.raises(ValidationError):
        schedule({"kind": "one_off", "lag": lag})


# ─────────────────────────────────────────── annual ───────────────────────────────────────────


def test_annual_rent_for_ten_years():
    # 10-year rent subsidy of 10万元 a year: the formula amount is per year
    s = schedule({"kind": "annual", "years": 10})
    assert isinstance(s, Annual) and s.max_len() == 10
    committed, cash = cash_by_offset(s, amounts(10, 3), ctx(2))
    assert_allclose(committed / WAN, [100, 30])
    assert_allclose(cash / WAN, [[10] * 10, [3] * 10])


def test_annual_with_lag():
    s = schedule({"kind": "annual", "years": 3, "lag": 1})
    committed, cash = cash_by_offset(s, amounts(5), ctx(1))
    assert_allclose(cash / WAN, [[0, 5, 5, 5]])
    assert_allclose(committed / WAN, [15])


def test_annual_one_year():
    committed, cash = cash_by_offset(schedule({"kind": "annual", "years": 1}), amounts(7), ctx(1))
    assert_allclose(cash / WAN, [[7]])
    assert_allclose(committed / WAN, [7])


def test_annual_years_by_tier():
    # innovation salary subsidy: 5 years for long-term projects, 3 for short-term
    s = schedule({"kind": "annual", "years": {"by": "term", "values": {"long": 5, "short": 3}}})
    assert s.max_len() == 5
    committed, cash = cash_by_offset(s, amounts(100, 30, 0), ctx(3, term=["long", "short", "long"]))
    assert_allclose(committed / WAN, [500, 90, 0])
    assert_allclose(cash / WAN, [[100] * 5, [30, 30, 30, 0, 0], [0] * 5])


@pytest.mark.parametrize(
    "years",
    [
        0,
        31,
        2.5,
        {"by": "term", "values": {"long": 5, "short": 2.5}},
        {"by": "term", "values": {"long": 5, "short": 0}},
    ],
)
def test_annual_years_must_be_whole_and_positive(years):
    with pytest.raises(ValidationError):
        schedule({"kind": "annual", "years": years})


# ─────────────────────────────────────────── instalments ───────────────────────────────────────────


def test_instalments_40_30_30():
    s = schedule({"kind": "instalments", "fractions": [0.4, 0.3, 0.3]})
    assert isinstance(s, Instalments) and s.max_len() == 3
    committed, cash = cash_by_offset(s, amounts(100, 50), ctx(2))
    assert_allclose(committed / WAN, [100, 50])
    assert_allclose(cash / WAN, [[40, 30, 30], [20, 15, 15]])


def test_instalments_with_lag():
    s = schedule({"kind": "instalments", "fractions": [0.5, 0.5], "lag": 2})
    committed, cash = cash_by_offset(s, amounts(10), ctx(1))
    assert_allclose(cash / WAN, [[0, 0, 5, 5]])
    assert_allclose(committed / WAN, [10])


def test_instalments_single_fraction():
    committed, cash = cash_by_offset(schedule({"kind": "instalments", "fractions": [1.0]}), amounts(10), ctx(1))
    assert_allclose(cash / WAN, [[10]])


@pytest.mark.parametrize(
    "fractions, message",
    [
        ([0.4, 0.3, 0.2], "must sum to 1"),
        ([0.4, 0.3, 0.4], "must sum to 1"),
        ([0.5, 0.5, 0], "greater than 0"),
        ([1.5, -0.5], "less than or equal to 1"),
        ([], "at least 1"),
    ],
)
def test_instalment_fractions_must_sum_to_one(fractions, message):
    with pytest.raises(ValidationError, match=message):
        schedule({"kind": "instalments", "fractions": fractions})


def test_unknown_schedule_kind():
    with pytest.raises(ValidationError, match="tag"):
        schedule({"kind": "monthly"})


# ─────────────────────────────────────────── choice ───────────────────────────────────────────

HOUSING = {
    "kind": "choice",
    "by": "option",
    "options": {"purchase": {"kind": "one_off"}, "rent": {"kind": "annual", "years": 10}},
}


def test_choice_purchase_or_rent():
    s = schedule(HOUSING)
    assert isinstance(s, ScheduleChoice) and s.max_len() == 10
    committed, cash = cash_by_offset(s, amounts(80, 5, 35), ctx(3, option=["purchase", "rent", "purchase"]))
    assert_allclose(committed / WAN, [80, 50, 35])
    assert_allclose(cash / WAN, [[80] + [0] * 9, [5] * 10, [35] + [0] * 9])


def test_choice_of_nobody():
    committed, cash = cash_by_offset(schedule(HOUSING), amounts(), ctx(0, option=[]))
    assert committed.shape == (0,) and cash.shape == (0, 10)


def test_talent_housing_program_end_to_end(catalogue):
    day = dt.date(2025, 3, 1)
    buy = calculate(catalogue, "jwf2017-4.talent-housing", {"tier": "provincial", "option": "purchase"}, "nanhu", day)
    rent = calculate(catalogue, "jwf2017-4.talent-housing", {"tier": "provincial", "option": "rent"}, "nanhu", day)
    assert buy.total_cny == 800_000 and [s["cash_cny"] for s in buy.schedule] == [800_000]
    assert buy.schedule[0]["fiscal_year"] == 2026  # paid in t+1 (catalogue timing), as the simulation pays it
    assert rent.award_cny == 50_000 and rent.total_cny == 500_000
    assert [s["fiscal_year"] for s in rent.schedule] == list(range(2026, 2036))
    assert all(s["cash_cny"] == 50_000 for s in rent.schedule)


# ─────────────────────────────────────────── attrition ───────────────────────────────────────────


def test_attrition_stops_annual_payments():
    s = schedule({"kind": "annual", "years": 10, "lag": 1})
    committed, cash = cash_by_offset(s, amounts(10, 10, 10, 10), ctx(4), years_stayed=np.array([0, 1, 3, 99]))
    assert_allclose(committed / WAN, [100] * 4)  # the commitment is the nominal total regardless
    assert_allclose(cash.sum(axis=1) / WAN, [0, 10, 30, 100])
    assert_allclose(cash[2] / WAN, [0, 10, 10, 10, 0, 0, 0, 0, 0, 0, 0])  # the lag does not count as a year stayed


def test_attrition_stops_instalments_and_spares_one_offs():
    inst = schedule({"kind": "instalments", "fractions": [0.4, 0.3, 0.3]})
    _, cash = cash_by_offset(inst, amounts(100, 100), ctx(2), years_stayed=np.array([1, 2]))
    assert_allclose(cash / WAN, [[40, 0, 0], [40, 30, 0]])
    one = schedule({"kind": "one_off", "lag": 1})
    _, cash = cash_by_offset(one, amounts(20, 20), ctx(2), years_stayed=np.array([0, 1]))
    assert_allclose(cash / WAN, [[0, 0], [0, 20]])


def test_attrition_by_term():
    s = schedule({"kind": "annual", "years": {"by": "term", "values": {"long": 5, "short": 3}}})
    _, cash = cash_by_offset(s, amounts(10, 10), ctx(2, term=["long", "short"]), years_stayed=np.array([4, 4]))
    assert_allclose(cash.sum(axis=1) / WAN, [40, 30])


# ─────────────────────────────────────────── schedule classes ───────────────────────────────────────────

NESTED = {
    "kind": "choice",
    "by": "option",
    "options": {
        "purchase": {"kind": "instalments", "fractions": [0.4, 0.3, 0.3], "lag": 1},
        "rent": {"kind": "annual", "years": {"by": "tier", "values": {"A": 10, "B": 5, "C": 1}}},
    },
}


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "one_off", "lag": 2},
        {"kind": "annual", "years": 4},
        {"kind": "annual", "years": {"by": "term", "values": {"long": 5, "short": 3}}, "lag": 1},
        {"kind": "instalments", "fractions": [0.4, 0.3, 0.3]},
        HOUSING,
        NESTED,
    ],
)
def test_schedule_classes_equal_per_applicant_matrices(spec):
    s = schedule(spec)
    rng = np.random.default_rng(11)
    n = 500
    c = EvalContext(n=n, inputs={k: rng.integers(0, len(v), n) for k, v in CATS.items()}, categories=CATS, unit_cny=WAN)
    width = s.max_len() + 2
    F, K = s.matrices(c, width)
    cls, Fc, Kc = schedule_classes(s, c, width)
    assert cls.shape == (n,)
    assert_array_equal(Fc[cls], F)
    assert_array_equal(Kc[cls], K)
    n_classes = int(np.prod([len(CATS[r]) for r in category_refs(s)]))
    assert Fc.shape == (n_classes, width)


def test_category_refs():
    assert category_refs(schedule({"kind": "one_off"})) == []
    assert category_refs(schedule(NESTED)) == ["option", "tier"]
    assert category_refs(schedule({"kind": "annual", "years": {"by": "term", "values": {"long": 5, "short": 3}}})) == [
        "term"
    ]


def test_describe():
    assert schedule({"kind": "one_off", "lag": 1}).describe() == "one-off, 1 year(s) after the award"
    assert schedule({"kind": "instalments", "fractions": [0.4, 0.3, 0.3]}).describe() == "instalments 40%/30%/30%"
    assert "annual for 10 years" in schedule(HOUSING).describe()
