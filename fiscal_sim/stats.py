"""Statistics over draws, streamed chunk by chunk in bounded memory, bit-reproducible.

Moments are kept per fixed block of draws and merged in block order (Chan's
parallel update), so they do not depend on chunk size or worker count.
Quantiles come from a log-spaced histogram with ``BINS_PER_DECADE`` bins per
decade of |value| in yuan (integer counts merge exactly in any order), read
with log-linear interpolation inside a bin and clamped to the exact min and
max: the relative error of a quantile is below 10^(1/100) − 1 ≈ 2.3% and
typically far smaller. Exceedance counts against budget lines are exact.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

BINS_PER_DECADE = 100
DECADES = 13  # |x| from 1 to 1e13 yuan
HALF = BINS_PER_DECADE * DECADES
NBINS = 2 * HALF + 1
ZERO = HALF
QUANTILES = (0.05, 0.10, 0.50, 0.90, 0.95)
SERIES_GROUP = 512


def bin_index(x: np.ndarray) -> np.ndarray:
    """Histogram bin of each value: zero in the middle, positive above, negative below."""
    mag = np.abs(x)
    with np.errstate(divide="ignore"):
        k = np.floor(np.log10(np.where(mag > 0, mag, 1.0)) * BINS_PER_DECADE)
    k = np.clip(k, 0, HALF - 1).astype(np.int64)
    return np.where(x > 0, ZERO + 1 + k, np.where(x < 0, ZERO - 1 - k, ZERO))


def _bin_value(idx: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """A value inside bin ``idx`` at fraction ``frac`` of the bin (log-linear)."""
    k = np.abs(idx - ZERO) - 1
    mag = 10.0 ** ((k + frac) / BINS_PER_DECADE)
    return np.where(idx > ZERO, mag, np.where(idx < ZERO, -(10.0 ** ((k + 1 - frac) / BINS_PER_DECADE)), 0.0))


@dataclass
class _SparseHist:
    index: np.ndarray
    """flat (series · NBINS + bin) positions, unique"""
    counts: np.ndarray


@dataclass
class TopDraws:
    """The ``k`` draws with the largest total, with each part's value in them: exact, and the same set whatever
    the order in which chunks are merged (ties go to the lower draw)."""

    k: int
    draw: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    total: np.ndarray = field(default_factory=lambda: np.zeros(0))
    parts: np.ndarray | None = None
    """len(draw) × parts"""

    def add(self, draw: np.ndarray, parts: np.ndarray, total: np.ndarray | None = None) -> None:
        """Offer draws (their parts, draws × parts; ``total`` defaults to the parts' sum); keep the top ``k``."""
        total = parts.sum(axis=1) if total is None else total
        if self.parts is not None:
            draw, total = np.concatenate([self.draw, draw]), np.concatenate([self.total, total])
            parts = np.concatenate([self.parts, parts])
        keep = np.lexsort((draw, -total))[: self.k]
        self.draw, self.total, self.parts = draw[keep], total[keep], parts[keep]

    def merge(self, other: "TopDraws") -> None:
        if other.parts is not None:
            self.add(other.draw, other.parts, other.total)

    def means(self) -> np.ndarray:
        """Each part's mean over the kept draws, summed in draw order (bit-identical whatever the merges)."""
        if self.parts is None or not self.draw.size:
            return np.zeros(0 if self.parts is None else self.parts.shape[1])
        return self.parts[np.argsort(self.draw)].sum(axis=0) / self.draw.size


@dataclass
class BreachDrivers:
    """Who drives each budget line's breach: for every line series (a payer's year against its budget) and
    every member series (one program's part of that payer's year), the sum over the draws that exceed the line
    of the member's share of the overrun, ``overrun · member / total``, in whole fen (int64: exact, and the same
    whatever the chunks, workers or merge order)."""

    lines: np.ndarray
    """layout rows of the budget-line series"""
    budget: np.ndarray
    """each line's budget, yuan"""
    members: np.ndarray
    """lines × parts: the layout row of each part of a line (-1: not a part of it)"""
    overrun: np.ndarray = field(init=False)
    """lines × parts, fen"""

    def __post_init__(self):
        self.overrun = np.zeros(self.members.shape, dtype=np.int64)

    def add(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Add a chunk's draws: ``values`` (len(rows) × draws) of the layout rows ``rows``; other rows are zero."""
        if not self.lines.size:
            return
        at = np.full(int(max(rows.max(initial=-1), self.members.max(initial=-1), self.lines.max()) + 2), -1)
        at[rows] = np.arange(rows.size)
        padded = np.vstack([values, np.zeros((1, values.shape[1]))])  # index -1: a series zero in every draw
        total = padded[at[self.lines]]  # lines × draws
        over = np.clip(total - self.budget[:, None], 0.0, None)
        hit = np.flatnonzero((over > 0).any(axis=0))  # only draws exceeding some line add anything
        if not hit.size:
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(over[:, hit] > 0, over[:, hit] / total[:, hit], 0.0)  # over > 0: total > budget ≥ 0
        parts = padded[:, hit][np.where(self.members >= 0, at[self.members], -1)]  # lines × parts × hit draws
        self.overrun += np.rint(parts * scale[:, None, :] * 100).astype(np.int64).sum(axis=2)

    def merge(self, other: "BreachDrivers") -> None:
        self.overrun += other.overrun

    def reset(self) -> "BreachDrivers":
        return BreachDrivers(self.lines, self.budget, self.members)


@dataclass
class BlockMoments:
    n: int
    mean: np.ndarray
    m2: np.ndarray


@dataclass
class Accumulator:
    """Streaming statistics for ``size`` series; feed it blocks of draws with :meth:`add`, fold others in with
    :meth:`merge`.

    The histogram counts only non-zero draws (``zeros`` counts the rest, per series): most series are zero
    in most chunks, so a chunk's statistics are a few sparse arrays, and only the accumulator that merges
    chunks (the client's) holds the dense ``size × NBINS`` histogram.
    """

    size: int
    budget: np.ndarray | None = None
    hist: np.ndarray | _SparseHist | None = None
    """non-zero draws by bin: None (none yet), sparse (one chunk's) or dense int32 (size × NBINS, merged)"""
    zeros: np.ndarray = field(init=False)
    """draws exactly zero, per series"""
    blocks: dict[int, BlockMoments] = field(default_factory=dict)
    """blocks not yet folded into the running moments (folding goes strictly in block order)"""
    folded: BlockMoments | None = None
    next_block: int = 0
    exceed: np.ndarray = field(init=False)
    overrun: np.ndarray = field(init=False)
    """sum over draws of the amount above the budget line, in whole fen (int64: exact in any merge order)"""
    lo: np.ndarray = field(init=False)
    hi: np.ndarray = field(init=False)
    top: TopDraws | None = None
    """the worst draws by some total and their parts (the headline's tail contributions), when kept"""
    drivers: BreachDrivers | None = None
    """each budget line's overrun split among its parts (the headline's drivers of a breach), when kept"""

    def __post_init__(self):
        self.zeros = np.zeros(self.size, dtype=np.int64)
        self.exceed = np.zeros(self.size, dtype=np.int64)
        self.overrun = np.zeros(self.size, dtype=np.int64)
        self.lo = np.full(self.size, np.inf)
        self.hi = np.full(self.size, -np.inf)
        if self.budget is None:
            self.budget = np.full(self.size, np.inf)

    def add(self, blocks: list[tuple[int, int, int]], values: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Add a chunk of draws covering ``blocks`` of (block, first, n): ``values`` (series × n_draws) of the
        series ``rows`` (default: all, in order); series not in ``rows`` are zero in every draw of the chunk.

        Series zero in every draw have statistics known without reading them (mean and m2 exactly 0, every
        draw a zero), so only the live rows are read; the results are the same as treating every row alike.
        """
        v = np.asarray(values)
        rows = np.arange(self.size) if rows is None else np.asarray(rows, dtype=np.int64)
        n = v.shape[1]
        keep = np.flatnonzero(v.any(axis=1))
        live, lv = rows[keep], v[keep]
        for b, first, nb in blocks:
            part = lv[:, first : first + nb]
            mean, m2 = np.zeros(self.size), np.zeros(self.size)
            mean[live] = part.mean(axis=1)
            m2[live] = ((part - mean[live, None]) ** 2).sum(axis=1)
            self.blocks[b] = BlockMoments(nb, mean, m2)
        self.zeros += n
        self.zeros[live] -= np.count_nonzero(lv, axis=1)
        index, counts = [], []
        for lo in range(0, live.size, SERIES_GROUP):  # bincount by groups of series: small, dense, fast
            part = lv[lo : lo + SERIES_GROUP]
            at = np.flatnonzero(part)  # zeros are counted apart
            binned = np.bincount(at // n * NBINS + bin_index(part.reshape(-1)[at]), minlength=part.shape[0] * NBINS)
            at = np.flatnonzero(binned)
            index.append(live[lo + at // NBINS] * NBINS + at % NBINS)
            counts.append(binned[at].astype(np.int32))
        if index:
            self._add_hist(_SparseHist(np.concatenate(index), np.concatenate(counts)))
        lines = np.flatnonzero(np.isfinite(self.budget[rows]))  # type: ignore[index]  # only these can exceed
        over = np.clip(v[lines] - self.budget[rows[lines], None], 0.0, None)  # type: ignore[index]
        np.add.at(self.exceed, rows[lines], (over > 0).sum(axis=1))
        np.add.at(self.overrun, rows[lines], np.rint(over * 100).astype(np.int64).sum(axis=1))
        self.lo = np.minimum(self.lo, 0.0, where=self.zeros > 0, out=self.lo)
        self.hi = np.maximum(self.hi, 0.0, where=self.zeros > 0, out=self.hi)
        if live.size:
            self.lo[live] = np.minimum(self.lo[live], lv.min(axis=1))
            self.hi[live] = np.maximum(self.hi[live], lv.max(axis=1))
        if self.drivers is not None:
            self.drivers.add(rows, v)

    def _add_hist(self, other: _SparseHist | np.ndarray) -> None:
        if self.hist is None and isinstance(other, _SparseHist):
            self.hist = _SparseHist(other.index.copy(), other.counts.copy())
            return
        if not isinstance(self.hist, np.ndarray):  # the first merge makes the histogram dense
            dense = np.zeros((self.size, NBINS), dtype=np.int32)
            if self.hist is not None:
                dense.reshape(-1)[self.hist.index] = self.hist.counts
            self.hist = dense
        if isinstance(other, _SparseHist):
            self.hist.reshape(-1)[other.index] += other.counts  # positions are unique within one sparse histogram
        else:
            self.hist += other

    def counts(self) -> np.ndarray:
        """The full histogram (size × NBINS, zeros in the middle bin)."""
        out = np.zeros((self.size, NBINS), dtype=np.int64)
        if isinstance(self.hist, _SparseHist):
            out.reshape(-1)[self.hist.index] = self.hist.counts
        elif self.hist is not None:
            out += self.hist
        out[:, ZERO] = self.zeros
        return out

    def reset(self) -> None:
        """Empty the accumulator."""
        self.__init__(
            self.size,
            self.budget,
            top=None if self.top is None else TopDraws(self.top.k),  # type: ignore[misc]
            drivers=None if self.drivers is None else self.drivers.reset(),
        )

    def __getstate__(self) -> dict:
        """Pickle the histogram sparsely (most bins are empty): workers send KBs, not the dense array."""
        state = dict(self.__dict__)
        if isinstance(self.hist, np.ndarray):
            flat = self.hist.reshape(-1)
            nz = np.flatnonzero(flat)
            state["hist"] = _SparseHist(nz, flat[nz])
        return state

    def detached(self) -> "Accumulator":
        """A copy sharing no memory with this one (what a worker returns)."""
        return copy.deepcopy(self)

    def merge(self, other: "Accumulator") -> None:
        """Fold in another accumulator of the same series (from another chunk or worker)."""
        if other.hist is not None:
            self._add_hist(other.hist)
        self.zeros += other.zeros
        self.blocks.update(other.blocks)
        self.exceed += other.exceed
        self.overrun += other.overrun
        self.lo = np.minimum(self.lo, other.lo)
        self.hi = np.maximum(self.hi, other.hi)
        if other.top is not None:
            if self.top is None:
                self.top = TopDraws(other.top.k)
            self.top.merge(other.top)
        if other.drivers is not None:
            if self.drivers is None:
                self.drivers = other.drivers.reset()
            self.drivers.merge(other.drivers)
        self.fold()

    def fold(self) -> None:
        """Fold pending blocks into the running moments, strictly in block order (Chan et al.).

        The result depends only on the blocks, not on which chunk or worker
        produced them or when; memory stays bounded by the blocks in flight.
        """
        while self.next_block in self.blocks:
            blk = self.blocks.pop(self.next_block)
            f = self.folded
            if f is None:
                self.folded = BlockMoments(blk.n, blk.mean.copy(), blk.m2.copy())
            else:
                tot = f.n + blk.n
                delta = blk.mean - f.mean
                self.folded = BlockMoments(
                    tot, f.mean + delta * (blk.n / tot), f.m2 + blk.m2 + delta**2 * (f.n * blk.n / tot)
                )
            self.next_block += 1

    @property
    def n(self) -> int:
        return (self.folded.n if self.folded else 0) + sum(b.n for b in self.blocks.values())

    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sample variance over all draws."""
        self.fold()
        if self.blocks:
            raise ValueError(f"blocks {sorted(self.blocks)} arrived without block {self.next_block}")
        f = self.folded
        if f is None:
            return np.zeros(self.size), np.zeros(self.size)
        return f.mean, (f.m2 / (f.n - 1) if f.n > 1 else np.zeros(self.size))

    def quantiles(self, qs: list[float], tail_level: float) -> tuple[np.ndarray, np.ndarray]:
        """Quantiles ``qs`` (len(qs) × size) and the tail mean beyond ``tail_level`` (size), from the histogram.

        Series zero in every draw are zero throughout; the others are processed in groups, so one cumulative
        sum serves every quantile and temporaries stay small. Quantiles are read log-linearly inside their
        bin and clamped to the exact min and max.
        """
        n = self.n
        out = np.zeros((len(qs), self.size))
        tail = np.zeros(self.size)
        if self.hist is None:
            return out, tail
        if isinstance(self.hist, _SparseHist):
            self._add_hist(np.zeros((self.size, NBINS), dtype=np.int32))
        centres = _bin_value(np.arange(NBINS), np.full(NBINS, 0.5))
        moving = np.flatnonzero(self.zeros < n)
        for lo in range(0, moving.size, SERIES_GROUP):
            at = moving[lo : lo + SERIES_GROUP]
            h = self.hist[at].astype(np.int64)  # type: ignore[index]
            h[:, ZERO] = self.zeros[at]
            cum = np.cumsum(h, axis=1)
            rows = np.arange(at.size)
            # each row's cumulative counts run 0..n: lifted by row × (n + 1) they are one sorted array, so one
            # searchsorted finds every row's bin (the count of entries below the target, as (cum < target).sum)
            lift = rows * (n + 1)
            flat = (cum + lift[:, None]).ravel()
            for k, q in enumerate(list(qs) + [tail_level]):
                target = q * n
                idx = np.searchsorted(flat, target + lift, side="left") - rows * NBINS
                idx = np.minimum(idx, NBINS - 1)
                before = np.where(idx > 0, cum[rows, np.maximum(idx - 1, 0)], 0)
                frac = np.clip((target - before) / np.maximum(h[rows, idx], 1), 0.0, 1.0)
                value = np.clip(_bin_value(idx, frac), self.lo[at], self.hi[at])
                if k < len(qs):
                    out[k, at] = value
                else:  # TVaR: mean of the worst (1 − level) draws: bins above VaR's, plus part of its bin
                    above = np.arange(NBINS)[None, :] > idx[:, None]
                    above_n = (h * above).sum(axis=1)
                    above_sum = (h * above * centres[None, :]).sum(axis=1)
                    in_bin = np.clip(max((1 - q) * n, 1.0) - above_n, 0, None)
                    t = (above_sum + in_bin * value) / np.maximum(above_n + in_bin, 1)
                    tail[at] = np.clip(np.maximum(t, value), self.lo[at], self.hi[at])
        return out, tail


def wilson(k: np.ndarray, n: int, z: float = 1.959963984540054) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion k/n (95% by default)."""
    p = k / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def summarise(acc: Accumulator, level: float) -> dict[str, np.ndarray]:
    """Columns of the summary for every series: moments, quantiles, VaR/TVaR, exceedance."""
    n = acc.n
    mean, var = acc.moments()
    sd = np.sqrt(var)
    out: dict[str, np.ndarray] = {
        "draws": np.full(acc.size, n, dtype=np.int32),
        "mean_cny": mean,
        "sd_cny": sd,
        "mcse_cny": sd / np.sqrt(n),
    }
    qs, tvar = acc.quantiles(list(QUANTILES) + [level], level)
    for k, q in enumerate(QUANTILES):
        out[f"p{int(round(q * 100)):02d}_cny"] = qs[k]
    out["var_cny"], out["tvar_cny"] = qs[-1], tvar
    out["min_cny"], out["max_cny"] = acc.lo.copy(), acc.hi.copy()
    has_budget = np.isfinite(acc.budget)  # type: ignore[arg-type]
    lo, hi = wilson(acc.exceed.astype(float), n)
    out["budget_cny"] = np.where(has_budget, acc.budget, np.nan)  # type: ignore[arg-type]
    out["p_exceed"] = np.where(has_budget, acc.exceed / n, np.nan)
    out["p_exceed_lo"] = np.where(has_budget, lo, np.nan)
    out["p_exceed_hi"] = np.where(has_budget, hi, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["overrun_if_exceeded_cny"] = np.where(has_budget & (acc.exceed > 0), acc.overrun / 100 / acc.exceed, np.nan)
    return out
