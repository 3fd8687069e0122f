"""The simpy model of one draw: calls, review, approval, yearly payment batches, appropriations, arrears.

What happens to an applicant (one award of the engine, with its instalments
after attrition):

1. **Application.** It applies at a known instant inside one of its award
   year's call windows (an arrivals process wakes at each application).
2. **Review.** It waits for a reviewer (a simpy ``Resource`` of capacity
   ``reviewers``), is reviewed for its review time, and is decided at the end
   of the review. The queue is *FIFO* (earlier application first) or by
   *priority* (lower rank first, then FIFO). Ties on the application instant
   break by the applicant's order in the draw (pipeline program order, then
   the engine's order). Unbounded review skips the queue: decision =
   application + review time.
3. **Rejection** (probability ``1 − approval_rate``) cancels the whole award at
   the decision: nothing of it is ever due.
4. **Dues.** An approved award's first instalment falls due at the first
   batch at or after its decision, and no earlier than the award year +
   offset + ``lag_batches``; every later instalment follows the schedule one
   year apart from there (the schedule runs on from the first payment, so an
   award decided after its year's batch slips by one year as a whole).
5. **Payment.** A batch process wakes at each batch instant (after the
   approvals of that instant) and pays what is due from each payer's
   appropriation for that year. Order: arrears first (oldest due batch
   first), then the batch's new dues; within a due batch by queue rank, then
   decision instant, then applicant order, then instalment. An instalment is
   paid as a whole, jointly by all its payers (their shares), or not at all.
   When a payer's appropriation cannot cover the next instalment it funds,
   that payer stops for the batch: its later instalments in the order wait
   too (no overtaking by smaller claims), the appropriation is *exhausted*
   at that batch, and the unpaid instalments carry as **arrears** to the next
   batch. Unspent appropriation lapses at year end.

The appropriation of a payer and year is a level drawn down only at batch
instants; nothing ever blocks on it (what does not fit waits as arrears), so
a plain number per payer and year stands in for a simpy ``Container``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Generator, SupportsIndex

import numpy as np
import simpy
from simpy.resources.resource import Request

TOL_CNY = 1e-3
"""an instalment fits when it exceeds the level by at most a tenth of a fen (float sums)"""


@dataclass
class Settings:
    """The pipeline's rules for the model, in days from 1 January of the first horizon year, and yuan."""

    reviewers: int | None
    lag: int
    batch_time: np.ndarray
    batch_year: np.ndarray
    first_batch: np.ndarray
    appropriation: np.ndarray
    """(P × Y) yuan, inf = unbounded"""


@dataclass
class Applicants:
    """One draw's applicants, in the draw's order (the tie-breaking order)."""

    arrival: np.ndarray
    review: np.ndarray
    approved: np.ndarray
    rank: np.ndarray
    year: np.ndarray
    cash: np.ndarray
    """(n × L) instalment amounts by year offset from the award year, yuan (0: no instalment)"""
    share: np.ndarray
    """(n × P) each payer's share of the applicant's instalments"""


@dataclass
class Outcome:
    """What happened to one draw's applicants. Batch indices: ``B`` means after the horizon."""

    decided: np.ndarray
    """(n,) decision instant (the model runs every review to its end, even after the horizon)"""
    due: np.ndarray
    """(n × L) batch at which each instalment fell due; -1: no instalment or rejected; B: after the horizon"""
    paid: np.ndarray
    """(n × L) batch at which each instalment was paid; -1: not paid within the horizon"""
    exhausted: np.ndarray
    """(P × Y) batch at which the payer's appropriation ran out that year; -1: it did not"""
    left: np.ndarray
    """(P × Y) appropriation left after the year's batches (inf: unbounded)"""
    events: int


class _Claim(Request):
    """A review request ordered by ``key`` (rank, then application order)."""

    __slots__ = ("key",)

    def __init__(self, resource: simpy.Resource, key: int):
        self.key = key
        super().__init__(resource)

    def __lt__(self, other: "_Claim") -> bool:
        return self.key < other.key


