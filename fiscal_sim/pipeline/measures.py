"""From the model's outcomes to money by year: the ledger's new cash and the per-draw pipeline table.

Rows of the table: (draw, fiscal_year, pipeline, program, payer) for every
payer a program's cost sharing uses, plus ``program = ALL`` rows (the
pipeline's total per payer). Every draw has every row (zeros included), so
averages over draws in a BI tool are right. Columns (yuan in ``*_cny``):

- ``committed_cny``: awards made that year (the engine's commitments);
- ``entitled_cny``: what the engine would pay that year without the pipeline;
- ``paid_cny``: what the pipeline paid that year;
- ``cancelled_cny``: attrition lapses (engine timing) plus rejected awards (in the decision year);
- ``arrears_cny``: instalments due at a batch but unpaid at year end;
- ``not_yet_due_cny``: instalments of applications still in review, or approved but falling due in a later year
  (including after the horizon);
- ``outstanding_cny``: committed − paid − cancelled, cumulated. It equals arrears + not yet due, except
  that commitments attrition will lapse later stay in it until the engine books the lapse;
- ``backlog_applications``: applications awaiting a decision at year end (applications whose awards
  the payer co-funds; do not add up over payers);
- ``first_payments``, ``wait_mean_days``, ``wait_p90_days``: applicants first paid (by that payer) in
  the year and their wait from application to that payment, in days (null when none);
- ``appropriation_cny`` / ``appropriation_left_cny``: the payer's appropriation for the pipeline and what
  was left after the year's batches (``ALL`` rows only; null when unbounded);
- ``exhausted`` / ``exhausted_on``: whether and on which batch date the payer's appropriation could not
  pay a due instalment that year (the pipeline's envelope; the same on every program row of the payer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fiscal_sim.engine.simulate import ProgramLedger
from fiscal_sim.pipeline.chunk import ChunkApplicants, ChunkOutcome
from fiscal_sim.pipeline.plan import Plan
from fiscal_sim.scenario import Scenario

ALL = "ALL"
MONEY = (
    "committed_cny",
    "entitled_cny",
    "paid_cny",
    "cancelled_cny",
    "arrears_cny",
    "not_yet_due_cny",
    "outstanding_cny",
)

SCHEMA = pa.schema(
    [
        ("draw", pa.int32()),
        ("fiscal_year", pa.int16()),
        ("pipeline", pa.dictionary(pa.int16(), pa.string())),
        ("program", pa.dictionary(pa.int16(), pa.string())),
        ("payer", pa.dictionary(pa.int16(), pa.string())),
        *[(m, pa.float64()) for m in MONEY],
        ("backlog_applications", pa.int32()),
        ("first_payments", pa.int32()),
        ("wait_mean_days", pa.float64()),
        ("wait_p90_days", pa.float64()),
        ("appropriation_cny", pa.float64()),
        ("appropriation_left_cny", pa.float64()),
        ("exhausted", pa.bool_()),
        ("exhausted_on", pa.date32()),
    ]
)


@dataclass
class Labels:
    """Dictionaries shared by every chunk and pipeline (so chunk tables concatenate as they are)."""

    pipelines: list[str]
    programs: list[str]
    payers: list[str]

    @staticmethod
    def of(scen: Scenario, plans: list[Plan]) -> "Labels":
        return Labels(
            [p.name for p in plans], [pid for p in plans for pid in p.programs] + [ALL], list(scen.geography.payers)
        )


def _cube(n: int, K: int, J: int, Y: int, d, k, j, y, w) -> np.ndarray:
    """Sum ``w`` into (n × K × J × Y+1); year index Y collects what falls after the horizon."""
    key = ((d * K + k) * J + j) * (Y + 1) + y
    return np.bincount(key, weights=w, minlength=n * K * J * (Y + 1)).reshape(n, K, J, Y + 1)


def grouped_mean_p90(key: np.ndarray, value: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and 90th percentile (linear interpolation, as numpy's default) of ``value`` by ``key``."""
    count = np.bincount(key, minlength=size)
    mean = np.full(size, np.nan)
    p90 = np.full(size, np.nan)
    has = count > 0
    mean[has] = np.bincount(key, weights=value, minlength=size)[has] / count[has]
    if key.size:
        order = np.lexsort((value, key))
        v = value[order]
        startof = np.concatenate([[0], np.cumsum(count)[:-1]])
        c = count[has]
        h = (c - 1) * 0.9
        lo = np.floor(h).astype(np.int64)
        base = startof[has] + lo
        nxt = startof[has] + np.minimum(lo + 1, c - 1)
        p90[has] = v[base] + (h - lo) * (v[nxt] - v[base])
    return count, mean, p90


