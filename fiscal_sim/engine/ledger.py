"""From program ledgers to payers: the per-draw ledger rows and the summary series.

A *series* is one quantity whose distribution over draws the summary reports:
(program, payer, measure, period, fiscal_year). ``program`` and ``payer`` may be
``ALL`` (totals); equity programs total separately as ``ALL_EQUITY``, so fund
capital never mixes with grant spending. Measures per fiscal year: ``committed``
(awards made), ``cash`` (paid), ``outstanding`` (awarded, not yet paid or lapsed,
at year end); per horizon: ``committed`` and ``cash`` summed over the years.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from fiscal_sim.engine.simulate import ProgramLedger
from fiscal_sim.scenario import Scenario
from fiscal_sim.units import cny_per

YEAR_MEASURES = ("committed", "cash", "outstanding")
HORIZON_MEASURES = ("committed", "cash")
ALL = "ALL"
ALL_EQUITY = "ALL_EQUITY"


@dataclass
class SeriesLayout:
    """Column order of the per-draw series matrix and the key of every column."""

    program: list[str]
    payer: list[str]
    measure: list[str]
    period: list[str]
    fiscal_year: list[int | None]
    budget_cny: np.ndarray
    blocks: dict[tuple[str, str], int]
    """first column of each (program, payer) block of 3·Y + 2 columns"""
    payers_of: dict[str, list[int]]
    """payer indices (into geography.payers) each program pays through"""

    @property
    def size(self) -> int:
        return len(self.program)

    def table(self) -> pa.Table:
        return pa.table({"program": self.program, "payer": self.payer, "measure": self.measure,
                         "period": self.period, "fiscal_year": pa.array(self.fiscal_year, pa.int16())})


def total_key(sp) -> str:
    """Which total a program adds into: grants (``ALL``) or fund capital (``ALL_EQUITY``)."""
    return ALL_EQUITY if sp.prog.spec.status == "equity" else ALL


def layout(scen: Scenario) -> SeriesLayout:
    payers = scen.geography.payers
    years = scen.years
    cols: dict[str, list] = {"program": [], "payer": [], "measure": [], "period": [], "fiscal_year": []}
    blocks: dict[tuple[str, str], int] = {}
    payers_of: dict[str, list[int]] = {}
    totals: dict[str, set[int]] = {}

    def add_block(program: str, payer: str) -> None:
        blocks[(program, payer)] = len(cols["program"])
        for m in YEAR_MEASURES:
            for y in years:
                for k, v in zip(cols, (program, payer, m, "year", y)):
                    cols[k].append(v)
        for m in HORIZON_MEASURES:
            for k, v in zip(cols, (program, payer, m, "horizon", None)):
                cols[k].append(v)

    for sp in scen.programs:
        used = [int(i) for i in np.flatnonzero(sp.shares.sum(axis=0) > 0)]
        payers_of[sp.id] = used
        totals.setdefault(total_key(sp), set()).update(used)
        for i in used:
            add_block(sp.id, payers[i])
        add_block(sp.id, ALL)
    for t in (ALL, ALL_EQUITY):
        if t in totals:
            for i in sorted(totals[t]):
                add_block(t, payers[i])
            add_block(t, ALL)
    budget = np.full(len(cols["program"]), np.inf)
    for b in scen.spec.budgets:
        amount = b.amount * cny_per(b.unit)
        for c in range(len(budget)):
            if (cols["program"][c] == b.program and cols["payer"][c] == b.payer and cols["measure"][c] == b.measure
                    and cols["period"][c] == "year" and (b.year is None or cols["fiscal_year"][c] == b.year)):
                budget[c] = amount
    return SeriesLayout(cols["program"], cols["payer"], cols["measure"], cols["period"], cols["fiscal_year"],
                        budget, blocks, payers_of)


def series_values(scen: Scenario, lay: SeriesLayout, ledgers: dict[str, ProgramLedger]) -> np.ndarray:
    """The per-draw value of every series for one chunk, series-major (n_series × n_draws), yuan."""
    n = next(iter(ledgers.values())).committed.shape[0] if ledgers else 0
    Y = len(scen.years)
    out = np.zeros((lay.size, n))
    width = 3 * Y + 2

    def put(program: str, payer: str, block: np.ndarray) -> None:
        c = lay.blocks[(program, payer)]
        out[c: c + width] += block

    payers = scen.geography.payers
    for sp in scen.programs:
        L = ledgers[sp.id]
        used = lay.payers_of[sp.id]
        # (n × J × Y) per measure → (payer × measure·year × n) by the share matrix
        stack = np.stack([L.committed, L.cash, L.outstanding])  # 3 × n × J × Y
        by_payer = np.einsum("mnjy,jp->pmyn", stack, sp.shares[:, used])  # P × 3 × Y × n
        horizon = by_payer[:, :2].sum(axis=2)  # P × 2 × n
        blocks = np.concatenate([by_payer.reshape(len(used), 3 * Y, n), horizon], axis=1)
        tkey = total_key(sp)
        for i, p in enumerate(used):
            put(sp.id, payers[p], blocks[i])
            put(tkey, payers[p], blocks[i])
        total = blocks.sum(axis=0)
        put(sp.id, ALL, total)
        put(tkey, ALL, total)
    return out


DRAWS_SCHEMA = pa.schema([
    ("draw", pa.int32()),
    ("program", pa.dictionary(pa.int16(), pa.string())),
    ("spending", pa.dictionary(pa.int8(), pa.string())),
    ("jurisdiction", pa.dictionary(pa.int8(), pa.string())),
    ("payer", pa.dictionary(pa.int8(), pa.string())),
    ("committed_cny", pa.float64()),
    ("cash_cny", pa.float64()),
    ("cancelled_cny", pa.float64()),
    ("outstanding_cny", pa.float64()),
])


def draws_tables(scen: Scenario, ledgers: dict[str, ProgramLedger], start: int) -> dict[int, pa.Table]:
    """Per-draw ledger rows by fiscal year: (draw, program, jurisdiction, payer) with non-zero amounts.

    Columns are gathered as numpy arrays over all programs, then each year's
    table is built once with dictionaries shared by every file of the run.
    """
    geo = scen.geography
    programs = [sp.id for sp in scen.programs]
    Y = len(scen.years)
    cols: list[dict[str, list[np.ndarray]]] = [
        {k: [] for k in ("draw", "program", "spending", "jurisdiction", "payer", "values")} for _ in range(Y)]
    for code, sp in enumerate(scen.programs):
        L = ledgers[sp.id]
        jj, pp = np.nonzero(sp.shares)
        stack = np.stack([L.committed, L.cash, L.cancelled, L.outstanding], axis=-1)[:, jj]  # n × R × Y × 4
        vals = np.moveaxis(stack * sp.shares[jj, pp][None, :, None, None], 2, 0)  # Y × n × R × 4
        n, R = vals.shape[1:3]
        spending = 1 if total_key(sp) == ALL_EQUITY else 0
        for y in range(Y):
            v = vals[y].reshape(n * R, 4)
            keep = np.flatnonzero(np.any(v != 0, axis=1))
            if not keep.size:
                continue
            c = cols[y]
            c["draw"].append((keep // R).astype(np.int32) + start)
            r = keep % R
            c["program"].append(np.full(keep.size, code, np.int16))
            c["spending"].append(np.full(keep.size, spending, np.int8))
            c["jurisdiction"].append(sp.jur[jj][r].astype(np.int8))
            c["payer"].append(pp[r].astype(np.int8))
            c["values"].append(v[keep])
    dictionaries = {"program": pa.array(programs), "spending": pa.array(["grant", "equity"]),
                    "jurisdiction": pa.array(geo.jurisdictions), "payer": pa.array(geo.payers)}
    out = {}
    for y, c in enumerate(cols):
        if not c["draw"]:
            out[scen.years[y]] = DRAWS_SCHEMA.empty_table()
            continue
        values = np.concatenate(c["values"])
        arrays = [pa.array(np.concatenate(c["draw"]))]
        arrays += [pa.DictionaryArray.from_arrays(pa.array(np.concatenate(c[k])), dictionaries[k])
                   for k in ("program", "spending", "jurisdiction", "payer")]
        arrays += [pa.array(np.ascontiguousarray(values[:, m])) for m in range(4)]
        out[scen.years[y]] = pa.Table.from_arrays(arrays, schema=DRAWS_SCHEMA)
    return out
