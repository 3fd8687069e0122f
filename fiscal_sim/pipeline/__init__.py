"""The administrative pipeline: calls, review capacity, payment batches, appropriations and arrears (simpy).

Entitlement is not cash. Programs a scenario puts in a ``pipelines:`` entry
(:mod:`fiscal_sim.pipeline_spec`) are simulated per applicant by the engine;
with ``fiscal-sim run --pipeline`` each draw's applicants then go through the
simpy model (:mod:`fiscal_sim.pipeline.model`), whose payments replace the
engine's cash for those programs; every other program keeps the vectorised
engine's cash, in the same run. With review and appropriations unbounded and
no lag, the pipeline pays exactly the engine's cash.

Modules: ``spec`` (scenario syntax, validation), ``plan`` (calendar and
settings in days and yuan), ``model`` (the simpy model of one draw),
``apply`` (the model over a chunk of draws), ``chunk`` (what it hands on), ``measures`` (money by year:
the ledger and the per-draw table),
``outputs`` (Parquet files and statistics over draws).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from fiscal_sim.engine.simulate import ProgramLedger
    from fiscal_sim.scenario import Scenario


def pipeline_programs(scen: "Scenario") -> set[str]:
    """Ids of the programs some pipeline of the scenario runs."""
    return {pid for p in scen.spec.pipelines for pid in p.get("programs", [])}


def apply_pipelines(scen: "Scenario", ledgers: "dict[str, ProgramLedger]", start: int, stop: int) -> "pa.Table | None":
    """Run the pipelines for draws ``[start, stop)``; replace their programs' cash in ``ledgers``; per-draw table.

    The model (:mod:`.apply`) hands each pipeline's outcomes to :mod:`.measures`, which books the cash paid
    into the ledgers (rejections become cancellations) and builds the per-draw rows.
    """
    import pyarrow as pa

    from fiscal_sim.pipeline.apply import run_pipeline
    from fiscal_sim.pipeline.chunk import EVENTS_KEY
    from fiscal_sim.pipeline.measures import Labels, measure
    from fiscal_sim.pipeline.plan import compile_pipelines

    plans = compile_pipelines(scen)
    if not plans:
        return None
    labels = Labels.of(scen, plans)
    tables, events = [], 0
    for plan in plans:
        ch, out = run_pipeline(scen, plan, ledgers, start, stop)
        tables.append(measure(scen, plan, labels, ch, out, ledgers, start))
        events += out.events
        for pid in plan.programs:
            ledgers[pid].awards = None  # free the per-applicant arrays early
    table = pa.concat_tables(tables)
    return table.replace_schema_metadata({EVENTS_KEY: str(events).encode()})


def write_pipeline_outputs(scen: "Scenario", tables: "list[pa.Table]", folder: Path, run_id: str) -> None:
    """Write ``pipeline_draws.parquet`` and ``pipeline_summary.parquet`` into the run folder."""
    from fiscal_sim.pipeline.outputs import write_pipeline_outputs as _write

    _write(scen, tables, folder, run_id)


__all__ = ["apply_pipelines", "pipeline_programs", "write_pipeline_outputs"]
