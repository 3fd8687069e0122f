"""The pipeline's Parquet files: ``pipeline_draws.parquet`` (per draw) and ``pipeline_summary.parquet``.

The summary has one row per (fiscal_year, pipeline, program, payer, measure)
with the mean and the 5th, 50th, 90th and 95th percentiles over draws
(exact, numpy's linear interpolation), over the draws where the measure is
defined (``draws``). Measure ``exhausted`` (on ``program = ALL`` rows of
bounded appropriations) is the probability that the appropriation ran out
before the year's end, ``mean``, with its 95% Wilson interval in
``p_lo``/``p_hi``; ``exhausted_day_of_year`` gives the day it ran out, over
the draws where it did.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa

from fiscal_sim.io.parquet import write_table
from fiscal_sim.pipeline.chunk import EVENTS_KEY
from fiscal_sim.pipeline.measures import MONEY
from fiscal_sim.scenario import Scenario
from fiscal_sim.stats import wilson

QUANTILES = (5, 50, 90, 95)
MEASURES: dict[str, str] = {
    **{m: "CNY" for m in MONEY},
    "appropriation_left_cny": "CNY",
    "backlog_applications": "applications",
    "first_payments": "applications",
    "wait_mean_days": "days",
    "wait_p90_days": "days",
}
KEYS = ("fiscal_year", "pipeline", "program", "payer")


def _codes(col: pa.ChunkedArray) -> np.ndarray:
    return col.combine_chunks().indices.to_numpy(zero_copy_only=False)


def _values(table: pa.Table, name: str) -> np.ndarray:
    """A column as float64 with nulls as NaN."""
    arr = table[name].combine_chunks()
    if pa.types.is_date32(arr.type):
        arr = arr.cast(pa.int32())
    return arr.cast(pa.float64()).to_numpy(zero_copy_only=False)


def combine(tables: list[pa.Table]) -> tuple[pa.Table, int]:
    """All chunks in one table sorted by (pipeline, draw); the simpy events they report."""
    tables = [t for t in tables if t is not None and t.num_rows]
    events = sum(int((t.schema.metadata or {}).get(EVENTS_KEY, b"0")) for t in tables)
    table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables]).combine_chunks()
    order = np.lexsort((table["draw"].to_numpy(), _codes(table["pipeline"])))
    return table.take(pa.array(order)), events


def _stats(block: np.ndarray) -> dict[str, np.ndarray]:
    """Statistics over draws (axis 0) of a draws × rows block with NaN = undefined."""
    if block.shape[1] == 0:
        return {"draws": np.zeros(0, np.int64), "mean": np.zeros(0), **{f"p{v:02d}": np.zeros(0) for v in QUANTILES}}
    defined = ~np.isnan(block)
    if defined.all():  # the common case: plain (faster) percentiles
        q = np.percentile(block, QUANTILES, axis=0)
        out = {"draws": defined.sum(axis=0), "mean": block.mean(axis=0)}
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanpercentile(block, QUANTILES, axis=0)
            out = {"draws": defined.sum(axis=0), "mean": np.nanmean(block, axis=0)}
    out.update({f"p{v:02d}": q[i] for i, v in enumerate(QUANTILES)})
    return out


def summary_table(scen: Scenario, table: pa.Table) -> pa.Table:
    """Statistics over draws for every row key and measure of the per-draw table."""
    pipe = _codes(table["pipeline"])
    parts: list[dict[str, np.ndarray]] = []
    key_cols: dict[str, list[np.ndarray]] = {k: [] for k in KEYS}
    for code in np.unique(pipe):
        rows = np.flatnonzero(pipe == code)
        n = np.unique(table["draw"].to_numpy()[rows]).size
        R = rows.size // n
        assert R * n == rows.size, "every draw has the same rows"
        part = table.take(pa.array(rows))
        first = part.slice(0, R)
        cols = {m: _values(part, m).reshape(n, R) for m in MEASURES}
        for m, unit in MEASURES.items():
            s = _stats(cols[m])
            keep = s["draws"] > 0
            parts.append(
                {
                    "measure": np.full(keep.sum(), m),
                    "unit": np.full(keep.sum(), unit),
                    **{k: v[keep] for k, v in s.items()},
                    "p_lo": np.full(keep.sum(), np.nan),
                    "p_hi": np.full(keep.sum(), np.nan),
                }
            )
            for k in KEYS:
                key_cols[k].append(np.asarray(first[k].to_pylist(), dtype=object)[keep])
        bounded = ~np.isnan(_values(first, "appropriation_cny"))
        hit = _values(part, "exhausted").reshape(n, R)[:, bounded]
        k_hit = hit.sum(axis=0)
        lo, hi = wilson(k_hit, n)
        parts.append(
            {
                "measure": np.full(k_hit.size, "exhausted"),
                "unit": np.full(k_hit.size, "probability"),
                "draws": np.full(k_hit.size, n),
                "mean": k_hit / n,
                **{f"p{v:02d}": np.full(k_hit.size, np.nan) for v in QUANTILES},
                "p_lo": lo,
                "p_hi": hi,
            }
        )
        day = _values(part, "exhausted_on").reshape(n, R)[:, bounded]
        jan1 = (np.array(first["fiscal_year"].to_pylist())[bounded] - 1970).astype("datetime64[Y]")
        day = day - jan1.astype("datetime64[D]").astype(np.int64)[None, :] + 1
        s = _stats(day)
        keep = s["draws"] > 0
        parts.append(
            {
                "measure": np.full(keep.sum(), "exhausted_day_of_year"),
                "unit": np.full(keep.sum(), "day"),
                **{k: v[keep] for k, v in s.items()},
                "p_lo": np.full(keep.sum(), np.nan),
                "p_hi": np.full(keep.sum(), np.nan),
            }
        )
        for k in KEYS:
            vals = np.asarray(first[k].to_pylist(), dtype=object)[bounded]
            key_cols[k] += [vals, vals[keep]]
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    size = cat["measure"].size
    out = {
        "scenario": pa.array([scen.spec.name] * size),
        "fiscal_year": pa.array(np.concatenate(key_cols["fiscal_year"]).astype(np.int16)),
        **{k: pa.array(np.concatenate(key_cols[k]).tolist(), pa.string()) for k in KEYS[1:]},
        "measure": pa.array(cat["measure"].tolist(), pa.string()),
        "unit": pa.array(cat["unit"].tolist(), pa.string()),
        "draws": pa.array(cat["draws"].astype(np.int32)),
    }
    for c in ("mean", *(f"p{v:02d}" for v in QUANTILES), "p_lo", "p_hi"):
        out[c] = pa.array(cat[c].astype(float), from_pandas=True)
    return pa.table(out)


def write_pipeline_outputs(scen: Scenario, tables: list[pa.Table], folder: Path, run_id: str) -> None:
    """Write ``pipeline_draws.parquet`` and ``pipeline_summary.parquet`` into the run folder."""
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return
    table, events = combine(tables)
    meta = {
        "scenario": scen.spec.name,
        "fiscal_sim.pipeline.simpy_events": str(events),
        "fiscal_sim.pipeline.pipelines": ", ".join(p["name"] for p in scen.spec.pipelines),
    }
    write_table(table, Path(folder) / "pipeline_draws.parquet", run_id, **meta)
    write_table(summary_table(scen, table), Path(folder) / "pipeline_summary.parquet", run_id, **meta)
