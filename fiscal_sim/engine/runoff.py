"""Run off the existing commitment book: remaining payments of awards made before the horizon.

Each register row's remaining payments are numbered 0, 1, … from the next one
due. The recipient is present at the start of the horizon; with the program's
annual attrition ``a`` it receives remaining payment ``k`` with probability
``(1 − a)^k`` — the same rule as new awards (payment 0 is certain). Per draw and
row, the number of remaining payments received is ``K ~ Geometric(a)`` (K ≥ 1;
all when ``a = 0``). A recipient who leaves lapses everything not yet paid, in
the year of the first missed payment. Vectorised over (draws × rows × years).
"""

from __future__ import annotations

import numpy as np

from fiscal_sim.engine.simulate import ProgramLedger, blocks_of
from fiscal_sim.register import ProgramBook
from fiscal_sim.uptake.random import stream

NEVER = np.iinfo(np.int64).max


def payments_received(rng: np.random.Generator, attrition: float, n: int, rows: int) -> np.ndarray:
    """Remaining payments each (draw, row) receives: Geometric(attrition), or all when attrition is 0."""
    if attrition <= 0:
        return np.full((n, rows), NEVER, dtype=np.int64)
    return rng.geometric(attrition, size=(n, rows)).astype(np.int64)


def runoff(scen, sp, book: ProgramBook, start: int, stop: int) -> ProgramLedger:
    """The program's existing-commitment ledger for draws ``[start, stop)`` (arrays n × J_p × Y, yuan)."""
    n, J, Y = stop - start, len(sp.jur), len(scen.years)
    R = book.jur.size
    a = sp.prog.spec.uptake.attrition if sp.prog.spec.uptake else 0.0
    K = np.empty((n, R), dtype=np.int64)
    for b, first, nb in blocks_of(scen, start, stop):
        K[first - start : first - start + nb] = payments_received(
            stream(scen.spec.seed, b, "register:" + sp.id), a, nb, R
        )
    due = book.index >= 0  # R × Y
    missed = due[None] & (book.index[None] >= K[:, :, None])  # n × R × Y
    cash_r = np.where(missed, 0.0, book.cash_cny[None])  # n × R × Y
    missed_beyond = (book.beyond_index[None] >= 0) & (book.beyond_index[None] >= K)  # n × R
    lapsed = (book.cash_cny[None] * missed).sum(axis=2) + np.where(missed_beyond, book.beyond_cny[None], 0.0)
    cancel_r = np.zeros((n, R, Y))
    has = missed.any(axis=2)
    d, r = np.nonzero(has)
    cancel_r[d, r, missed[d, r].argmax(axis=1)] = lapsed[d, r]
    place = np.zeros((R, J))
    place[np.arange(R), book.jur] = 1.0
    cash = np.einsum("nry,rj->njy", cash_r, place)
    cancelled = np.einsum("nry,rj->njy", cancel_r, place)
    opening = np.broadcast_to(book.opening_cny @ place, (n, J)).copy()
    return ProgramLedger(np.zeros((n, J, Y)), cash, cancelled, np.zeros((n, J, Y), dtype=np.int64), opening=opening)
