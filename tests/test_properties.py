"""Property tests (hypothesis): caps hold, schedules pay what is committed, payers share the whole amount."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import TypeAdapter

from fiscal_sim.calc import calculate
from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.rules import primitives as P
from fiscal_sim.rules.aggregate import cap_by_group
from fiscal_sim.rules.formula import EvalContext, Formula, evaluate
from fiscal_sim.rules.schedule import Schedule, cash_by_offset

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CAT = load_catalogue()

money = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
rate = st.floats(min_value=0, max_value=1, allow_nan=False)


def money_arrays(n=st.integers(0, 40)):  # noqa: B008 (a strategy: immutable)
    return n.flatmap(lambda k: arrays(np.float64, k, elements=money))


# ─────────────────────────────────────────── per-award caps ───────────────────────────────────────────


@FAST
@given(base=money_arrays(), r=rate, maximum=money)
def test_capped_award_never_exceeds_its_cap(base, r, maximum):
    out = P.cap(P.rate_of(base, r), maximum)
    assert np.all(out <= maximum)
    assert np.all(out >= 0)
    assert np.all(out <= r * base)


@FAST
@given(base=money_arrays(), threshold=money, r=rate, maximum=money)
def test_capped_excess_never_exceeds_its_cap(base, threshold, r, maximum):
    out = P.cap(P.excess_over(base, threshold, r), maximum)
    assert np.all((out >= 0) & (out <= maximum))


_CAPPED = TypeAdapter(Formula).validate_python(
    {
        "kind": "uplift",
        "factor": 1.05,
        "when": {"input": "age", "lt": 35},
        "of": {
            "kind": "cap",
            "max": {"by": "tier", "values": {"A": 100, "B": 60, "C": 40}},
            "of": {"kind": "rate", "rate": {"by": "tier", "values": {"A": 0.7, "B": 0.6, "C": 0.5}}, "base": "salary"},
        },
    }
)


@FAST
@given(data=st.data(), n=st.integers(0, 30))
def test_capped_formula_never_exceeds_tier_cap_times_uplift(data, n):
    tier = np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.intp)
    salary = data.draw(arrays(np.float64, n, elements=money))
    age = data.draw(arrays(np.float64, n, elements=st.floats(18, 70)))
    ctx = EvalContext(n, {"tier": tier, "salary": salary, "age": age}, {"tier": ["A", "B", "C"]}, 1e4)
    out = evaluate(_CAPPED, ctx)
    cap = np.array([100, 60, 40])[tier] * 1e4
    assert np.all(out <= np.where(age < 35, cap * 1.05, cap) * (1 + 1e-12))
    assert np.all(out >= 0)


# ─────────────────────────────────────────── aggregate caps ───────────────────────────────────────────


@st.composite
def grouped(draw):
    n = draw(st.integers(0, 60))
    amounts = draw(arrays(np.float64, n, elements=st.floats(0, 1e7, allow_nan=False)))
    groups = draw(arrays(np.int64, n, elements=st.integers(0, 6)))
    order = draw(arrays(np.int64, n, elements=st.integers(0, 5)))
    cap = draw(st.floats(0, 3e7, allow_nan=False))
    used = draw(st.floats(0, 3e7, allow_nan=False))
    return amounts, groups, order, cap, used


@FAST
@given(case=grouped(), method=st.sampled_from(["in_order", "proportional"]), with_used=st.booleans())
def test_aggregate_cap_never_exceeded_per_group(case, method, with_used):
    amounts, groups, order, cap, used = case
    used = used if with_used else 0.0
    out = cap_by_group(amounts, groups, cap, method, order=order, already_used=used)
    room = max(cap - used, 0.0)
    assert out.shape == amounts.shape
    assert np.all(out >= 0)
    assert np.all(out <= amounts)  # never above the uncapped awards
    tol = 1e-9 * max(float(amounts.sum()), 1.0)
    for g in np.unique(groups):
        m = groups == g
        total = out[m].sum()
        assert total <= room + tol
        # the cap is used in full when the group asks for more (nothing is cut needlessly)
        assert abs(total - min(amounts[m].sum(), room)) <= tol


@FAST
@given(case=grouped())
def test_in_order_cuts_later_awards_first(case):
    amounts, groups, order, cap, _ = case
    out = cap_by_group(amounts, groups, cap, "in_order", order=order)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        idx = idx[np.argsort(order[idx], kind="stable")]
        cut = out[idx] < amounts[idx] - 1e-9
        if cut.any():  # after the first cut award, every later award gets nothing
            first = int(np.argmax(cut))
            assert np.all(out[idx][first + 1 :] <= 1e-9 * max(float(amounts.sum()), 1.0))


# ─────────────────────────────────────────── schedules ───────────────────────────────────────────


@st.composite
def schedules(draw):
    kind = draw(st.sampled_from(["one_off", "annual", "instalments", "choice"]))
    lag = draw(st.integers(0, 10))
    if kind == "one_off":
        spec = {"kind": "one_off", "lag": lag}
    elif kind == "annual":
        spec = {"kind": "annual", "years": draw(st.integers(1, 30)), "lag": lag}
    elif kind == "instalments":
        weights = draw(st.lists(st.integers(1, 100), min_size=1, max_size=8))
        spec = {"kind": "instalments", "fractions": [w / sum(weights) for w in weights], "lag": lag}
    else:
        spec = {
            "kind": "choice",
            "by": "option",
            "options": {
                "purchase": {"kind": "one_off", "lag": lag},
                "rent": {
                    "kind": "annual",
                    "years": {"by": "tier", "values": {"A": 10, "B": 5, "C": draw(st.integers(1, 30))}},
                },
            },
        }
    return spec


@FAST
@given(spec=schedules(), data=st.data(), n=st.integers(0, 20))
def test_schedule_cash_sums_to_commitment(spec, data, n):
    s = TypeAdapter(Schedule).validate_python(spec)
    amount = data.draw(arrays(np.float64, n, elements=money))
    inputs = {
        "option": np.array(data.draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)), dtype=np.intp),
        "tier": np.array(data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)), dtype=np.intp),
    }
    ctx = EvalContext(n, inputs, {"option": ["purchase", "rent"], "tier": ["A", "B", "C"]}, 1e4)
    committed, cash = cash_by_offset(s, amount, ctx)
    assert cash.shape == (n, s.max_len())
    np.testing.assert_allclose(cash.sum(axis=1), committed, rtol=1e-12, atol=1e-6)
    assert np.all(cash >= 0)
    if spec["kind"] in ("one_off", "instalments"):
        np.testing.assert_allclose(committed, amount, rtol=1e-12)  # the award total, paid in full
    elif spec["kind"] == "annual":
        np.testing.assert_allclose(committed, amount * spec["years"], rtol=1e-12)


@FAST
@given(spec=schedules(), stayed=st.integers(0, 31), amount=money)
def test_attrition_never_pays_more_than_committed(spec, stayed, amount):
    s = TypeAdapter(Schedule).validate_python(spec)
    ctx = EvalContext(
        1,
        {"option": np.array([1]), "tier": np.array([2])},
        {"option": ["purchase", "rent"], "tier": ["A", "B", "C"]},
        1e4,
    )
    committed, full = cash_by_offset(s, np.array([amount]), ctx)
    _, cut = cash_by_offset(s, np.array([amount]), ctx, years_stayed=np.array([stayed]))
    assert cut.sum() <= committed[0] * (1 + 1e-12) + 1e-6
    assert np.all(cut <= full)


# ─────────────────────────────────────────── payer shares ───────────────────────────────────────────


def test_share_matrix_rows_sum_to_one_for_every_regime():
    geo = CAT.geography
    for regime in geo.data.cost_sharing:
        M = geo.share_matrix(regime)
        assert M.shape == (len(geo.jurisdictions), len(geo.payers))
        assert np.all(M >= 0), regime
        np.testing.assert_allclose(M.sum(axis=1), 1.0, rtol=0, atol=1e-12, err_msg=regime)


@FAST
@given(
    amount=money,
    regime=st.sampled_from(sorted(CAT.geography.data.cost_sharing)),
    j=st.sampled_from(CAT.geography.jurisdictions),
)
def test_payer_shares_sum_to_the_amount(amount, regime, j):
    geo = CAT.geography
    split = amount * geo.share_matrix(regime)[geo.jurisdictions.index(j)]
    assert abs(split.sum() - amount) <= 1e-9 * max(amount, 1.0)


@settings(max_examples=25, deadline=None)
@given(contract=st.floats(0, 1e5, allow_nan=False), j=st.sampled_from(CAT.geography.jurisdictions))
def test_calculated_payer_split_sums_to_total(contract, j):
    r = calculate(
        CAT, "jzbf2024-7.tech-intermediary-reward", {"contract": contract}, j, dt.date(2025, 5, 1), explain=False
    )
    assert abs(sum(r.payers.values()) - r.total_cny) <= 1e-6
    for s in r.schedule:
        assert abs(sum(s["payers_cny"].values()) - s["cash_cny"]) <= 1e-6
    assert r.total_cny <= 100_000 + 1e-6  # at most 10万元 per contract
