"""Pieces the analyst tools share: scenario variants, series keys, run-like output folders.

A *variant* is a scenario compiled from a changed copy of another scenario's
spec (same catalogue), so every change goes through the same validation as a
scenario file. A *run-like folder* holds what ``fiscal-sim run`` writes
(summary, dimension tables, manifest) so the report and BI tools read a
compared or swept scenario exactly like a run.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import yaml

from fiscal_sim import headline
from fiscal_sim.engine.ledger import SeriesLayout
from fiscal_sim.orchestrate.run import manifest, summary_table, tail_means
from fiscal_sim.errors import InputError
from fiscal_sim.io.dimensions import cost_shares_table, jurisdictions_table, payers_table, programs_table
from fiscal_sim.io.parquet import write_json, write_table
from fiscal_sim.scenario import Scenario, load_scenario
from fiscal_sim.stats import Accumulator

SeriesKey = tuple[str, str, str, str, "int | None"]
"""(program, payer, measure, period, fiscal_year) — the key of a summary row."""


def series_keys(lay: SeriesLayout) -> list[SeriesKey]:
    """The key of every series of a layout, in layout order."""
    return list(zip(lay.program, lay.payer, lay.measure, lay.period, lay.fiscal_year))


def spec_data(scen: Scenario) -> dict[str, Any]:
    """The scenario's spec as plain data (what a scenario file holds under ``scenario:``)."""
    return scen.spec.model_dump(by_alias=True, mode="json")


def variant(scen: Scenario, data: dict[str, Any], label: str) -> Scenario:
    """Compile ``data`` (a changed :func:`spec_data`) with ``scen``'s catalogue.

    Problems are reported against ``label`` (e.g. the sweep point) rather than
    the temporary file the spec passes through.
    """
    book = data.get("commitments")
    named = book if isinstance(book, str) else (book or {}).get("register")
    if named:  # a relative register stays where the original scenario points (a variant may drop it: null)
        register = str(Path(scen.path).resolve().parent / named)
        data = data | {"commitments": register if isinstance(book, str) else dict(book or {}) | {"register": register}}
    with tempfile.TemporaryDirectory(prefix="fiscal-sim-variant-") as d:
        path = Path(d) / "scenario.yaml"
        path.write_text(yaml.safe_dump({"scenario": data}, allow_unicode=True, sort_keys=False), encoding="utf-8")
        try:
            compiled = load_scenario(path, catalogue=scen.catalogue)
        except InputError as e:
            raise InputError([dataclasses.replace(p, file=label, line=None) for p in e.problems]) from None
    return dataclasses.replace(compiled, path=scen.path)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def write_run_folder(
    folder: Path,
    scen: Scenario,
    lay: SeriesLayout,
    acc: Accumulator,
    run_id: str,
    command: list[str] | None,
    extra_manifest: dict[str, Any] | None = None,
) -> pa.Table:
    """Write summary, dimension tables and manifest of ``scen`` into ``folder``; return the summary."""
    folder.mkdir(parents=True, exist_ok=True)
    summary = summary_table(scen, lay, acc)
    write_table(summary, folder / "summary.parquet", run_id, scenario=scen.spec.name)
    for name, table in (
        ("programs", programs_table(scen)),
        ("payers", payers_table(scen)),
        ("jurisdictions", jurisdictions_table(scen)),
        ("cost_shares", cost_shares_table(scen)),
    ):
        write_table(table, folder / f"{name}.parquet", run_id)
    meta = manifest(scen, run_id, command, 1)
    meta["files"] = {k: v for k, v in meta["files"].items() if k != "draws"}
    write_json(meta | (extra_manifest or {}), folder / "manifest.json")
    headline.write(folder, tail=tail_means(scen, acc))
    return summary


def write_file_atomic(table: pa.Table, path: Path, run_id: str, **extra: str) -> None:
    """Write one Parquet file through a temporary name, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        write_table(table, tmp, run_id, **extra)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def nan_to_null(values: np.ndarray) -> pa.Array:
    """float64 array with NaN as NULL ("not applicable" in BI tools)."""
    return pa.array(np.asarray(values, dtype=float), from_pandas=True)