def measure(
    scen: Scenario,
    plan: Plan,
    labels: Labels,
    ch: ChunkApplicants,
    out: ChunkOutcome,
    ledgers: dict[str, ProgramLedger],
    start: int,
) -> pa.Table:
    """Replace the pipeline programs' ledger cash (and add rejections to cancellations); return the table."""
    cal = plan.cal
    n = ch.bounds.size - 1
    K, Jg, P, Y = len(plan.programs), len(scen.geography.jurisdictions), len(plan.payers), cal.n_years
    m, L = ch.cash.shape
    d = np.repeat(np.arange(n), np.diff(ch.bounds))
    year_of = np.append(cal.batch_year, Y)  # batch index B (after the horizon) → year Y
    dec_year = np.minimum(np.searchsorted(cal.year_end, out.decided, side="right"), Y)
    rejected = np.isfinite(out.decided) & ~ch.approved

    def cube(y: np.ndarray, w: np.ndarray) -> np.ndarray:
        return _cube(n, K, Jg, Y, d, ch.program, ch.jur, y, w)

    paid_year = np.where(out.paid >= 0, year_of[np.maximum(out.paid, 0)], Y)
    due_year = np.where(out.due >= 0, year_of[np.maximum(out.due, 0)], Y)
    paid: np.ndarray = np.sum([cube(paid_year[:, t], ch.cash[:, t] * (out.paid[:, t] >= 0)) for t in range(L)], axis=0)
    key = (d * K + ch.program) * Jg + ch.jur

    def stock(lo: np.ndarray, hi: np.ndarray, w: np.ndarray) -> np.ndarray:
        """(n × K × J × Y): the sum of ``w`` over items outstanding at each year end (lo <= y < hi)."""
        flat_key = np.broadcast_to(key[:, None], lo.shape).reshape(-1) if lo.ndim == 2 else key
        lo, hi, w = lo.reshape(-1), hi.reshape(-1), w.reshape(-1)
        live = (w != 0) & (hi > lo)
        flat_key, lo, hi, w = flat_key[live], lo[live], hi[live], w[live]
        res = np.zeros((n * K * Jg, Y))
        for y in range(Y):
            on = (lo <= y) & (hi > y)
            res[:, y] = np.bincount(flat_key[on], weights=w[on], minlength=n * K * Jg)
        return res.reshape(n, K, Jg, Y)

    item_year = np.broadcast_to(ch.year[:, None], ch.cash.shape)
    arrears = stock(np.where(out.due >= 0, due_year, Y), paid_year, ch.cash)
    nyd = stock(item_year, np.where(ch.approved[:, None], due_year, dec_year[:, None]), ch.cash)
    rejected_j = cube(dec_year, ch.cash.sum(axis=1) * rejected)
    backlog = stock(ch.year, dec_year, np.ones(m))

    cols = {name: np.zeros((n, K + 1, P, Y)) for name in MONEY + ("backlog",)}
    for k, s in enumerate(plan.sim_index):
        sp = scen.programs[s]
        led = ledgers[sp.id]
        S = sp.shares[:, plan.payers]  # J_k × P
        entitled = led.cash.copy()
        led.cash[:] = paid[:, k][:, sp.jur, :Y]
        led.cancelled += rejected_j[:, k][:, sp.jur, :Y]
        for name, arr in (
            ("committed_cny", led.committed),
            ("entitled_cny", entitled),
            ("paid_cny", led.cash),
            ("cancelled_cny", led.cancelled),
            ("outstanding_cny", led.outstanding),
            ("arrears_cny", arrears[:, k][:, sp.jur]),
            ("not_yet_due_cny", nyd[:, k][:, sp.jur]),
            ("backlog", backlog[:, k][:, sp.jur]),
        ):
            weights = (S > 0).astype(float) if name == "backlog" else S
            cols[name][:, k] = np.einsum("njy,jp->npy", arr, weights)
    for c in cols.values():
        c[:, K] = c[:, :K].sum(axis=1)

    # waits: application to first payment, by (draw, program or ALL, payer, year of first payment)
    never = np.iinfo(np.int64).max
    first = np.where(out.paid >= 0, out.paid, never).min(axis=1)
    has = first < never
    i_p, p_p = np.nonzero((ch.share > 0) & has[:, None])
    fb = first[i_p]
    wait = (cal.batch_day[fb] - np.floor(ch.arrival[i_p])).astype(float)
    keys = [((d[i_p] * (K + 1) + kk) * P + p_p) * Y + year_of[fb] for kk in (ch.program[i_p], np.full(i_p.size, K))]
    count, mean, p90 = grouped_mean_p90(np.concatenate(keys), np.concatenate([wait, wait]), n * (K + 1) * P * Y)
    shape = (n, K + 1, P, Y)
    count, mean, p90 = count.reshape(shape), mean.reshape(shape), p90.reshape(shape)

    return _table(plan, labels, start, cols, count, mean, p90, out)


