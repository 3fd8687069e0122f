"""Compare a reform with its baseline draw by draw, with common random numbers.

Both scenarios run chunk by chunk with the same seed, draws and block size.
Random streams are keyed by (block, program), not by scenario, so in every
draw the reform sees the same applicants as the baseline; the difference of
a series is then computed per draw, and its statistics (mean change and its
Monte Carlo standard error, percentiles of the change, change in the
probability of exceeding each budget line) have far less noise than the
difference of two independent runs. ``independent=True`` gives the reform its
own seed: the textbook comparison, kept to show what common random numbers buy.

Series are aligned by key (program, payer, measure, period, fiscal_year); a
series present in only one scenario (a program the reform adds or removes, a
payer a new cost share brings in) is zero in every draw of the other.

Output folder (written atomically): ``compare.parquet`` (statistics of the
change per series), ``compare_draws/`` (per-draw baseline, reform and change
of the totals and of every program the reform changes), ``baseline/`` and
``reform/`` (each a run-like folder: summary, dimension tables, manifest) and
``manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa

from fiscal_sim.analysis.common import SeriesKey, nan_to_null, new_run_id, series_keys, write_run_folder
from fiscal_sim.engine.ledger import ALL, ALL_EQUITY, YEAR_MEASURES as MEASURES, SeriesLayout, layout, series_values
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.engine.simulate import blocks_of
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.io.outdir import inputs_of
from fiscal_sim.io.parquet import manifest_header, with_metadata, write_json, write_table
from fiscal_sim.io.target import Remote, output, write_part
from fiscal_sim.orchestrate.driver import drive_chunks, executor_for
from fiscal_sim.orchestrate.executors import Executor
from fiscal_sim.scenario import Scenario
from fiscal_sim.stats import Accumulator, summarise

MAX_CHUNK = 500
"""draws per chunk in a comparison: two scenarios and their difference are held at once"""


@dataclass
class Pairing:
    """How the two scenarios' series line up: the union of keys and where each side has it (−1: absent)."""

    keys: list[SeriesKey]
    idx_b: np.ndarray
    idx_r: np.ndarray
    budget_b: np.ndarray
    budget_r: np.ndarray
    draw_rows: dict[str, np.ndarray]
    """per-draw output rows: program, payer, year, union index per measure, and whether always written"""

    @property
    def size(self) -> int:
        return len(self.keys)


def pair(lay_b: SeriesLayout, lay_r: SeriesLayout) -> Pairing:
    """Align two layouts by series key (baseline order first, then series only the reform has)."""
    kb, kr = series_keys(lay_b), series_keys(lay_r)
    known = set(kb)
    keys = list(kb) + [k for k in kr if k not in known]
    pos_b = {k: i for i, k in enumerate(kb)}
    pos_r = {k: i for i, k in enumerate(kr)}
    idx_b = np.array([pos_b.get(k, -1) for k in keys])
    idx_r = np.array([pos_r.get(k, -1) for k in keys])
    budget_b = np.where(idx_b >= 0, lay_b.budget_cny[np.maximum(idx_b, 0)], np.inf)
    budget_r = np.where(idx_r >= 0, lay_r.budget_cny[np.maximum(idx_r, 0)], np.inf)
    return Pairing(keys, idx_b, idx_r, budget_b, budget_r, _draw_rows(keys))


def _draw_rows(keys: list[SeriesKey]) -> dict[str, np.ndarray]:
    """Rows of the per-draw table: totals for every payer, and every program for all payers together."""
    at = {k: i for i, k in enumerate(keys)}
    rows: dict[str, list] = {"program": [], "payer": [], "fiscal_year": [], "always": [], **{m: [] for m in MEASURES}}
    for prog, payer, measure, period, year in keys:
        if measure != "cash" or period != "year":
            continue
        total = prog in (ALL, ALL_EQUITY)
        if not total and payer != ALL:
            continue
        for k, v in (("program", prog), ("payer", payer), ("fiscal_year", year), ("always", total)):
            rows[k].append(v)
        for m in MEASURES:
            rows[m].append(at[(prog, payer, m, "year", year)])
    return {k: np.array(v) for k, v in rows.items()}


