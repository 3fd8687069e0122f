"""Run a scenario: chunks of draws on an executor, statistics, Parquet outputs.

Each chunk simulates every program for its draws (:mod:`fiscal_sim.engine`),
hands its ledgers to the pipeline when asked (:mod:`fiscal_sim.pipeline`),
writes its part of the per-draw ledger straight into the hive layout (one file
per fiscal year named by the chunk's first draw, so a retried chunk overwrites
its own part), and returns its statistics (a fresh, sparse accumulator); the client folds
them in block order and writes the summary, the dimension tables and the
manifest into a temporary folder that replaces the output folder only when
everything succeeded — or, for a URL (:mod:`fiscal_sim.io.target`), under a
new run-id prefix with ``_SUCCESS`` written last.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from fiscal_sim import headline
from fiscal_sim.engine.ledger import (
    ALL,
    SeriesLayout,
    draws_tables,
    grant_programs,
    horizon_cash,
    layout,
    series_rows,
    total_key,
)
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.engine.simulate import blocks_of
from fiscal_sim.io.dimensions import cost_shares_table, jurisdictions_table, payers_table, programs_table
from fiscal_sim.io.outdir import inputs_of
from fiscal_sim.io.parquet import manifest_header, round_money, with_metadata, write_json, write_table
from fiscal_sim.io.target import Remote, output, write_part
from fiscal_sim.orchestrate.driver import chunks, drive, drive_chunks, executor_for
from fiscal_sim.orchestrate.executors import Executor
from fiscal_sim.scenario import Scenario, timeline_manifest
from fiscal_sim.stats import BINS_PER_DECADE, Accumulator, BreachDrivers, TopDraws, summarise


# zstd like every other table; dictionary pages only for the string keys; min/max statistics only where BI
# filters (draw, keys); row groups of up to 1 Mi rows (a chunk-year part is one group: few, large reads)
DRAWS_WRITE_OPTIONS = dict(
    compression="zstd",
    use_dictionary=["program", "spending", "jurisdiction", "payer", "vintage", "scenario"],
    write_statistics=["draw", "program", "spending", "jurisdiction", "payer", "vintage", "scenario", "fiscal_year"],
    row_group_size=1 << 20,
)


@dataclass
class RunResult:
    out: Path | Remote
    run_id: str
    summary: pa.Table
    accumulator: Accumulator
    layout: SeriesLayout
    headline: dict | None = None


def run_chunk(
    scen: Scenario,
    lay: SeriesLayout,
    start: int,
    stop: int,
    draws_dir: Path | str | None,
    run_id: str = "",
    acc: Accumulator | None = None,
    pipeline: bool = False,
) -> tuple[Accumulator, pa.Table | None]:
    """Simulate one chunk; write its per-draw ledger; return its statistics (added into ``acc`` if given).

    With ``pipeline``, programs that declare an administrative pipeline get
    their cash from the simpy model (which replaces the engine's cash in the
    ledgers) and the chunk also returns the pipeline's per-draw table.
    """
    extra = None
    if pipeline and scen.spec.pipelines:
        from fiscal_sim.pipeline import apply_pipelines, pipeline_programs

        ledgers = simulate_chunk(scen, start, stop, keep_awards=pipeline_programs(scen))
        extra = apply_pipelines(scen, ledgers, start, stop)
    else:
        ledgers = simulate_chunk(scen, start, stop)
    acc = acc or Accumulator(
        lay.size, lay.budget_cny, top=TopDraws(headline.tail_size(scen.spec.draws)), drivers=breach_drivers(scen, lay)
    )
    rows, values = series_rows(scen, lay, ledgers)
    acc.add([(b, first - start, nb) for b, first, nb in blocks_of(scen, start, stop)], values, rows)
    if acc.top is not None:  # the worst draws by total grant cash, with each program's part (headline tail)
        acc.top.add(np.arange(start, stop), horizon_cash(scen, lay, rows, values))
    del values
    if draws_dir is not None:
        for year, table in draws_tables(scen, ledgers, start).items():
            write_part(
                draws_dir,
                f"scenario={scen.spec.name}/fiscal_year={year}/part-{start:09d}.parquet",
                with_metadata(table, run_id),
                **DRAWS_WRITE_OPTIONS,
            )
    return acc, extra


def breach_drivers(scen: Scenario, lay: SeriesLayout) -> BreachDrivers:
    """An empty :class:`BreachDrivers` for the scenario's budget lines: a line on a total (``ALL``) is split among
    the programs adding into it, paid by the same payer in the same year and measure; a line on one program has
    that program as its only part. Parts are the scenario's programs, in order (:func:`driver_parts`)."""
    lines = np.flatnonzero(np.isfinite(lay.budget_cny))
    ids = driver_parts(scen)
    members = np.full((lines.size, len(ids)), -1, dtype=np.int64)
    for i, c in enumerate(lines):
        offset = c - lay.blocks[(lay.program[c], lay.payer[c], ALL)]
        for j, sp in enumerate(scen.programs):
            if sp.id == lay.program[c] or total_key(sp) == lay.program[c]:
                first = lay.blocks.get((sp.id, lay.payer[c], ALL))
                members[i, j] = -1 if first is None else first + offset
    return BreachDrivers(lines, lay.budget_cny[lines], members)


