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
        # (n × J × Y) per measure → (payer × measure·year × n) by the share matrix; blocks that are zero in
        # every draw are not added (their rows' pages stay untouched, and the statistics skip them)
        stack = np.stack([L.committed, L.cash, L.outstanding])  # 3 × n × J × Y
        by_payer = np.einsum("mnjy,jp->pmyn", stack, sp.shares[:, used])  # P × 3 × Y × n
        horizon = by_payer[:, :2].sum(axis=2)  # P × 2 × n
        blocks = np.concatenate([by_payer.reshape(len(used), 3 * Y, n), horizon], axis=1)
        tkey = total_key(sp)
        for i, p in enumerate(used):
            if blocks[i].any():
                put(sp.id, payers[p], blocks[i])
                put(tkey, payers[p], blocks[i])
        total = blocks.sum(axis=0)
        if total.any():
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
    # the hive folder keys, also as columns (readers that ignore folder names keep them);
    # plain string and int32 are the types pyarrow's and DuckDB's hive readers infer from the folder names
    ("scenario", pa.string()),
    ("fiscal_year", pa.int32()),
])
MEASURES = ("committed", "cash", "cancelled", "outstanding")


def draws_tables(scen: Scenario, ledgers: dict[str, ProgramLedger], start: int) -> dict[int, pa.Table]:
    """Per-draw ledger rows by fiscal year: (draw, program, jurisdiction, payer) with non-zero amounts.

    For each program the non-zero (year, draw, jurisdiction × payer) cells are
    found once, year-major, and each measure is gathered at those cells; one
    stable sort by year then groups every program's rows into the year tables
    (rows within a year: program, draw, jurisdiction, payer order).
    """
    geo = scen.geography
    Y = len(scen.years)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("year", "draw", "program", "spending", "jurisdiction",
                                                          "payer", *MEASURES)}
    for code, sp in enumerate(scen.programs):
        L = ledgers[sp.id]
        jj, pp = np.nonzero(sp.shares)
        R = jj.size
        arrays = {m: getattr(L, m) for m in MEASURES}  # each n × J × Y
        n = L.committed.shape[0]
        live = L.committed != 0
        for a in (L.cash, L.cancelled, arrays["outstanding"]):
            live |= a != 0
        cell = np.flatnonzero(live.transpose(2, 0, 1)[:, :, jj])  # year-major: (y, draw, r)
        if not cell.size:
            continue
        y, rest = np.divmod(cell, n * R)
        d, r = np.divmod(rest, R)
        flat = (d * sp.shares.shape[0] + jj[r]) * Y + y  # index into n × J × Y
        share = sp.shares[jj, pp][r]
        for m, a in arrays.items():
            parts[m].append(a.reshape(-1)[flat] * share)
        parts["year"].append(y.astype(np.int16))
        parts["draw"].append(d.astype(np.int32) + start)
        parts["program"].append(np.full(cell.size, code, np.int16))
        parts["spending"].append(np.full(cell.size, 1 if total_key(sp) == ALL_EQUITY else 0, np.int8))
        parts["jurisdiction"].append(sp.jur[jj[r]].astype(np.int8))
        parts["payer"].append(pp[r].astype(np.int8))
    if not parts["year"]:
        return {year: DRAWS_SCHEMA.empty_table() for year in scen.years}
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    year = cols.pop("year")
    order = np.argsort(year, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(year, minlength=Y))])
    dictionaries = {"program": pa.array([sp.id for sp in scen.programs]), "spending": pa.array(["grant", "equity"]),
                    "jurisdiction": pa.array(geo.jurisdictions), "payer": pa.array(geo.payers)}
    cols = {k: v[order] for k, v in cols.items()}
    out = {}
    for y, year in enumerate(scen.years):
        rows = slice(bounds[y], bounds[y + 1])
        k = bounds[y + 1] - bounds[y]
        arrays = [pa.array(cols["draw"][rows])]
        arrays += [pa.DictionaryArray.from_arrays(pa.array(cols[c][rows]), dictionaries[c])
                   for c in ("program", "spending", "jurisdiction", "payer")]
        arrays += [pa.array(cols[m][rows]) for m in MEASURES]
        arrays += [pa.array([scen.spec.name], pa.string()).take(np.zeros(k, np.int32)), pa.array(np.full(k, year, np.int32))]
        out[year] = pa.Table.from_arrays(arrays, schema=DRAWS_SCHEMA)
    return out
