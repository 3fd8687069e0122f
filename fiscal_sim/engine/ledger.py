"""From program ledgers to payers: the per-draw ledger rows and the summary series.

A *series* is one quantity whose distribution over draws the summary reports:
(program, payer, measure, period, fiscal_year). ``program`` and ``payer`` may be
``ALL`` (totals); equity programs total separately as ``ALL_EQUITY``, so fund
capital never mixes with grant spending. Measures per fiscal year: ``committed``
(awards made), ``cash`` (paid), ``outstanding`` (awarded, not yet paid or lapsed,
at year end); per horizon: ``committed`` and ``cash`` summed over the years.

``vintage`` splits a series by when the award was made: ``existing`` (the
commitment register's awards made before the horizon) and ``new`` (awards the
simulation makes); ``ALL`` is both. Split rows exist in run outputs when the
scenario has an existing book: for the totals (every payer) and for the programs
in the book (payer ``ALL`` only: a program's payers are not split by vintage).
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
VINTAGES = ("new", "existing")


@dataclass
class SeriesLayout:
    """Column order of the per-draw series matrix and the key of every column."""

    program: list[str]
    payer: list[str]
    vintage: list[str]
    measure: list[str]
    period: list[str]
    fiscal_year: list[int | None]
    budget_cny: np.ndarray
    blocks: dict[tuple[str, str, str], int]
    """first column of each (program, payer, vintage) block of 3·Y + 2 columns"""
    payers_of: dict[str, list[int]]
    """payer indices (into geography.payers) each program pays through"""

    @property
    def size(self) -> int:
        return len(self.program)

    def table(self) -> pa.Table:
        return pa.table(
            {
                "program": self.program,
                "payer": self.payer,
                "vintage": self.vintage,
                "measure": self.measure,
                "period": self.period,
                "fiscal_year": pa.array(self.fiscal_year, pa.int16()),
            }
        )


def total_key(sp) -> str:
    """Which total a program adds into: grants (``ALL``) or fund capital (``ALL_EQUITY``)."""
    return ALL_EQUITY if sp.prog.spec.status == "equity" else ALL


def layout(scen: Scenario, by_vintage: bool = False) -> SeriesLayout:
    """Series of a scenario; ``by_vintage`` adds ``existing`` / ``new`` series where there is an existing book
    (register rows or estimated pre-horizon cohorts)."""
    payers = scen.geography.payers
    years = scen.years
    cols: dict[str, list] = {"program": [], "payer": [], "vintage": [], "measure": [], "period": [], "fiscal_year": []}
    blocks: dict[tuple[str, str, str], int] = {}
    payers_of: dict[str, list[int]] = {}
    totals: dict[str, set[int]] = {}
    books = scen.existing_programs if by_vintage else set()
    split_totals: set[str] = set()

    def add_blocks(program: str, payer: str, split: bool) -> None:
        for vintage in (ALL,) + (VINTAGES if split else ()):
            blocks[(program, payer, vintage)] = len(cols["program"])
            for m in YEAR_MEASURES:
                for y in years:
                    for k, v in zip(cols, (program, payer, vintage, m, "year", y)):
                        cols[k].append(v)
            for m in HORIZON_MEASURES:
                for k, v in zip(cols, (program, payer, vintage, m, "horizon", None)):
                    cols[k].append(v)

    for sp in scen.programs:
        used = [int(i) for i in np.flatnonzero(sp.shares.sum(axis=0) > 0)]
        payers_of[sp.id] = used
        totals.setdefault(total_key(sp), set()).update(used)
        if sp.id in books:
            split_totals.add(total_key(sp))
        for i in used:  # a program's payers: all vintages together (its vintages show in its ALL-payer series)
            add_blocks(sp.id, payers[i], False)
        add_blocks(sp.id, ALL, sp.id in books)
    for t in (ALL, ALL_EQUITY):
        if t in totals:
            for i in sorted(totals[t]):
                add_blocks(t, payers[i], t in split_totals)
            add_blocks(t, ALL, t in split_totals)
    budget = np.full(len(cols["program"]), np.inf)
    for b in scen.spec.budgets:
        amount = b.amount * cny_per(b.unit)
        for c in range(len(budget)):
            if (
                cols["program"][c] == b.program
                and cols["payer"][c] == b.payer
                and cols["vintage"][c] == ALL
                and cols["measure"][c] == b.measure
                and cols["period"][c] == "year"
                and (b.year is None or cols["fiscal_year"][c] == b.year)
            ):
                budget[c] = amount
    return SeriesLayout(
        cols["program"],
        cols["payer"],
        cols["vintage"],
        cols["measure"],
        cols["period"],
        cols["fiscal_year"],
        budget,
        blocks,
        payers_of,
    )


def series_rows(scen: Scenario, lay: SeriesLayout, ledgers: dict[str, ProgramLedger]) -> tuple[np.ndarray, np.ndarray]:
    """The series of one chunk that are non-zero in some draw: ``(rows, values)``, ``rows`` ascending indices
    into the layout and ``values`` (len(rows) × n_draws) in yuan; every other series is zero in every draw."""
    n = next(iter(ledgers.values())).committed.shape[0] if ledgers else 0
    Y = len(scen.years)
    width = 3 * Y + 2
    found: dict[int, np.ndarray] = {}  # first column of a block → its (width × n) values

    def put(program: str, payer: str, vintage: str, block: np.ndarray) -> None:
        c = lay.blocks.get((program, payer, vintage))
        if c is None:
            return
        if c in found:
            found[c] += block
        else:
            found[c] = block.copy()

    def payer_blocks(L: ProgramLedger, shares: np.ndarray) -> np.ndarray:
        """(n × J × Y) per measure → (payer × (measure·year + horizon) × n) by the share matrix (J × payer,
        mostly zeros: a jurisdiction pays through one or two payers)."""
        stack = np.stack([L.committed, L.cash, L.outstanding]).transpose(2, 0, 3, 1)  # J × 3 × Y × n
        out = np.zeros((shares.shape[1], 3 * Y + 2, n))
        for j, p in zip(*np.nonzero(shares)):  # jurisdictions in order: the same sums whatever the chunk
            out[p, : 3 * Y] += shares[j, p] * stack[j].reshape(3 * Y, n)
        out[:, 3 * Y :] = out[:, : 2 * Y].reshape(-1, 2, Y, n).sum(axis=2)
        return out

    payers = scen.geography.payers
    for sp in scen.programs:
        L = ledgers[sp.id]
        if not (
            L.committed.any()
            or L.cash.any()
            or L.outstanding.any()
            or (
                L.existing is not None
                and (L.existing.cash.any() or L.existing.outstanding.any() or L.existing.committed.any())
            )
        ):
            continue  # nothing in any draw: no series of this program moves
        used = lay.payers_of[sp.id]
        tkey = total_key(sp)
        parts = {"new": payer_blocks(L, sp.shares[:, used])}
        if L.existing is not None:
            parts["existing"] = payer_blocks(L.existing, sp.shares[:, used])
        parts[ALL] = parts["new"] + parts["existing"] if "existing" in parts else parts["new"]
        for vintage, blocks in parts.items():
            for i, p in enumerate(used):
                put(sp.id, payers[p], vintage, blocks[i])
                put(tkey, payers[p], vintage, blocks[i])
            total = blocks.sum(axis=0)
            put(sp.id, ALL, vintage, total)
            put(tkey, ALL, vintage, total)
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros((0, n))
    starts = sorted(found)
    rows = (np.asarray(starts, dtype=np.int64)[:, None] + np.arange(width)).reshape(-1)
    return rows, np.concatenate([found[c] for c in starts])


def grant_programs(scen: Scenario) -> list[str]:
    """Programs whose cash adds into the grant total ``ALL`` (not fund capital), in catalogue order."""
    return [sp.id for sp in scen.programs if total_key(sp) == ALL]


def horizon_cash(scen: Scenario, lay: SeriesLayout, rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each grant program's cash over the horizon (all payers and vintages) in each draw of a chunk, from its
    :func:`series_rows`: n_draws × :func:`grant_programs`, yuan."""
    Y = len(scen.years)
    want = np.array([lay.blocks[(pid, ALL, ALL)] + 3 * Y + 1 for pid in grant_programs(scen)], dtype=np.int64)
    out = np.zeros((values.shape[1], want.size))
    if rows.size:
        pos = np.minimum(np.searchsorted(rows, want), rows.size - 1)
        found = rows[pos] == want
        out[:, found] = values[pos[found]].T
    return out


