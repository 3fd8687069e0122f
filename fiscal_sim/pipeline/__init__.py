"""The administrative pipeline: calls, review capacity, payment batches, appropriations and arrears (simpy).

Entitlement is not cash. Programs a scenario puts in a ``pipelines:`` entry
(:mod:`fiscal_sim.pipeline.spec`) are simulated per applicant by the engine;
with ``fiscal-sim run --pipeline`` each draw's applicants then go through the
simpy model (:mod:`fiscal_sim.pipeline.model`), whose payments replace the
engine's cash for those programs; every other program keeps the vectorised
engine's cash, in the same run. With review and appropriations unbounded and
no lag, the pipeline pays exactly the engine's cash.

Modules: ``spec`` (scenario syntax, validation), ``plan`` (calendar and
settings in days and yuan), ``model`` (the simpy model of one draw),
``apply`` (a chunk of draws, the ledger), ``measures`` (the per-draw table),
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
    """Run the pipelines for draws ``[start, stop)``; replace their programs' cash in ``ledgers``; per-draw table."""
    from fiscal_sim.pipeline.apply import apply_pipelines as _apply

    return _apply(scen, ledgers, start, stop)


def write_pipeline_outputs(scen: "Scenario", tables: "list[pa.Table]", folder: Path, run_id: str) -> None:
    """Write ``pipeline_draws.parquet`` and ``pipeline_summary.parquet`` into the run folder."""
    from fiscal_sim.pipeline.outputs import write_pipeline_outputs as _write

    _write(scen, tables, folder, run_id)


__all__ = ["apply_pipelines", "pipeline_programs", "write_pipeline_outputs"]