class _HeapQueue(list):
    """Waiting requests as a binary heap (simpy only appends, pops the head and removes)."""

    def append(self, item) -> None:
        heapq.heappush(self, item)

    def pop(self, index: SupportsIndex = -1) -> Any:
        assert index == 0, "the review desk serves the head of its queue only"
        return heapq.heappop(self)

    def remove(self, item) -> None:
        list.remove(self, item)
        heapq.heapify(self)


class ReviewDesk(simpy.Resource):
    """Reviewers: a ``Resource`` whose queue is served by key (O(log n) per request)."""

    PutQueue = _HeapQueue


def _arrivals(env: simpy.Environment, desk: ReviewDesk, app: Applicants, decided: np.ndarray) -> Generator:
    """Each applicant at its application instant: a review request and two callbacks.

    The applicant's "process" is as thin as simpy allows: no generator and no
    process events of its own, just its request for a reviewer, whose grant
    starts the review (a timeout), whose end releases the reviewer and records
    the decision instant.
    """
    n = app.arrival.size
    order = np.argsort(app.arrival, kind="stable")
    keys = (app.rank[order] * n + np.arange(n)).tolist()
    times, days = app.arrival[order].tolist(), app.review[order].tolist()
    timeout, release = env.timeout, desk.release

    def applicant(i: int, key: int, review_days: float) -> None:
        def review(req: _Claim) -> None:
            timeout(review_days).callbacks.append(decide)

        def decide(_event) -> None:
            release(req)
            decided[i] = env.now

        req = _Claim(desk, key)
        req.callbacks.append(review)

    for pos, i in enumerate(order.tolist()):
        if times[pos] > env.now:
            yield timeout(times[pos] - env.now)
        applicant(i, keys[pos], days[pos])


def pay_in_order(parts: np.ndarray, level: np.ndarray, tol: float = TOL_CNY) -> tuple[np.ndarray, np.ndarray]:
    """Pay instalments in order from payers' levels: ``(paid, short)``.

    ``parts`` (k × P): each instalment's amount per payer, in payment order;
    ``level`` (P,): what each payer has left (inf: unbounded). An instalment is
    paid when every payer it needs can cover its part and none of them has
    stopped; a payer that cannot cover its part stops (``short``) and pays
    nothing more in this batch. A payer that could pay its part of an
    instalment blocked by another payer keeps its money and goes on.
    """
    k = parts.shape[0]
    paid = np.ones(k, dtype=bool)
    short = np.zeros(level.size, dtype=bool)
    bounded = np.flatnonzero(np.isfinite(level))
    if k == 0 or bounded.size == 0:
        return paid, short
    need = parts[:, bounded]
    involved = need > 0
    if involved.sum(axis=1).max() <= 1:  # every instalment meets at most one bound: a prefix per payer
        for c, p in enumerate(bounded):
            rows = np.flatnonzero(involved[:, c])
            fits = np.cumsum(need[rows, c]) <= level[p] + tol
            if not fits.all():
                paid[rows[~fits]] = False
                short[p] = True
        return paid, short
    return _pay_loop(need, involved, level[bounded], bounded, paid, short, tol)