def series_values(scen: Scenario, lay: SeriesLayout, ledgers: dict[str, ProgramLedger]) -> np.ndarray:
    """The per-draw value of every series for one chunk, series-major (n_series × n_draws), yuan (dense:
    for small runs and tests; the engine's statistics take :func:`series_rows`)."""
    rows, values = series_rows(scen, lay, ledgers)
    n = next(iter(ledgers.values())).committed.shape[0] if ledgers else 0
    out = np.zeros((lay.size, n))
    out[rows] = values
    return out


DRAWS_SCHEMA = pa.schema(
    [
        ("draw", pa.int32()),
        ("program", pa.dictionary(pa.int16(), pa.string())),
        ("spending", pa.dictionary(pa.int8(), pa.string())),
        ("jurisdiction", pa.dictionary(pa.int8(), pa.string())),
        ("payer", pa.dictionary(pa.int8(), pa.string())),
        ("vintage", pa.dictionary(pa.int8(), pa.string())),
        ("committed_cny", pa.float64()),
        ("cash_cny", pa.float64()),
        ("cancelled_cny", pa.float64()),
        ("outstanding_cny", pa.float64()),
        # the hive folder keys, also as columns (readers that ignore folder names keep them);
        # plain string and int32 are the types pyarrow's and DuckDB's hive readers infer from the folder names
        ("scenario", pa.string()),
        ("fiscal_year", pa.int32()),
    ]
)
MEASURES = ("committed", "cash", "cancelled", "outstanding")