def _on_union(values: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Per-draw values (own layout × n) on the union of keys; absent series are zero."""
    if idx.size == values.shape[0] and np.array_equal(idx, np.arange(idx.size)):
        return values
    out = np.zeros((idx.size, values.shape[1]))
    have = idx >= 0
    out[have] = values[idx[have]]
    return out


@dataclass
class ChunkStats:
    """What one chunk contributes: statistics of both sides and of the change, and exceedance counts."""

    base: Accumulator
    reform: Accumulator
    change: Accumulator
    exceed: np.ndarray
    """4 × union: baseline exceeds, reform exceeds, only baseline exceeds, only reform exceeds"""

    def merge(self, other: "ChunkStats") -> None:
        self.base.merge(other.base)
        self.reform.merge(other.reform)
        self.change.merge(other.change)
        self.exceed += other.exceed


def new_stats(lay_b: SeriesLayout, lay_r: SeriesLayout, p: Pairing) -> ChunkStats:
    return ChunkStats(
        Accumulator(lay_b.size, lay_b.budget_cny),
        Accumulator(lay_r.size, lay_r.budget_cny),
        Accumulator(p.size),
        np.zeros((4, p.size), dtype=np.int64),
    )


def compare_chunk(
    base: Scenario,
    reform: Scenario,
    lay_b: SeriesLayout,
    lay_r: SeriesLayout,
    p: Pairing,
    start: int,
    stop: int,
    draws_dir: Path | str | None,
    run_id: str,
    stats: ChunkStats | None = None,
) -> ChunkStats:
    """Simulate draws ``[start, stop)`` of both scenarios; add them and their difference into ``stats``."""
    vb = series_values(base, lay_b, simulate_chunk(base, start, stop))
    vr = series_values(reform, lay_r, simulate_chunk(reform, start, stop))
    stats = stats or new_stats(lay_b, lay_r, p)
    blocks = [(b, first - start, nb) for b, first, nb in blocks_of(base, start, stop)]
    stats.base.add(blocks, vb)
    stats.reform.add(blocks, vr)
    ub, ur = _on_union(vb, p.idx_b), _on_union(vr, p.idx_r)
    del vb, vr
    change = ur - ub
    stats.change.add(blocks, change)
    eb, er = ub > p.budget_b[:, None], ur > p.budget_r[:, None]
    stats.exceed += np.stack([eb.sum(1), er.sum(1), (eb & ~er).sum(1), (er & ~eb).sum(1)])
    if draws_dir is not None:
        table = draws_table(p, ub, ur, change, start)
        if table.num_rows:
            write_part(draws_dir, f"part-{start:09d}.parquet", with_metadata(table, run_id), compression="zstd")
    return stats


DRAWS_SCHEMA = pa.schema(
    [
        ("draw", pa.int32()),
        ("program", pa.dictionary(pa.int32(), pa.string())),
        ("payer", pa.dictionary(pa.int32(), pa.string())),
        ("fiscal_year", pa.int16()),
        *[(f"{side}_{m}_cny", pa.float64()) for m in MEASURES for side in ("baseline", "reform", "change")],
    ]
)


def draws_table(p: Pairing, ub: np.ndarray, ur: np.ndarray, change: np.ndarray, start: int) -> pa.Table:
    """Per-draw rows: totals always; a program only where the reform changes it in some draw of the chunk."""
    r = p.draw_rows
    moved = np.zeros(r["program"].size, dtype=bool)
    for m in MEASURES:
        moved |= np.any(change[r[m]] != 0, axis=1)
    keep = np.flatnonzero(r["always"] | moved)
    n = change.shape[1]
    R = keep.size
    prog_names = sorted(set(r["program"][keep].tolist()))
    payer_names = sorted(set(r["payer"][keep].tolist()))
    pcode = np.searchsorted(prog_names, r["program"][keep])
    qcode = np.searchsorted(payer_names, r["payer"][keep])
    cols: dict[str, pa.Array] = {
        "draw": pa.array(np.tile(np.arange(start, start + n, dtype=np.int32), R)),
        "program": pa.DictionaryArray.from_arrays(pa.array(np.repeat(pcode, n).astype(np.int32)), prog_names),
        "payer": pa.DictionaryArray.from_arrays(pa.array(np.repeat(qcode, n).astype(np.int32)), payer_names),
        "fiscal_year": pa.array(np.repeat(r["fiscal_year"][keep], n).astype(np.int16)),
    }
    for m in MEASURES:
        idx = r[m][keep]
        for side, v in (("baseline", ub), ("reform", ur), ("change", change)):
            cols[f"{side}_{m}_cny"] = pa.array(v[idx].reshape(-1))
    return pa.table(cols, schema=DRAWS_SCHEMA)


def compare_task(
    state: tuple, start: int, stop: int, draws_dir: Path | str | None, run_id: str
) -> tuple[int, ChunkStats]:
    """One chunk on an executor's worker: fresh statistics, returned by value."""
    base, reform, lay_b, lay_r, p = state
    return stop - start, compare_chunk(base, reform, lay_b, lay_r, p, start, stop, draws_dir, run_id)


def aligned(base: Scenario, reform: Scenario, independent: bool = False) -> Scenario:
    """The reform with the baseline's run settings (same seed unless ``independent``); horizons must match."""
    if base.spec.horizon != reform.spec.horizon:
        raise FiscalSimError(
            f"cannot compare: baseline horizon {base.spec.horizon.start}–{base.spec.horizon.end} "
            f"differs from reform horizon {reform.spec.horizon.start}–{reform.spec.horizon.end}"
        )
    s = base.spec
    seed = independent_seed(s.seed) if independent else s.seed
    return reform.with_settings(
        draws=s.draws, seed=seed, block_size=s.block_size, chunk_size=min(s.chunk_size, MAX_CHUNK)
    )


def independent_seed(seed: int) -> int:
    """A different, reproducible root seed for an independent-draws comparison."""
    return int(np.random.SeedSequence([seed, 0x5EED]).generate_state(1)[0])


@dataclass
class CompareResult:
    out: Path | Remote
    run_id: str
    table: pa.Table
    baseline: pa.Table
    reform: pa.Table


def compare(
    base: Scenario,
    reform: Scenario,
    out: Path | str | Remote,
    workers: int = 1,
    independent: bool = False,
    write_draws: bool = True,
    command: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> CompareResult:
    """Run baseline and reform with common random numbers; write the comparison folder ``out`` atomically (or
    under a URL's run-id prefix, :mod:`fiscal_sim.io.target`)."""
    base = base.with_settings(chunk_size=min(base.spec.chunk_size, MAX_CHUNK))
    reform = aligned(base, reform, independent)
    lay_b, lay_r = layout(base), layout(reform)
    p = pair(lay_b, lay_r)
    run_id = new_run_id()
    with output(out, "compare", run_id, inputs_of(base, reform)) as dest:
        tmp = dest.folder
        draws_dir = dest.dataset("compare_draws") if write_draws else None
        total = new_stats(lay_b, lay_r, p)
        for _, _, (_, st) in drive_chunks(
            base,
            executor_for(executor, workers),
            compare_task,
            (base, reform, lay_b, lay_r, p),
            (draws_dir, run_id),
            progress,
        ):
            total.merge(st)
        table = change_table(base, reform, p, total, independent)
        write_table(table, tmp / "compare.parquet", run_id, baseline=base.spec.name, reform=reform.spec.name)
        link = {"compared_in": str(dest.location), "compare_run_id": run_id}
        sb = write_run_folder(tmp / "baseline", base, lay_b, total.base, run_id, command, link | {"role": "baseline"})
        sr = write_run_folder(tmp / "reform", reform, lay_r, total.reform, run_id, command, link | {"role": "reform"})
        write_json(compare_manifest(base, reform, run_id, command, independent, write_draws), tmp / "manifest.json")
    return CompareResult(dest.location, run_id, table, sb, sr)


def change_table(base: Scenario, reform: Scenario, p: Pairing, st: ChunkStats, independent: bool) -> pa.Table:
    """Statistics of the change per series (union of keys) — the rows of ``compare.parquet``."""
    level = base.spec.var_level
    sb, sr, sd = summarise(st.base, level), summarise(st.reform, level), summarise(st.change, level)
    n = st.change.n

    def on_union(stats: dict[str, np.ndarray], col: str, idx: np.ndarray) -> np.ndarray:
        return np.where(idx >= 0, stats[col][np.maximum(idx, 0)], 0.0)

    mean_b, mean_r = on_union(sb, "mean_cny", p.idx_b), on_union(sr, "mean_cny", p.idx_r)
    var_b, var_r = on_union(sb, "sd_cny", p.idx_b) ** 2, on_union(sr, "sd_cny", p.idx_r) ** 2
    var_d = sd["sd_cny"] ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(mean_b != 0, sd["mean_cny"] / mean_b, np.nan)
        ratio = np.where(var_d > 0, (var_b + var_r) / var_d, np.nan)
        has_b, has_r = np.isfinite(p.budget_b), np.isfinite(p.budget_r)
        pb = np.where(has_b, st.exceed[0] / n, np.nan)
        pr = np.where(has_r, st.exceed[1] / n, np.nan)
        mean_d = (st.exceed[1] - st.exceed[0]) / n
        sq = (st.exceed[2] + st.exceed[3]) / n
        se_p = np.sqrt(np.maximum(sq - mean_d**2, 0.0) * n / max(n - 1, 1) / n)
        se_p = np.where(has_b & has_r, se_p, np.nan)
    prog, payer, measure, period, year = (list(x) for x in zip(*p.keys))
    cols: dict[str, pa.Array | list] = {
        "scenario_baseline": [base.spec.name] * p.size,
        "scenario_reform": [reform.spec.name] * p.size,
        "program": prog,
        "payer": payer,
        "measure": measure,
        "period": period,
        "fiscal_year": pa.array(year, pa.int16()),
        "draws": pa.array(np.full(p.size, n, dtype=np.int32)),
        "common_random_numbers": pa.array(np.full(p.size, not independent)),
        "in_baseline": pa.array(p.idx_b >= 0),
        "in_reform": pa.array(p.idx_r >= 0),
        "baseline_mean_cny": mean_b,
        "reform_mean_cny": mean_r,
        "change_mean_cny": sd["mean_cny"],
        "change_se_cny": sd["mcse_cny"],
        "change_sd_cny": sd["sd_cny"],
        "change_pct": nan_to_null(pct),
    }
    for q in ("p05", "p10", "p50", "p90", "p95", "min", "max"):
        cols[f"change_{q}_cny"] = sd[f"{q}_cny"]
    cols |= {
        "independent_se_cny": np.sqrt((var_b + var_r) / n),
        "crn_variance_ratio": nan_to_null(ratio),
        "baseline_p95_cny": on_union(sb, "p95_cny", p.idx_b),
        "reform_p95_cny": on_union(sr, "p95_cny", p.idx_r),
        "baseline_budget_cny": nan_to_null(np.where(has_b, p.budget_b, np.nan)),
        "reform_budget_cny": nan_to_null(np.where(has_r, p.budget_r, np.nan)),
        "baseline_p_exceed": nan_to_null(pb),
        "reform_p_exceed": nan_to_null(pr),
        "change_p_exceed": nan_to_null(pr - pb),
        "change_p_exceed_se": nan_to_null(se_p),
    }
    return pa.table({k: pa.array(v) if isinstance(v, np.ndarray) else v for k, v in cols.items()})


def compare_manifest(
    base: Scenario, reform: Scenario, run_id: str, command: list[str] | None, independent: bool, write_draws: bool
) -> dict:
    def who(s: Scenario) -> dict:
        return {
            "name": s.spec.name,
            "path": s.path,
            "sha256": s.sha256,
            "description": s.spec.description,
            "seed_entropy": s.spec.seed,
        }

    return {
        **manifest_header(run_id, command, kind="compare"),
        "common_random_numbers": not independent,
        "baseline": who(base),
        "reform": who(reform),
        "draws": base.spec.draws,
        "block_size": base.spec.block_size,
        "horizon": {"start": base.spec.horizon.start, "end": base.spec.horizon.end},
        "var_level": base.spec.var_level,
        "catalogue_sha256": base.catalogue.sha256(),
        "money_unit": "CNY (yuan); columns ending in _cny",
        "files": {
            "compare": "compare.parquet",
            "draws": "compare_draws/part-*.parquet" if write_draws else None,
            "baseline": "baseline/ (summary.parquet, dimension tables, manifest.json)",
            "reform": "reform/ (summary.parquet, dimension tables, manifest.json)",
        },
    }


TOLERANCE_CNY = 1.0
"""a change of the mean smaller than this (yuan) is float noise, not a change"""


def headline(table: pa.Table, tolerance: float = TOLERANCE_CNY) -> dict[str, list[dict]]:
    """Rows for the printed headline: grant cash by year (all payers, city) and over the horizon by payer,
    and the programs whose expected horizon cash changes by more than ``tolerance`` yuan, most first."""
    rows = [r for r in table.to_pylist() if r["measure"] == "cash"]
    by_year = [r for r in rows if r["program"] == ALL and r["period"] == "year" and r["payer"] in (ALL, "city")]
    horizon = [
        r
        for r in rows
        if r["program"] == ALL and r["period"] == "horizon" and (r["baseline_mean_cny"] or r["reform_mean_cny"])
    ]
    programs = [
        r
        for r in rows
        if r["program"] not in (ALL, ALL_EQUITY)
        and r["payer"] == ALL
        and r["period"] == "horizon"
        and abs(r["change_mean_cny"]) > tolerance
    ]
    by_year.sort(key=lambda r: (r["payer"] != ALL, r["fiscal_year"]))
    horizon.sort(key=lambda r: (r["payer"] != ALL, r["payer"] != "city", -abs(r["change_mean_cny"])))
    programs.sort(key=lambda r: -abs(r["change_mean_cny"]))
    return {"by_year": by_year, "horizon": horizon, "programs": programs[:10]}
