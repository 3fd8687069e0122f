"""Formula primitives, formula nodes and money units, against hand-computed values.

Money in the primitives is whatever the caller passes; here the formula nodes
are written in 万元 (``unit_cny = 1e4``) and evaluated in yuan, so a node result
of ``1_000_000`` yuan is 100万元.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from pydantic import TypeAdapter, ValidationError

from fiscal_sim.rules import primitives as P
from fiscal_sim.rules.formula import EvalContext, Formula, evaluate
from fiscal_sim.units import cny_per, fmt_wan, parse_money

WAN = 1e4
formula = TypeAdapter(Formula).validate_python


def arr(*xs):
    return np.array(xs, dtype=float)


# ─────────────────────────────────────────── fixed / by_tier ───────────────────────────────────────────


def test_fixed_broadcasts_a_scalar():
    out = P.fixed(20, 3)
    assert_array_equal(out, [20, 20, 20])
    assert out.dtype == np.float64


def test_fixed_per_applicant_amount_and_copy():
    amount = arr(1, 2, 3)
    out = P.fixed(amount, 3)
    assert_array_equal(out, [1, 2, 3])
    out[0] = 99  # the result is a writable copy, not a view of the input
    assert amount[0] == 1


def test_fixed_zero_and_one_applicant():
    assert P.fixed(20, 0).shape == (0,)
    assert_array_equal(P.fixed(20, 1), [20])
    assert_array_equal(P.fixed(0, 2), [0, 0])


def test_by_tier_looks_up_codes():
    table = arr(100, 80, 60, 35)  # national, provincial, municipal, senior
    assert_array_equal(P.by_tier([2, 0, 3, 1, 0], table), [60, 100, 35, 80, 100])
    assert_array_equal(P.by_tier([3], table), [35])
    assert P.by_tier(np.array([], dtype=int), table).shape == (0,)


def test_by_tier_unknown_code_is_an_error():
    with pytest.raises(IndexError):
        P.by_tier([4], arr(1, 2, 3, 4))


# ─────────────────────────────────────────── rate_of / excess_over ───────────────────────────────────────────


def test_rate_of():
    assert_allclose(P.rate_of(arr(200, 0, 333.5), 0.03), [6, 0, 10.005])
    assert_allclose(P.rate_of(arr(100, 100), arr(0.7, 0.5)), [70, 50])  # per-applicant rates
    assert P.rate_of(np.array([]), 0.03).shape == (0,)
    assert_array_equal(P.rate_of(arr(5), 0.0), [0])


def test_excess_over_threshold():
    # 域外专家: 20% of the salary above 30万元
    base = arr(0, 29.99, 30, 30.01, 45, 80)
    assert_allclose(P.excess_over(base, 30, 0.2), [0, 0, 0, 0.002, 3, 10], atol=1e-12)


def test_excess_over_base_exactly_at_threshold_is_zero():
    assert_array_equal(P.excess_over(arr(30), 30, 0.2), [0.0])


def test_excess_over_edge_sizes_and_per_row_threshold():
    assert P.excess_over(np.array([]), 30, 0.2).shape == (0,)
    assert_allclose(P.excess_over(arr(50, 50), arr(30, 60), 0.5), [10, 0])


# ─────────────────────────────────────────── cap / floor ───────────────────────────────────────────


def test_cap():
    assert_array_equal(P.cap(arr(6, 10, 15, 0), 10), [6, 10, 10, 0])
    assert_array_equal(P.cap(arr(140, 40), arr(100, 40)), [100, 40])  # per-tier caps, one exactly at its cap


def test_cap_exactly_at_cap_is_unchanged():
    assert_array_equal(P.cap(arr(10), 10), [10])


def test_cap_of_zero_and_empty():
    assert_array_equal(P.cap(arr(0), 0), [0])
    assert_array_equal(P.cap(arr(5), 0), [0])
    assert P.cap(np.array([]), 10).shape == (0,)


def test_floor():
    assert_array_equal(P.floor(arr(3, 5, 8, 0), 5), [5, 5, 8, 5])
    assert_array_equal(P.floor(arr(5), 5), [5])  # exactly at the floor
    assert P.floor(np.array([]), 5).shape == (0,)


# ─────────────────────────────────────────── match ───────────────────────────────────────────


def test_match_one_to_one_is_the_default():
    assert_array_equal(P.match(arr(120, 0, 35)), [120, 0, 35])


def test_match_at_a_ratio_and_negative_grant():
    assert_allclose(P.match(arr(120, 50), 0.5), [60, 25])
    assert_array_equal(P.match(arr(-10), 1.0), [0])  # a negative "grant" is no grant
    assert P.match(np.array([]), 1.0).shape == (0,)


# ─────────────────────────────────────────── choose ───────────────────────────────────────────


def test_choose_takes_each_applicants_option():
    purchase, rent = arr(100, 80, 60), arr(10, 5, 4)
    assert_array_equal(P.choose([0, 1, 1], [purchase, rent]), [100, 5, 4])


def test_choose_scalar_options_broadcast():
    assert_array_equal(P.choose([1, 0, 2, 1], [1.0, 2.0, 3.0]), [2, 1, 3, 2])


def test_choose_one_and_zero_applicants():
    assert_array_equal(P.choose([1], [arr(7), arr(9)]), [9])
    assert P.choose(np.array([], dtype=int), [np.array([]), np.array([])]).shape == (0,)


# ─────────────────────────────────────────── multiply_if ───────────────────────────────────────────


def test_multiply_if_uplift_under_35():
    amount = arr(500, 300, 200)
    age = arr(34, 35, 36)
    assert_allclose(P.multiply_if(amount, age < 35, 1.05), [525, 300, 200])


def test_multiply_if_edge_cases():
    assert_array_equal(P.multiply_if(arr(100), np.array([False]), 1.05), [100])
    assert_allclose(P.multiply_if(arr(100), np.array([True]), 1.05), [105])
    assert_array_equal(P.multiply_if(arr(0, 0), np.array([True, False]), 1.05), [0, 0])
    assert P.multiply_if(np.array([]), np.array([], dtype=bool), 1.05).shape == (0,)


# ─────────────────────────────────────────── up_to ───────────────────────────────────────────


def test_up_to_clips_share_to_0_1():
    assert_allclose(P.up_to(120, arr(-0.5, 0, 0.25, 1, 1.7)), [0, 0, 30, 120, 120])
    assert_allclose(P.up_to(arr(120, 60, 30), arr(0.5, 0.5, 0.5)), [60, 30, 15])
    assert P.up_to(100, np.array([])).shape == (0,)


# ─────────────────────────────────────────── vectorised: a million applicants ───────────────────────────────────────────


def test_a_million_applicants_in_one_call():
    n = 1_000_000
    rng = np.random.default_rng(7)
    contract = rng.uniform(0, 1000, n)
    tier = rng.integers(0, 3, n)
    age = rng.uniform(20, 60, n)
    t0 = time.perf_counter()
    reward = P.cap(P.rate_of(contract, 0.03), 10)
    expert = P.cap(P.excess_over(contract, 30, 0.2), 10)
    salary = P.multiply_if(
        P.cap(P.rate_of(contract, P.by_tier(tier, [0.7, 0.6, 0.5])), P.by_tier(tier, [100, 60, 40])), age < 35, 1.05
    )
    housing = P.choose(tier, [P.fixed(100, n), P.fixed(80, n), P.up_to(60, contract / 1000)])
    floor = P.floor(P.match(contract, 0.5), 5)
    elapsed = time.perf_counter() - t0
    for out in (reward, expert, salary, housing, floor):
        assert out.shape == (n,) and out.dtype == np.float64
    i = int(np.argmax(contract))  # spot checks against scalar arithmetic
    assert reward[i] == min(0.03 * contract[i], 10)
    assert expert[i] == min(0.2 * max(contract[i] - 30, 0), 10)
    assert reward.max() <= 10 and expert.max() <= 10 and floor.min() >= 5
    assert elapsed < 5, f"a million-row evaluation took {elapsed:.1f}s: not vectorised?"


# ─────────────────────────────────────────── formula nodes (in-memory program) ───────────────────────────────────────────

TIERS = ["A", "B", "C"]
TERMS = ["long", "short"]

# The innovation-salary rule, with a numeric age: uplift(+5% if age < 35, choice(term, cap(rate)))
SALARY = {
    "kind": "uplift",
    "factor": 1.05,
    "when": {"input": "age", "lt": 35},
    "clause": "35周岁以下上浮5%",
    "of": {
        "kind": "choice",
        "by": "term",
        "clause": "长期/短期",
        "options": {
            "long": {
                "kind": "cap",
                "max": {"by": "tier", "values": {"A": 100, "B": 60, "C": 40}},
                "clause": "长期每年最高",
                "of": {
                    "kind": "rate",
                    "rate": {"by": "tier", "values": {"A": 0.7, "B": 0.6, "C": 0.5}},
                    "base": "salary",
                    "clause": "按年薪的70%、60%、50%",
                },
            },
            "short": {
                "kind": "cap",
                "max": {"by": "tier", "values": {"A": 50, "B": 30, "C": 15}},
                "clause": "短期每年最高",
                "of": {
                    "kind": "rate",
                    "rate": {"by": "tier", "values": {"A": 0.7, "B": 0.6, "C": 0.5}},
                    "base": "salary",
                    "clause": "按年薪的70%、60%、50%",
                },
            },
        },
    },
}


def ctx_for(n: int, trace=None, **inputs) -> EvalContext:
    """Inputs: money in 万元 (converted to yuan here), categories as labels, numbers as is."""
    cats = {"tier": TIERS, "term": TERMS, "option": ["purchase", "rent"]}
    arrays = {}
    for k, v in inputs.items():
        if k in cats:
            arrays[k] = np.array([cats[k].index(x) for x in v], dtype=np.intp)
        elif k in ("age", "grant_share"):
            arrays[k] = np.asarray(v, dtype=float)
        else:
            arrays[k] = np.asarray(v, dtype=float) * WAN
    return EvalContext(n=n, inputs=arrays, categories=cats, unit_cny=WAN, trace=trace)


def wan(x):
    return np.asarray(x) / WAN


def test_salary_formula_hand_cases():
    f = formula(SALARY)
    ctx = ctx_for(
        5,
        tier=["A", "B", "C", "C", "B"],
        term=["long", "short", "long", "short", "long"],
        salary=[200, 40, 80, 0, 100],
        age=[40, 34, 35, 20, 34.999],
    )
    # A long: 70% × 200 = 140 → cap 100; B short: 60% × 40 = 24 (< 30) × 1.05 = 25.2;
    # C long: 50% × 80 = 40 = the cap exactly, age 35 is not under 35; C short salary 0 → 0;
    # B long: 60% × 100 = 60 = the cap, age 34.999 < 35 → 63.
    assert_allclose(wan(evaluate(f, ctx)), [100, 25.2, 40, 0, 63])


def test_uplift_boundary_is_strict():
    f = formula(
        {"kind": "uplift", "factor": 1.05, "when": {"input": "age", "lt": 35}, "of": {"kind": "fixed", "amount": 200}}
    )
    got = wan(evaluate(f, ctx_for(4, age=[34, 34.999, 35, 35.001])))
    assert_allclose(got, [210, 210, 200, 200])
    le = formula(
        {"kind": "uplift", "factor": 1.05, "when": {"input": "age", "le": 35}, "of": {"kind": "fixed", "amount": 200}}
    )
    assert_allclose(wan(evaluate(le, ctx_for(2, age=[35, 35.001]))), [210, 200])


def test_uplift_by_category_membership():
    f = formula(
        {
            "kind": "uplift",
            "factor": 1.05,
            "when": {"input": "tier", "in": ["A", "C"]},
            "of": {"kind": "tiered", "by": "tier", "amounts": {"A": 500, "B": 300, "C": 200}},
        }
    )
    assert_allclose(wan(evaluate(f, ctx_for(3, tier=["A", "B", "C"]))), [525, 300, 210])


def test_condition_needs_exactly_one_test():
    with pytest.raises(ValidationError, match="exactly one"):
        formula(
            {
                "kind": "uplift",
                "factor": 1.05,
                "when": {"input": "age", "lt": 35, "gt": 18},
                "of": {"kind": "fixed", "amount": 1},
            }
        )


def test_when_gate_pays_only_the_eligible():
    f = formula({"kind": "when", "when": {"input": "age", "ge": 18}, "of": {"kind": "fixed", "amount": 10}})
    assert_allclose(wan(evaluate(f, ctx_for(3, age=[17.9, 18, 40]))), [0, 10, 10])


def test_condition_on_money_compares_in_the_program_unit():
    # 累计投资超过3000万元: the threshold is written in 万元, the input arrives in yuan
    f = formula(
        {
            "kind": "when",
            "when": {"input": "invest", "gt": 3000},
            "of": {"kind": "rate", "rate": 0.06, "base": "invest"},
        }
    )
    c = ctx_for(3, invest=[2999, 3000, 3001])
    c.money_scale = {"invest": WAN}
    assert_allclose(wan(evaluate(f, c)), [0, 0, 0.06 * 3001])


def test_choice_purchase_or_rent():
    f = formula(
        {
            "kind": "choice",
            "by": "option",
            "options": {
                "purchase": {"kind": "tiered", "by": "tier", "amounts": {"A": 100, "B": 80, "C": 60}},
                "rent": {"kind": "tiered", "by": "tier", "amounts": {"A": 10, "B": 5, "C": 4}},
            },
        }
    )
    got = wan(evaluate(f, ctx_for(4, option=["purchase", "rent", "rent", "purchase"], tier=["A", "B", "C", "C"])))
    assert_allclose(got, [100, 5, 4, 60])


def test_fixed_and_tiered_convert_units():
    assert_array_equal(evaluate(formula({"kind": "fixed", "amount": 20}), ctx_for(2)), [200_000, 200_000])
    t = formula({"kind": "tiered", "by": "tier", "amounts": {"A": 100, "B": 60, "C": 0}})
    assert_array_equal(evaluate(t, ctx_for(3, tier=["C", "A", "B"])), [0, 1_000_000, 600_000])


def test_excess_with_cap_overseas_expert():
    f = formula({"kind": "cap", "max": 10, "of": {"kind": "excess", "base": "salary", "threshold": 30, "rate": 0.2}})
    got = wan(evaluate(f, ctx_for(6, salary=[0, 30, 40, 80, 100, 300])))
    # 20% of the excess over 30: 0, 0 (exactly at the threshold), 2, 10 (exactly at the cap), 14 → 10, 54 → 10
    assert_allclose(got, [0, 0, 2, 10, 10, 10])


def test_floor_of_a_rate():
    f = formula({"kind": "floor", "min": 5, "of": {"kind": "rate", "rate": 0.1, "base": "base"}})
    assert_allclose(wan(evaluate(f, ctx_for(4, base=[0, 30, 50, 80]))), [5, 5, 5, 8])


def test_match_one_to_one_and_half():
    one = formula({"kind": "match", "grant": "grant"})
    half = formula({"kind": "match", "grant": "grant", "ratio": 0.5})
    c = ctx_for(3, grant=[120, 0, 35])
    assert_allclose(wan(evaluate(one, c)), [120, 0, 35])
    assert_allclose(wan(evaluate(half, c)), [60, 0, 17.5])


def test_sum_and_max():
    total = formula({"kind": "sum", "terms": [{"kind": "fixed", "amount": 200}, {"kind": "fixed", "amount": 800}]})
    assert_allclose(wan(evaluate(total, ctx_for(2))), [1000, 1000])
    single = formula({"kind": "sum", "terms": [{"kind": "fixed", "amount": 7}]})
    assert_allclose(wan(evaluate(single, ctx_for(1))), [7])
    best = formula(
        {"kind": "max", "terms": [{"kind": "rate", "rate": 0.1, "base": "base"}, {"kind": "fixed", "amount": 20}]}
    )
    # 10% of 100 = 10 < 20; 10% of 200 = 20 = 20; 10% of 500 = 50 > 20
    assert_allclose(wan(evaluate(best, ctx_for(3, base=[100, 200, 500]))), [20, 20, 50])
    with pytest.raises(ValidationError):
        formula({"kind": "sum", "terms": []})


def test_up_to_clips_the_share():
    f = formula({"kind": "up_to", "max": {"by": "tier", "values": {"A": 120, "B": 60, "C": 30}}})
    got = wan(evaluate(f, ctx_for(4, tier=["A", "B", "C", "A"], grant_share=[0.5, 1.0, 1.5, -0.2])))
    assert_allclose(got, [60, 60, 30, 0])


def test_nested_rate_of_a_formula():
    # rate of a nested formula: 50% of (sum of 100 and 10% × base)
    f = formula(
        {
            "kind": "rate",
            "rate": 0.5,
            "base": {
                "kind": "sum",
                "terms": [{"kind": "fixed", "amount": 100}, {"kind": "rate", "rate": 0.1, "base": "base"}],
            },
        }
    )
    assert_allclose(wan(evaluate(f, ctx_for(2, base=[0, 200]))), [50, 60])


def test_formula_with_no_applicants():
    f = formula(SALARY)
    c = ctx_for(0, tier=[], term=[], salary=[], age=[])
    assert evaluate(f, c).shape == (0,)


def test_formula_one_applicant_at_every_cap():
    f = formula(SALARY)
    for tier, term, salary, cap in (
        ("A", "long", 100 / 0.7, 100),
        ("B", "long", 100, 60),
        ("C", "long", 80, 40),
        ("A", "short", 50 / 0.7, 50),
        ("B", "short", 50, 30),
        ("C", "short", 30, 15),
    ):
        got = wan(evaluate(f, ctx_for(1, tier=[tier], term=[term], salary=[salary], age=[50])))
        assert_allclose(got, [cap], err_msg=f"{tier}/{term}")


def test_trace_records_steps_with_clauses_inner_first():
    trace = []
    f = formula(SALARY)
    evaluate(f, ctx_for(1, trace=trace, tier=["A"], term=["long"], salary=[200], age=[30]))
    kinds = [s.kind for s in trace]
    assert kinds == ["rate", "cap", "choice", "uplift"]
    assert [s.clause for s in trace] == ["按年薪的70%、60%、50%", "长期每年最高", "长期/短期", "35周岁以下上浮5%"]
    assert_allclose([s.value_cny / WAN for s in trace], [140, 100, 100, 105])
    assert trace[-1].depth < trace[0].depth  # the outer step is shallower than the inner one
    assert "applies" in trace[-1].text and "100万元" in trace[1].text


def test_trace_off_records_nothing_and_gives_same_result():
    f = formula(SALARY)
    kw = dict(tier=["B"], term=["short"], salary=[40], age=[34])
    trace = []
    a = evaluate(f, ctx_for(1, trace=trace, **kw))
    b = evaluate(f, ctx_for(1, **kw))
    assert_array_equal(a, b)
    assert trace


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "rate", "rate": 1.5, "base": "x"},  # rate above 100%
        {"kind": "rate", "rate": -0.1, "base": "x"},
        {"kind": "cap", "max": -10, "of": {"kind": "fixed", "amount": 1}},  # negative cap
        {"kind": "fixed", "amount": -1},
        {"kind": "uplift", "factor": 0, "when": {"input": "age", "lt": 35}, "of": {"kind": "fixed", "amount": 1}},
        {"kind": "percent", "rate": 0.1},  # unknown primitive
        {"kind": "fixed", "amount": 1, "amont": 2},  # unknown field
    ],
)
def test_bad_formulas_are_rejected(bad):
    with pytest.raises(ValidationError):
        formula(bad)


# ─────────────────────────────────────────── units ───────────────────────────────────────────


@pytest.mark.parametrize(
    "text, default, cny",
    [
        ("35万元", "元", 350_000),
        ("350000元", "万元", 350_000),
        ("1.2亿", "万元", 120_000_000),
        ("1.2亿元", "元", 120_000_000),
        ("35", "万元", 350_000),
        ("35", "元", 35),
        ("35万", "元", 350_000),
        (" 1,000元 ", "万元", 1000),
        ("0万元", "元", 0),
        ("3wan", "元", 30_000),
    ],
)
def test_parse_money(text, default, cny):
    assert parse_money(text, default) == pytest.approx(cny)


def test_parse_money_rejects_garbage():
    with pytest.raises(ValueError):
        parse_money("abc", "万元")
    with pytest.raises(ValueError):
        parse_money("35", "千元")  # unknown default unit


def test_cny_per():
    assert cny_per("元") == 1 and cny_per("万元") == 1e4 and cny_per("亿元") == 1e8 and cny_per("万") == 1e4
    with pytest.raises(ValueError, match="unknown unit"):
        cny_per("千元")


@pytest.mark.parametrize(
    "cny, text",
    [
        (350_000, "35万元"),
        (0, "0万元"),
        (12_345, "1.2345万元"),
        (100_000_000, "1亿元"),
        (120_000_000, "1.2亿元"),
        (99_990_000, "9,999万元"),
        (-50_000, "-5万元"),
    ],
)
def test_fmt_wan(cny, text):
    assert fmt_wan(cny) == text
