"""Aggregate caps over groups (per entity-year, per person-year, lifetime), hand-computed."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from fiscal_sim.rules.aggregate import cap_by_group, group_key, group_totals


def arr(*xs):
    return np.array(xs, dtype=float)


# ─────────────────────────────────────────── one group ───────────────────────────────────────────


def test_in_order_serves_earlier_awards_first():
    # contracts' rewards of 6, 10, 10, 10 万元 for one intermediary with 30 left this year
    got = cap_by_group(arr(6, 10, 10, 10), [1, 1, 1, 1], 30, "in_order")
    assert_allclose(got, [6, 10, 10, 4])


def test_proportional_scales_every_award():
    got = cap_by_group(arr(6, 10, 10, 10), [1, 1, 1, 1], 30, "proportional")
    assert_allclose(got, arr(6, 10, 10, 10) * 30 / 36)
    assert got.sum() == pytest.approx(30)


def test_proportional_is_the_default_method():
    assert_allclose(cap_by_group(arr(6, 10, 10, 10), [0] * 4, 30), arr(6, 10, 10, 10) * 30 / 36)


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_total_exactly_at_the_cap_is_unchanged(method):
    assert_array_equal(cap_by_group(arr(10, 20, 70), [5, 5, 5], 100, method), [10, 20, 70])


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_under_the_cap_is_unchanged(method):
    assert_array_equal(cap_by_group(arr(1, 2, 3), [0, 0, 0], 100, method), [1, 2, 3])


def test_in_order_cuts_to_zero_after_the_cap_is_used():
    assert_allclose(cap_by_group(arr(60, 50, 30, 0, 5), [0] * 5, 100, "in_order"), [60, 40, 0, 0, 0])


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_zero_cap_pays_nothing(method):
    assert_array_equal(cap_by_group(arr(3, 4), [0, 0], 0, method), [0, 0])


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_zero_awards_stay_zero(method):
    assert_array_equal(cap_by_group(arr(0, 0), [0, 0], 10, method), [0, 0])


# ─────────────────────────────────────────── several groups ───────────────────────────────────────────


def test_groups_interleaved_in_order():
    amounts = arr(6, 5, 10, 5, 10, 10, 30)
    groups = [1, 2, 1, 2, 1, 1, 3]
    # group 1: 6, 10, 10, 10 with a cap of 20 → 6, 10, 4, 0; group 2: 5, 5 → unchanged; group 3: 30 → 20
    got = cap_by_group(amounts, groups, 20, "in_order")
    assert_allclose(got, [6, 5, 10, 5, 4, 0, 20])


def test_groups_interleaved_proportional():
    amounts = arr(6, 5, 10, 5, 10, 10, 30)
    groups = [1, 2, 1, 2, 1, 1, 3]
    got = cap_by_group(amounts, groups, 20, "proportional")
    assert_allclose(got, [6 * 20 / 36, 5, 10 * 20 / 36, 5, 10 * 20 / 36, 10 * 20 / 36, 20])


def test_string_group_keys():
    got = cap_by_group(arr(8, 8, 8), ["firm-b", "firm-a", "firm-b"], 10, "in_order")
    assert_allclose(got, [8, 8, 2])


def test_per_row_cap_constant_within_group():
    # two groups with different caps (e.g. per tier): 10 for group 0, 100 for group 1
    got = cap_by_group(arr(8, 8, 80, 80), [0, 0, 1, 1], arr(10, 10, 100, 100), "in_order")
    assert_allclose(got, [8, 2, 80, 20])


# ─────────────────────────────────────────── order ───────────────────────────────────────────


def test_in_order_follows_the_order_column():
    # awards dated 2025-09, 2025-03, 2025-06 (as day numbers): served March, June, September
    amounts = arr(10, 10, 10)
    order = np.array([250, 70, 160])
    assert_allclose(cap_by_group(amounts, [0, 0, 0], 15, "in_order", order=order), [0, 10, 5])


def test_ties_in_order_keep_input_order():
    amounts = arr(7, 7, 7, 7)
    order = np.array([2, 1, 1, 2])
    # order 1: rows 1 then 2 (input order); order 2: rows 0 then 3
    assert_allclose(cap_by_group(amounts, [0] * 4, 20, "in_order", order=order), [6, 7, 7, 0])
    assert_allclose(cap_by_group(amounts, [0] * 4, 20, "in_order", order=np.zeros(4)), [7, 7, 6, 0])


def test_order_is_within_groups_only():
    amounts = arr(10, 10, 10, 10)
    groups = [0, 1, 0, 1]
    order = np.array([3, 2, 1, 0])
    # group 0: row 2 (order 1) before row 0 (order 3); group 1: row 3 before row 1
    assert_allclose(cap_by_group(amounts, groups, 15, "in_order", order=order), [5, 5, 10, 10])


# ─────────────────────────────────────────── already used ───────────────────────────────────────────


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_already_used_reduces_the_room(method):
    # a lifetime cap of 300 with 280 used: a new 30 gets 20
    assert_allclose(cap_by_group(arr(30), [0], 300, method, already_used=280), [20])


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_already_used_over_the_cap_pays_nothing(method):
    assert_array_equal(cap_by_group(arr(5, 5), [0, 0], 100, method, already_used=120), [0, 0])
    assert_array_equal(cap_by_group(arr(5), [0], 100, method, already_used=100), [0])


def test_already_used_per_group():
    got = cap_by_group(arr(10, 10, 10, 10), [0, 0, 1, 1], 100, "in_order", already_used=arr(85, 85, 0, 0))
    assert_allclose(got, [10, 5, 10, 10])
    got = cap_by_group(arr(10, 10, 10, 10), [0, 0, 1, 1], 100, "proportional", already_used=arr(85, 85, 0, 0))
    assert_allclose(got, [7.5, 7.5, 10, 10])


# ─────────────────────────────────────────── sizes ───────────────────────────────────────────


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_empty_input(method):
    out = cap_by_group(np.array([]), np.array([], dtype=int), 100, method)
    assert out.shape == (0,)


@pytest.mark.parametrize("method", ["in_order", "proportional"])
def test_one_element(method):
    assert_array_equal(cap_by_group(arr(150), [3], 100, method), [100])
    assert_array_equal(cap_by_group(arr(50), [3], 100, method), [50])


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown aggregate-cap method"):
        cap_by_group(arr(1), [0], 1, "largest_first")  # type: ignore[arg-type]


def test_returns_new_array_aligned_with_input():
    amounts = arr(6, 10, 10, 10)
    for method in ("in_order", "proportional"):
        out = cap_by_group(amounts, [0, 0, 0, 0], 30, method)
        assert out is not amounts and out.shape == amounts.shape
    assert_array_equal(amounts, [6, 10, 10, 10])  # input untouched


def test_many_groups_vectorised():
    rng = np.random.default_rng(3)
    n, k = 200_000, 5_000
    amounts = rng.uniform(0, 10, n)
    groups = rng.integers(0, k, n)
    for method in ("in_order", "proportional"):
        out = cap_by_group(amounts, groups, 100, method)
        totals = np.bincount(groups, weights=out, minlength=k)
        before = np.bincount(groups, weights=amounts, minlength=k)
        assert np.all(totals <= 100 + 1e-6)
        assert_allclose(totals, np.minimum(before, 100), atol=1e-6)
        assert np.all(out <= amounts)


# ─────────────────────────────────────────── group keys ───────────────────────────────────────────


def test_group_totals():
    inverse, totals = group_totals(arr(1, 2, 3, 4), [7, 3, 7, 3])
    assert_array_equal(totals, [6, 4])  # groups in sorted key order: 3, 7
    assert_array_equal(inverse, [1, 0, 1, 0])
    inverse, totals = group_totals(np.array([]), np.array([], dtype=int))
    assert inverse.shape == (0,) and totals.shape == (0,)


def test_group_key_combines_columns():
    entity = np.array([0, 1, 1, 0, 1])
    year = np.array([2, 0, 2, 2, 0])
    key = group_key(entity, year)
    assert key.dtype == np.int64
    # widths: entity 2, year 3 → key = entity × 3 + year
    assert_array_equal(key, [2, 3, 5, 2, 3])


def test_group_key_distinct_pairs_get_distinct_keys():
    rng = np.random.default_rng(1)
    cols = [rng.integers(0, m, 1000) for m in (7, 30, 11)]
    key = group_key(*cols)
    pairs = set(zip(*(c.tolist() for c in cols)))
    assert len(np.unique(key)) == len(pairs)
    by_key = {}
    for k, *row in zip(key.tolist(), *(c.tolist() for c in cols)):
        assert by_key.setdefault(k, tuple(row)) == tuple(row)


def test_group_key_single_column_and_empty():
    assert_array_equal(group_key(np.array([4, 0, 4])), [4, 0, 4])
    assert group_key(np.array([], dtype=int), np.array([], dtype=int)).shape == (0,)


def test_cap_per_entity_year_with_group_key():
    # an intermediary's 100 per year: entity 0 has 60 + 60 in year 0 and 60 in year 1
    entity = np.array([0, 0, 0, 1])
    year = np.array([0, 0, 1, 0])
    got = cap_by_group(arr(60, 60, 60, 60), group_key(entity, year), 100, "in_order")
    assert_allclose(got, [60, 40, 60, 60])