def _pay_loop(
    need: np.ndarray,
    involved: np.ndarray,
    level: np.ndarray,
    bounded: np.ndarray,
    paid: np.ndarray,
    short: np.ndarray,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The general case of :func:`pay_in_order`: instalments needing several bounded payers."""
    left = level.tolist()
    stopped = [False] * len(left)
    rows = np.flatnonzero(involved.any(axis=1))
    for r, cols, amounts in zip(
        rows.tolist(), (np.flatnonzero(involved[r]).tolist() for r in rows), need[rows].tolist()
    ):
        lacking = [c for c in cols if not stopped[c] and amounts[c] > left[c] + tol]
        for c in lacking:
            stopped[c] = True
            short[bounded[c]] = True
        if lacking or any(stopped[c] for c in cols):
            paid[r] = False
            continue
        for c in cols:
            left[c] -= amounts[c]
    return paid, short


class Book:
    """The payment side of one draw: dues, payments, appropriations, arrears."""

    def __init__(self, app: Applicants, s: Settings):
        self.app, self.s = app, s
        n, L = app.cash.shape
        self.L = L
        self.B = s.batch_time.size
        self.scheduled = np.zeros(n, dtype=bool)
        self.due = np.full(n * L, -1, dtype=np.int64)
        self.paid = np.full(n * L, -1, dtype=np.int64)
        self.level = s.appropriation.astype(float).copy()
        self.exhausted = np.full(s.appropriation.shape, -1, dtype=np.int64)
        self.year_of = np.append(s.batch_year, s.first_batch.size - 1)  # batch B → year Y

    def schedule(self, who: np.ndarray, b: int) -> None:
        """Dues of awards approved since the previous batch (``b``: the first batch at/after their decision)."""
        app, s, L = self.app, self.s, self.L
        cash = app.cash[who]
        has = cash > 0
        t0 = np.argmax(has, axis=1)
        Y = s.first_batch.size - 1
        nominal = app.year[who] + t0 + s.lag
        first = np.maximum(b, s.first_batch[np.minimum(nominal, Y)])
        shift = np.maximum(self.year_of[first] - nominal, 0)
        years = app.year[who][:, None] + np.arange(L)[None, :] + s.lag + shift[:, None]
        due = np.maximum(first[:, None], s.first_batch[np.minimum(years, Y)])
        due = np.where(has, due, -1)
        self.due.reshape(-1, L)[who] = due

    def batch(self, b: int, now: float, decided: np.ndarray) -> None:
        """Pay batch ``b``: schedule new approvals, then pay arrears and dues in order."""
        app, L = self.app, self.L
        new = ~self.scheduled & (decided <= now)
        self.scheduled |= new
        ok = np.flatnonzero(new & app.approved)
        if ok.size:
            self.schedule(ok, b)
        cand = np.flatnonzero((self.due >= 0) & (self.due <= b) & (self.paid < 0))
        if cand.size == 0:
            return
        i, t = np.divmod(cand, L)
        order = np.lexsort((t, i, decided[i], app.rank[i], self.due[cand]))
        cand, i = cand[order], i[order]
        parts = app.cash.reshape(-1)[cand][:, None] * app.share[i]
        y = self.s.batch_year[b]
        ok_pay, short = pay_in_order(parts, self.level[:, y])
        self.paid[cand[ok_pay]] = b
        self.level[:, y] -= parts[ok_pay].sum(axis=0)
        hit = short & (self.exhausted[:, y] < 0)
        self.exhausted[hit, y] = b

    def outcome(self, decided: np.ndarray, events: int) -> Outcome:
        app, L = self.app, self.L
        due = self.due.reshape(-1, L).copy()
        late = app.approved & ~self.scheduled & np.isfinite(decided)  # approved after the last batch
        due[late] = np.where(app.cash[late] > 0, self.B, -1)
        return Outcome(decided, due, self.paid.reshape(-1, L), self.exhausted, self.level, events)


def _batches(env: simpy.Environment, s: Settings, book: Book, decided: np.ndarray) -> Generator:
    """The yearly payment batches (政策兑现): one wake-up per batch instant."""
    for b, t in enumerate(s.batch_time.tolist()):
        yield env.timeout(t - env.now)
        yield env.timeout(0)  # decisions completing at this very instant are paid in this batch
        book.batch(b, env.now, decided)


def run_draw(app: Applicants, s: Settings) -> Outcome:
    """Simulate one draw's applicants through review and payment batches."""
    env = simpy.Environment()
    n = app.arrival.size
    if s.reviewers is None:
        decided = app.arrival + app.review
    else:
        decided = np.full(n, np.inf)
        env.process(_arrivals(env, ReviewDesk(env, s.reviewers), app, decided))
    book = Book(app, s)
    env.process(_batches(env, s, book, decided))
    env.run()
    return book.outcome(decided, _events(env))


def _events(env: simpy.Environment) -> int:
    """Events the environment scheduled (simpy numbers every event it schedules)."""
    counter = getattr(env, "_eid", None)
    return int(next(counter)) if counter is not None else 0