def driver_parts(scen: Scenario) -> list[str]:
    """The parts :func:`breach_drivers` splits a budget line's overrun among: the scenario's programs."""
    return [sp.id for sp in scen.programs]


def breach_parts(scen: Scenario, lay: SeriesLayout, acc: Accumulator) -> dict[str, dict[str, float]] | None:
    """Each budget line's overrun, summed over the draws that exceed it, split among the programs (yuan, only
    non-zero parts), keyed ``program|payer|measure|fiscal_year`` of the line's series; None when not kept."""
    d = acc.drivers
    if d is None:
        return None
    ids = driver_parts(scen)
    return {
        f"{lay.program[c]}|{lay.payer[c]}|{lay.measure[c]}|{lay.fiscal_year[c]}": {
            ids[j]: int(d.overrun[i, j]) / 100 for j in np.flatnonzero(d.overrun[i])
        }
        for i, c in enumerate(d.lines.tolist())
    }


def chunk_task(
    state: tuple[Scenario, SeriesLayout, bool], start: int, stop: int, draws_dir: Path | str | None, run_id: str
) -> tuple[int, int, Accumulator, pa.Table | None]:
    """One chunk on a worker: its statistics in a fresh accumulator (a few sparse arrays, shared with nothing
    the worker keeps) and its pipeline table."""
    scen, lay, pipeline = state
    acc, extra = run_chunk(scen, lay, start, stop, draws_dir, run_id, None, pipeline)
    return start, stop, acc, extra


def simulate(
    scen: Scenario,
    workers: int = 1,
    draws_dir: Path | str | None = None,
    progress: Callable[[int], None] | None = None,
    run_id: str = "",
    pipeline: bool = False,
    executor: Executor | None = None,
) -> tuple[Accumulator, SeriesLayout, list[pa.Table]]:
    """Run all chunks on ``executor`` (default: a pool of ``workers`` processes); fold statistics; collect
    pipeline tables (in chunk order)."""
    lay = layout(scen, by_vintage=True)
    total = Accumulator(lay.size, lay.budget_cny, drivers=breach_drivers(scen, lay))
    extras: list[pa.Table] = []
    for _, _, (_, _, acc, extra) in drive_chunks(
        scen, executor_for(executor, workers), chunk_task, (scen, lay, pipeline), (draws_dir, run_id), progress
    ):
        total.merge(acc)
        if extra is not None:
            extras.append(extra)
    return total, lay, extras


_POINT_LAYOUTS: dict[int, tuple[Scenario, SeriesLayout]] = {}


def _point_task(scens: tuple[Scenario, ...], point: int, start: int, stop: int) -> tuple[int, int, int, Accumulator]:
    """One chunk of one point: the point's layout is made on the worker (kept for the few points open at once,
    and only for the very scenario object it was made from: a later sweep in the same process makes its own)."""
    cached = _POINT_LAYOUTS.get(point)
    if cached is None or cached[0] is not scens[point]:
        if len(_POINT_LAYOUTS) >= 4:
            del _POINT_LAYOUTS[min(_POINT_LAYOUTS)]  # points are submitted in order: the lowest is done
        _POINT_LAYOUTS[point] = cached = (scens[point], layout(scens[point], by_vintage=True))
    start, stop, acc, _ = chunk_task((scens[point], cached[1], False), start, stop, None, "")
    return point, start, stop, acc


def simulate_points(
    scens: list[Scenario], executor: Executor, progress: Callable[[int], None] | None = None
) -> Iterator[tuple[int, Accumulator, SeriesLayout]]:
    """Several scenarios (a sweep's points) on one executor: every point's chunks are submitted in point order
    through the executor's bounded window, so only a few points are open at once; yields ``(point, statistics,
    layout)`` as each point's last chunk comes in (in point order, parts folded in chunk order). No per-draw ledger.
    A point's layout and statistics exist only while it is open, on the client as on the workers."""
    tasks = [(i, a, b) for i, s in enumerate(scens) for a, b in chunks(s)]
    left = Counter(i for i, _, _ in tasks)
    open_: dict[int, tuple[Accumulator, SeriesLayout]] = {}
    tick = (lambda t: progress(t[2] - t[1])) if progress else None
    for (i, _, _), (_, _, _, acc) in drive(executor, _point_task, tuple(scens), tasks, tick):
        if i not in open_:
            lay = layout(scens[i], by_vintage=True)
            open_[i] = (Accumulator(lay.size, lay.budget_cny), lay)
        open_[i][0].merge(acc)
        del acc
        left[i] -= 1
        if not left[i]:
            yield i, *open_.pop(i)


