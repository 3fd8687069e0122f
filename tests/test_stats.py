"""Streaming statistics: exact moments, histogram quantiles within their stated resolution, exceedance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fiscal_sim.stats import BINS_PER_DECADE, Accumulator, TopDraws, bin_index, summarise, wilson

RESOLUTION = 10 ** (1 / BINS_PER_DECADE) - 1  # one bin's relative width


def feed(values: np.ndarray, block: int, chunk: int, budget=None) -> Accumulator:
    """Feed (series × draws) values in chunks of ``chunk`` draws split into blocks of ``block``."""
    acc = Accumulator(values.shape[0], budget)
    n = values.shape[1]
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        part = Accumulator(values.shape[0], budget)
        blocks = [(b // block, b - start, min(block, stop - b)) for b in range(start, stop, block)]
        part.add(blocks, values[:, start:stop])
        acc.merge(part)
    return acc


@pytest.fixture(scope="module")
def values():
    rng = np.random.default_rng(3)
    return np.vstack(
        [
            rng.lognormal(np.log(5e6), 0.6, 3000),
            rng.poisson(500, 3000) * 2e5,
            np.where(rng.random(3000) < 0.7, 0.0, rng.gamma(2, 1e5, 3000)),
            np.full(3000, 123456.0),
        ]
    )


def test_moments_are_exact(values):
    acc = feed(values, 100, 700)
    mean, var = acc.moments()
    np.testing.assert_allclose(mean, values.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(var, values.var(axis=1, ddof=1), rtol=1e-9)


def test_quantiles_within_one_bin_of_exact(values):
    acc = feed(values, 100, 700)
    qs, _ = acc.quantiles([0.05, 0.5, 0.9, 0.95], 0.95)
    exact = np.quantile(values, [0.05, 0.5, 0.9, 0.95], axis=1)
    np.testing.assert_allclose(qs, exact, rtol=RESOLUTION, atol=1e-9)


def test_constant_series_is_exact(values):
    acc = feed(values, 100, 700)
    qs, tail = acc.quantiles([0.05, 0.5, 0.95], 0.95)
    assert np.all(qs[:, 3] == 123456.0) and tail[3] == 123456.0


def test_tail_mean_close_to_exact_expected_shortfall(values):
    acc = feed(values, 100, 700)
    qs, tail = acc.quantiles([0.95], 0.95)
    for i in range(3):
        v = np.sort(values[i])
        es = v[int(np.floor(0.95 * v.size)) :].mean()
        assert tail[i] == pytest.approx(es, rel=2 * RESOLUTION)


def test_bitwise_identical_whatever_the_chunking(values):
    a = summarise(feed(values, 100, 100), 0.95)
    b = summarise(feed(values, 100, 1300), 0.95)
    c = summarise(feed(values, 100, 3000), 0.95)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        np.testing.assert_array_equal(a[k], c[k])


def test_exceedance_counts_and_wilson(values):
    budget = np.array([6e6, np.inf, 1e5, 1e6])
    acc = feed(values, 100, 700, budget)
    out = summarise(acc, 0.95)
    assert out["p_exceed"][0] == pytest.approx((values[0] > 6e6).mean())
    assert np.isnan(out["p_exceed"][1])
    assert out["p_exceed"][3] == 0.0
    lo, hi = wilson(np.array([0.0, 50.0, 100.0]), 100)
    assert lo[0] == pytest.approx(0, abs=1e-12) and hi[0] == pytest.approx(0.0370, abs=1e-4)
    assert lo[1] == pytest.approx(0.4038, abs=1e-4) and hi[1] == pytest.approx(0.5962, abs=1e-4)
    assert hi[2] == 1


def test_blocks_out_of_order_are_folded_in_order(values):
    a = Accumulator(values.shape[0])
    parts = []
    for start in range(0, 3000, 500):
        p = Accumulator(values.shape[0])
        p.add([(start // 100 + k, k * 100, 100) for k in range(5)], values[:, start : start + 500])
        parts.append(p)
    for p in reversed(parts):
        a.merge(p)
    np.testing.assert_array_equal(a.moments()[0], feed(values, 100, 500).moments()[0])


def test_bin_index_signs_and_zero():
    idx = bin_index(np.array([-5.0, 0.0, 5.0, 1e20, 0.5]))
    assert idx[0] < idx[1] < idx[2] < idx[3] and idx[4] > idx[1]


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(1, 5), st.integers(1, 200), st.randoms(use_true_random=False))
def test_top_draws_are_the_exact_worst_whatever_the_chunks_and_merge_order(k, parts, draws, rnd):
    """TopDraws keeps the k largest totals (ties to the lower draw) and its means are bit-identical whatever the
    chunking and the order chunks are merged in."""
    rng = np.random.default_rng(rnd.randrange(2**32))
    values = np.round(rng.gamma(1.0, 10.0, (draws, parts)), 1)  # rounding makes ties between totals likely
    cuts = sorted(rnd.sample(range(1, draws), min(draws - 1, rnd.randrange(4)))) if draws > 1 else []
    pieces = []
    for a, b in zip([0, *cuts], [*cuts, draws]):
        t = TopDraws(k)
        t.add(np.arange(a, b), values[a:b])
        pieces.append(t)
    rnd.shuffle(pieces)
    merged = TopDraws(k)
    for t in pieces:
        merged.merge(t)
    total = values.sum(axis=1)
    worst = sorted(range(draws), key=lambda d: (-total[d], d))[:k]
    assert sorted(merged.draw.tolist()) == sorted(worst)
    whole = TopDraws(k)
    whole.add(np.arange(draws), values)
    np.testing.assert_array_equal(merged.means(), whole.means())
    np.testing.assert_allclose(merged.means(), values[worst].mean(axis=0), rtol=1e-12)