def _table(
    plan: Plan,
    labels: Labels,
    start: int,
    cols: dict[str, np.ndarray],
    count: np.ndarray,
    mean: np.ndarray,
    p90: np.ndarray,
    out: ChunkOutcome,
) -> pa.Table:
    """Dense rows (draw, year, program or ALL, payer) for the payers each program uses."""
    K, P, Y = len(plan.programs), len(plan.payers), plan.cal.n_years
    n = count.shape[0]
    used = plan.share.sum(axis=1) > 0  # K × P
    kk, pp = np.nonzero(np.vstack([used, np.ones((1, P), bool)]))
    R = kk.size

    def rows(arr: np.ndarray) -> np.ndarray:  # (n × K+1 × P × Y) → draw, year, (program, payer)
        return arr.transpose(0, 3, 1, 2)[:, :, kk, pp].reshape(-1)

    def per_payer(arr: np.ndarray) -> np.ndarray:  # (n × P × Y) → the same rows
        return arr.transpose(0, 2, 1)[:, :, pp].reshape(-1)

    is_all = np.tile(kk == K, n * Y)
    approp = np.broadcast_to(plan.appropriation, (n, P, Y))
    bounded = np.isfinite(per_payer(approp)) & is_all
    ex = out.exhausted
    ex_day = np.where(ex >= 0, plan.cal.batch_day[np.maximum(ex, 0)], 0)
    exhausted = per_payer(ex >= 0)
    prog_code = np.where(kk == K, len(labels.programs) - 1, labels.programs.index(plan.programs[0]) + kk)

    def dict_col(codes: np.ndarray, values: pa.Array) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int16)), values)

    years = np.arange(Y)
    data = {
        "draw": pa.array(np.repeat(np.arange(n) + start, Y * R).astype(np.int32)),
        "fiscal_year": pa.array((np.tile(np.repeat(years, R), n) + plan.cal.origin.year).astype(np.int16)),
        "pipeline": dict_col(np.full(n * Y * R, labels.pipelines.index(plan.name)), labels.pipelines),
        "program": dict_col(np.tile(prog_code, n * Y), labels.programs),
        "payer": dict_col(np.tile(np.array(plan.payers)[pp], n * Y), labels.payers),
        **{name: pa.array(rows(cols[name])) for name in MONEY},
        "backlog_applications": pa.array(np.rint(rows(cols["backlog"])).astype(np.int32)),
        "first_payments": pa.array(rows(count).astype(np.int32)),
        "wait_mean_days": pa.array(rows(mean), from_pandas=True),
        "wait_p90_days": pa.array(rows(p90), from_pandas=True),
        "appropriation_cny": pa.array(np.where(bounded, per_payer(approp), np.nan), from_pandas=True),
        "appropriation_left_cny": pa.array(np.where(bounded, per_payer(out.left), np.nan), from_pandas=True),
        "exhausted": pa.array(exhausted),
        "exhausted_on": pa.array(plan.cal.dates32(per_payer(ex_day)).astype(np.int32), pa.date32(), mask=~exhausted),
    }
    return pa.table(data, schema=SCHEMA)