def summary_table(scen: Scenario, lay: SeriesLayout, acc: Accumulator) -> pa.Table:
    cols = summarise(acc, scen.spec.var_level)
    keys = lay.table()
    table = pa.table({"scenario": [scen.spec.name] * lay.size, **{n: keys[n] for n in keys.column_names}})
    for name, values in cols.items():  # NaN (no budget line) becomes NULL: "not applicable" in BI tools
        table = table.append_column(name, pa.array(values, from_pandas=True))
    table = table.append_column("var_level", pa.array(np.full(lay.size, scen.spec.var_level)))
    total = np.isin(lay.program, ["ALL", "ALL_EQUITY"]) | (np.asarray(lay.payer) == "ALL")
    return round_money(table.append_column("is_total", pa.array(total)))  # is_total: sum only rows where it is false


def tail_means(scen: Scenario, acc: Accumulator) -> dict[str, float] | None:
    """Each grant program's mean horizon cash in the worst draws the accumulator kept (the headline's tail), yuan;
    None when it kept none."""
    return dict(zip(grant_programs(scen), acc.top.means().tolist())) if acc.top is not None else None


def manifest(scen: Scenario, run_id: str, command: list[str] | None, workers: int) -> dict:
    return {
        **manifest_header(run_id, command),
        "scenario": {
            "name": scen.spec.name,
            "path": scen.path,
            "sha256": scen.sha256,
            "description": scen.spec.description,
            "policy_basis": scen.spec.policy_basis,
        },
        "catalogue_sha256": scen.catalogue.sha256(),
        "seed_entropy": scen.spec.seed,
        "draws": scen.spec.draws,
        "block_size": scen.spec.block_size,
        "chunk_size": scen.spec.chunk_size,
        "workers": workers,
        "horizon": {"start": scen.spec.horizon.start, "end": scen.spec.horizon.end},
        "var_level": scen.spec.var_level,
        "programs_simulated": [sp.id for sp in scen.programs],
        "programs_not_simulated": {p.id: p.spec.status for p in scen.unpriced},
        "non_cumulation": {g.name: {"members": g.members, "overlap": g.overlap} for g in scen.groups},
        "priced_by_scenario": {pid: p.note for pid, p in scen.spec.price.items()},
        **timeline_manifest(scen),
        "quantile_method": f"log histogram, {BINS_PER_DECADE} bins per decade, clamped to exact min/max",
        "money_unit": "CNY (yuan); columns ending in _cny",
        "files": {
            "summary": "summary.parquet",
            "headline": "headline.json",
            "draws": "draws/ (hive: scenario, fiscal_year)",
            "dimensions": ["programs.parquet", "payers.parquet", "jurisdictions.parquet", "cost_shares.parquet"],
        },
    }


def run(
    scen: Scenario,
    out: Path | str | Remote,
    workers: int = 1,
    write_draws: bool = True,
    command: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    pipeline: bool = False,
    executor: Executor | None = None,
) -> RunResult:
    """Simulate ``scen`` and write its outputs to ``out`` (chunks on ``executor``, default a pool): a local
    folder atomically, or a URL's ``<run_id>/`` prefix with ``_SUCCESS`` last (:mod:`fiscal_sim.io.target`)."""
    run_id = uuid.uuid4().hex[:12]
    with output(out, "run", run_id, inputs_of(scen)) as dest:
        tmp = dest.folder
        acc, lay, extras = simulate(
            scen, workers, dest.draws if write_draws else None, progress, run_id, pipeline, executor
        )
        workers = executor.workers if executor else workers
        if pipeline and scen.spec.pipelines:
            from fiscal_sim.pipeline import write_pipeline_outputs

            write_pipeline_outputs(scen, extras, tmp, run_id)
        summary = summary_table(scen, lay, acc)
        write_table(summary, tmp / "summary.parquet", run_id, scenario=scen.spec.name)
        for name, table in (
            ("programs", programs_table(scen)),
            ("payers", payers_table(scen)),
            ("jurisdictions", jurisdictions_table(scen)),
            ("cost_shares", cost_shares_table(scen)),
        ):
            write_table(table, tmp / f"{name}.parquet", run_id)
        info = manifest(scen, run_id, command, workers)
        if pipeline and scen.spec.pipelines:
            info["files"]["pipeline"] = ["pipeline_draws.parquet", "pipeline_summary.parquet"]
            info["pipelines"] = [p.get("name") for p in scen.spec.pipelines]
        write_json(info, tmp / "manifest.json")
        head = headline.write(tmp, tail=tail_means(scen, acc), drivers=breach_parts(scen, lay, acc))
    return RunResult(dest.location, run_id, summary, acc, lay, head)