def draws_tables(scen: Scenario, ledgers: dict[str, ProgramLedger], start: int) -> dict[int, pa.Table]:
    """Per-draw ledger rows by fiscal year: (draw, program, jurisdiction, payer, vintage) with non-zero amounts.

    For each program (and vintage) the non-zero (year, draw, jurisdiction ×
    payer) cells are found once, year-major, and each measure is gathered at
    those cells; one stable sort by year then groups every program's rows into
    the year tables (rows within a year: program, vintage, draw, jurisdiction,
    payer order).
    """
    geo = scen.geography
    Y = len(scen.years)
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("year", "draw", "program", "spending", "jurisdiction", "payer", "vintage", *MEASURES)
    }
    ledgers_of = [
        (code, sp, L, v)
        for code, sp in enumerate(scen.programs)
        for v, L in enumerate((ledgers[sp.id], ledgers[sp.id].existing))
        if L is not None
    ]
    for code, sp, L, vintage in ledgers_of:  # vintage: 0 new, 1 existing (VINTAGES)
        jj, pp = np.nonzero(sp.shares)
        R = jj.size
        measures = {m: getattr(L, m) for m in MEASURES}  # each n × J × Y
        n = L.committed.shape[0]
        live = L.committed != 0
        for a in (L.cash, L.cancelled, measures["outstanding"]):
            live |= a != 0
        cell = np.flatnonzero(live.transpose(2, 0, 1)[:, :, jj])  # year-major: (y, draw, r)
        if not cell.size:
            continue
        y, rest = np.divmod(cell, n * R)
        d, r = np.divmod(rest, R)
        flat = (d * sp.shares.shape[0] + jj[r]) * Y + y  # index into n × J × Y
        share = sp.shares[jj, pp][r]
        for m, a in measures.items():
            parts[m].append(a.reshape(-1)[flat] * share)
        parts["year"].append(y.astype(np.int16))
        parts["draw"].append(d.astype(np.int32) + start)
        parts["program"].append(np.full(cell.size, code, np.int16))
        parts["spending"].append(np.full(cell.size, 1 if total_key(sp) == ALL_EQUITY else 0, np.int8))
        parts["jurisdiction"].append(sp.jur[jj[r]].astype(np.int8))
        parts["payer"].append(pp[r].astype(np.int8))
        parts["vintage"].append(np.full(cell.size, vintage, np.int8))
    if not parts["year"]:
        return {year: DRAWS_SCHEMA.empty_table() for year in scen.years}
    cols = {k: np.concatenate(v) for k, v in parts.items()}
    year = cols.pop("year")
    order = np.argsort(year, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(year, minlength=Y))])
    dictionaries = {
        "program": pa.array([sp.id for sp in scen.programs]),
        "spending": pa.array(["grant", "equity"]),
        "jurisdiction": pa.array(geo.jurisdictions),
        "payer": pa.array(geo.payers),
        "vintage": pa.array(list(VINTAGES)),
    }
    cols = {k: v[order] for k, v in cols.items()}
    out: dict[int, pa.Table] = {}
    for t, fiscal_year in enumerate(scen.years):
        rows = slice(int(bounds[t]), int(bounds[t + 1]))
        size = int(bounds[t + 1] - bounds[t])
        arrays: list[pa.Array] = [pa.array(cols["draw"][rows])]
        arrays += [
            pa.DictionaryArray.from_arrays(pa.array(cols[c][rows]), dictionaries[c])
            for c in ("program", "spending", "jurisdiction", "payer", "vintage")
        ]
        arrays += [pa.array(cols[m][rows]) for m in MEASURES]
        arrays += [
            pa.array([scen.spec.name], pa.string()).take(np.zeros(size, np.int32)),
            pa.array(np.full(size, fiscal_year, np.int32)),
        ]
        out[fiscal_year] = pa.Table.from_arrays(arrays, schema=DRAWS_SCHEMA)
    return out
