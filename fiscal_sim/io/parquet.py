"""Parquet outputs for BI tools: typed tables, dimension tables, manifest, atomic run folders.

Conventions: ``fiscal_year`` is int16; strings are dictionary-encoded; money is
float64 yuan with ``_cny`` in the column name; dates are date32; every file
carries ``fiscal_sim.schema_version``, ``fiscal_sim.run_id`` and
``fiscal_sim.money_unit`` in its key-value metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np

import pyarrow as pa
import pyarrow.parquet as pq

from fiscal_sim.version import __version__
from fiscal_sim.errors import FiscalSimError

SCHEMA_VERSION = "1.0"


def encode_strings(table: pa.Table) -> pa.Table:
    """Dictionary-encode every string column (small files, fast BI filters)."""
    cols = [c.dictionary_encode() if pa.types.is_string(c.type) else c for c in table.columns]
    fields = [pa.field(f.name, c.type, f.nullable, f.metadata) for f, c in zip(table.schema, cols)]
    return pa.Table.from_arrays(cols, schema=pa.schema(fields, table.schema.metadata))


def with_metadata(table: pa.Table, run_id: str, **extra: str) -> pa.Table:
    meta = {
        "fiscal_sim.schema_version": SCHEMA_VERSION,
        "fiscal_sim.engine_version": __version__,
        "fiscal_sim.run_id": run_id,
        "fiscal_sim.money_unit": "CNY (yuan) in *_cny columns",
    } | extra
    return table.replace_schema_metadata(
        {**(table.schema.metadata or {}), **{k.encode(): v.encode() for k, v in meta.items()}}
    )


class NonFiniteError(FiscalSimError):
    """A statistic came out infinite or NaN: the result is not written."""


def require_finite(table: pa.Table, name: str) -> None:
    """Refuse a table with an infinite or NaN value (NULL is "not applicable" and allowed)."""
    for col in table.column_names:
        c = table[col]
        if pa.types.is_floating(c.type):
            values = c.to_numpy(zero_copy_only=False)
            bad = ~np.isfinite(values) & ~np.asarray(c.is_null().to_numpy(zero_copy_only=False), bool)
            if bad.any():
                raise NonFiniteError(
                    f"{name}: {int(bad.sum())} value(s) of column {col} are infinite or NaN (overflow in the inputs?)"
                )


COMPRESSION = "zstd"
"""the one codec of every table fiscal_sim writes"""


def round_money(table: pa.Table) -> pa.Table:
    """Round every float ``*_cny`` column to the fen (0.01 yuan): the stored amounts BI tools sum."""
    import pyarrow.compute as pc

    cols = [
        pc.round(c, 2) if n.endswith("_cny") and pa.types.is_floating(c.type) else c
        for n, c in zip(table.column_names, table.columns)
    ]
    return pa.table(cols, schema=table.schema)


def write_table(table: pa.Table, path: Path, run_id: str, **extra: str) -> None:
    require_finite(table, path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(with_metadata(encode_strings(round_money(table)), run_id, **extra), path, compression=COMPRESSION)


def manifest_header(run_id: str, command: list[str] | None, **kind: str) -> dict[str, Any]:
    """The fields every manifest starts with: run id, versions, creation time (UTC), command line."""
    import datetime as dt
    import sys

    from fiscal_sim.io.secrets import mask_all

    return {
        **kind,
        "run_id": run_id,
        "engine_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": mask_all(command or sys.argv),
    }


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it, renamed over it: a reader sees the old
    file or the new one, never half of one, and a failed write leaves no temporary file behind."""
    import os
    import uuid

    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_dir(final: Path, kind: str = "run", inputs: Iterable[Path] = ()):
    """The checked, atomic output folder of :func:`fiscal_sim.io.outdir.replace_dir` (kept for older callers)."""
    from fiscal_sim.io.outdir import replace_dir

    return replace_dir(final, kind, inputs)
