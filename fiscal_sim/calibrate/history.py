"""A bureau's award history: read (CSV, Parquet, XLSX), validate against the catalogue, hold as arrays.

One row per (program, jurisdiction, year). Columns (documented in README "Calibration"):

- ``program`` — a program id of the catalogue;
- ``jurisdiction`` — where the awards were made, or ``ALL`` for the program's whole area (split unknown);
- ``year`` — the year of the awards (no later than the current year);
- ``awards`` — number of awards made (a count, ≥ 0);
- ``applications`` (optional) — applications received (≥ awards; read and checked, not used by the model);
- ``amount_cny`` or ``amount_wan`` (optional) — total awarded, in 元 or 万元; or ``amount`` with a ``unit`` column
  (元, 万元, 亿元) per row; ``paid_cny`` / ``paid_wan`` / ``paid`` likewise for payments made;
- ``source`` (optional) — free text (the shipped synthetic history says so in every row).

Every problem names the file, the row (1 = first data row; the spreadsheet line is row + 1) and the column.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fiscal_sim.catalogue.loader import Catalogue
from fiscal_sim.errors import MAX_PROBLEMS, InputError, Problem
from fiscal_sim.units import cny_per

ALL = "ALL"
REQUIRED = ("program", "jurisdiction", "year", "awards")
MONEY = ("amount", "paid")
KNOWN = set(REQUIRED) | {"applications", "unit", "source"} | {f"{m}{s}" for m in MONEY for s in ("", "_cny", "_wan")}


ARRAYS = ("program", "jurisdiction", "year", "awards", "applications", "amount_cny", "paid_cny")
"""The parallel arrays of a :class:`History`, in order."""


@dataclass
class History:
    """Validated history rows as parallel arrays; money in yuan (NaN where not recorded)."""

    path: str
    program: np.ndarray
    jurisdiction: np.ndarray
    year: np.ndarray
    awards: np.ndarray
    applications: np.ndarray
    amount_cny: np.ndarray
    paid_cny: np.ndarray
    sources: tuple[str, ...] = ()  # the distinct texts of the optional source column

    def __len__(self) -> int:
        return int(self.year.size)

    @property
    def programs(self) -> list[str]:
        return sorted(set(self.program.tolist()))

    @property
    def years(self) -> list[int]:
        return sorted(set(self.year.tolist()))

    @property
    def synthetic(self) -> bool:
        """Some rows' source says they are synthetic (made up to show the method, not real records)."""
        return any("synthetic" in s.lower() for s in self.sources)

    def synthetic_note(self) -> str | None:
        """One plain line when the history is synthetic: every figure printed after it illustrates the method
        and is not the bureau's record."""
        if not self.synthetic:
            return None
        return (
            f"NOTE: {self.path} is synthetic (source: {'; '.join(self.sources)}): the figures below illustrate "
            "the method; they are not the bureau's records"
        )

    def select(self, mask: np.ndarray) -> "History":
        return dataclasses.replace(self, **{f: getattr(self, f)[mask] for f in ARRAYS})

    def of(self, program: str) -> "History":
        return self.select(self.program == program)

    def before(self, year: int) -> "History":
        return self.select(self.year < year)

    def since(self, year: int) -> "History":
        return self.select(self.year >= year)


MAX_ROWS = 1_000_000
"""a history has one row per program, jurisdiction and year: more rows than this is not a history"""


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and the rows as dicts of raw cell values, by file type."""
    suffix = path.suffix.lower()
    if suffix == ".csv":  # UTF-8 (with or without BOM), else GB18030 (what Chinese Excel writes by default)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("gb18030")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = []
        for row in reader:
            rows.append({k.strip(): v for k, v in row.items() if k is not None})
            if len(rows) > MAX_ROWS:
                break
        return [f.strip() for f in reader.fieldnames or []], rows
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        if pf.metadata.num_rows > MAX_ROWS:
            return pf.schema_arrow.names, [{}] * (MAX_ROWS + 1)
        return pf.schema_arrow.names, pf.read().to_pylist()
    if suffix == ".xlsx":
        try:
            import openpyxl
        except ImportError:
            raise InputError(
                [Problem(str(path), None, "-", "reading .xlsx needs openpyxl: pip install 'fiscal-sim[xlsx]'")]
            ) from None
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rows = list(book.worksheets[0].iter_rows(values_only=True))
        finally:
            book.close()
        if not rows:
            return [], []
        head = [str(h).strip() if h is not None else "" for h in rows[0]]
        return head, [dict(zip(head, r)) for r in rows[1:] if any(v not in (None, "") for v in r)]
    raise InputError(
        [Problem(str(path), None, "-", f"unknown history file type {suffix!r}: use .csv, .parquet or .xlsx")]
    )


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _number(v: Any) -> float:
    """A finite number (``nan`` and ``inf`` are not numbers of awards or money)."""
    if isinstance(v, str):
        v = v.strip().replace(",", "")
    x = float(v)
    if not math.isfinite(x):
        raise ValueError(f"{v!r} is not a finite number")
    return x


def _columns_problems(name: str, header: list[str], rows: list[dict[str, Any]]) -> list[Problem]:
    if len(rows) > MAX_ROWS:
        return [
            Problem(
                name,
                None,
                "-",
                f"more than {MAX_ROWS:,} rows: a history has one row per program, "
                "jurisdiction and year (is this the right file?)",
            )
        ]
    columns = set(header)
    problems = [Problem(name, None, f"column {c}", "required column is missing") for c in REQUIRED if c not in columns]
    problems += [
        Problem(name, None, f"column {c}", f"unknown column (known: {', '.join(sorted(KNOWN))})")
        for c in sorted(columns - KNOWN)
    ]
    for m in MONEY:
        given = [c for c in (m, f"{m}_cny", f"{m}_wan") if c in columns]
        if len(given) > 1:
            problems.append(
                Problem(name, None, f"column {given[1]}", f"give {m} once: {' and '.join(given)} both present")
            )
    if not rows:
        problems.append(Problem(name, None, "-", "the history file has no rows"))
    return problems


def _count(row: dict[str, Any], col: str, bad) -> float:
    """A whole number ≥ 0, or NaN when blank (awards must be given)."""
    v = row.get(col)
    if _blank(v):
        if col == "awards":
            bad(col, "awards is empty")
        return math.nan
    try:
        x = _number(v)
    except (TypeError, ValueError):
        bad(col, f"not a number: {v!r}")
        return math.nan
    if x < 0:
        bad(col, f"negative count {x:g}")
    elif x != int(x):
        bad(col, f"not a whole number: {x:g}")
    return x


def _money_cny(row: dict[str, Any], m: str, bad) -> float:
    """``m`` (amount or paid) in yuan from ``m_cny``, ``m_wan`` or ``m`` with ``unit``; NaN when not recorded."""
    for col, unit in ((f"{m}_cny", "元"), (f"{m}_wan", "万元"), (m, row.get("unit"))):
        if col not in row or _blank(row[col]):
            continue
        try:
            x = _number(row[col])
        except (TypeError, ValueError):
            bad(col, f"not a number: {row[col]!r}")
            return math.nan
        if _blank(unit):
            bad("unit", f"column {m} needs a unit (元, 万元 or 亿元) in column unit, or use {m}_cny / {m}_wan")
            return math.nan
        try:
            scale = cny_per(str(unit).strip())
        except ValueError as e:
            bad("unit", str(e))
            return math.nan
        if x < 0:
            bad(col, f"negative amount {x:g}")
            return math.nan
        return x * scale
    return math.nan


def _place(row: dict[str, Any], catalogue: Catalogue, bad) -> tuple[str, str]:
    """The row's program id and jurisdiction, checked against the catalogue."""
    geo = catalogue.geography
    pid = str(row.get("program") or "").strip()
    prog = catalogue.programs.get(pid)
    if prog is None:
        bad("program", f"unknown program {pid!r}" if pid else "program is empty")
    jur = str(row.get("jurisdiction") or "").strip()
    if not jur:
        bad("jurisdiction", "jurisdiction is empty (use ALL for the program's whole area)")
    elif jur != ALL and jur not in geo.jurisdictions:
        bad("jurisdiction", f"unknown jurisdiction {jur!r} (known: {', '.join(geo.jurisdictions)}, or ALL)")
    elif prog is not None and jur != ALL and jur not in prog.jurisdictions:
        bad("jurisdiction", f"program does not apply in {jur!r} (it applies in {', '.join(prog.jurisdictions)})")
    return pid, jur


def _year(row: dict[str, Any], this_year: int, bad) -> int | None:
    try:
        value = _number(row.get("year"))
        if value != int(value):
            raise ValueError
    except (TypeError, ValueError):
        bad("year", f"not a year: {row.get('year')!r}")
        return None
    if int(value) > this_year:
        bad("year", f"year {int(value)} is in the future (today is {this_year})")
    return int(value)


def read_history(path: Path | str, catalogue: Catalogue, today: dt.date | None = None) -> History:
    """Read and validate a history file; raise :class:`InputError` listing every problem."""
    path = Path(path)
    name = str(path)
    if not path.exists():
        raise InputError([Problem(name, None, "-", "no such history file")])
    try:
        header, rows = _read_rows(path)
    except InputError:
        raise
    except Exception as e:  # a malformed file: name it, no traceback
        raise InputError(
            [Problem(name, None, "-", f"cannot read history file: {' '.join(str(e).split())[:200]}")]
        ) from None
    problems = _columns_problems(name, header, rows)
    if problems:
        raise InputError(problems)
    this_year = (today or dt.date.today()).year
    fields = ARRAYS
    out: dict[str, list] = {k: [] for k in fields}
    seen: dict[tuple[str, str, int], int] = {}
    for i, row in enumerate(rows, start=1):
        if len(problems) >= MAX_PROBLEMS:  # a file of repeated bad rows: stop reading, count what is left
            raise InputError(
                [
                    Problem(
                        name,
                        None,
                        "-",
                        f"stopped at row {i:,} of {len(rows):,} after {MAX_PROBLEMS} problems: fix these first",
                    )
                ]
                + problems
            )
        pid_of = str(row.get("program") or "").strip() or None

        def bad(col: str, msg: str, pid_of: str | None = pid_of, i: int = i) -> None:
            problems.append(Problem(name, pid_of, f"row {i}, column {col}", msg))

        pid, jur = _place(row, catalogue, bad)
        year = _year(row, this_year, bad)
        awards, applications = _count(row, "awards", bad), _count(row, "applications", bad)
        if awards > applications:  # False when applications is NaN (not recorded)
            bad("awards", f"{awards:g} awards exceed {applications:g} applications")
        amount, paid = _money_cny(row, "amount", bad), _money_cny(row, "paid", bad)
        if amount > 0 and awards == 0:
            bad("amount", f"an amount of {amount:,.0f} yuan with no awards")
        if pid and jur and year is not None:
            for key in ((pid, jur, year), (pid, ALL, year)) if jur != ALL else ((pid, ALL, year),):
                if key in seen:
                    other = (
                        "the same program, jurisdiction and year" if key[1] == jur else "an ALL row of the same year"
                    )
                    bad("jurisdiction", f"repeats {other} (row {seen[key]})")
            if jur == ALL and any(k[0] == pid and k[2] == year and k[1] != ALL for k in seen):
                bad("jurisdiction", "an ALL row for a year that also has rows by jurisdiction (double count)")
            seen.setdefault((pid, jur, year), i)
        for k, v in zip(fields, (pid, jur, year or 0, awards, applications, amount, paid)):
            out[k].append(v)
    if problems:
        raise InputError(problems)
    sources = tuple(sorted({str(r.get("source") or "").strip() for r in rows} - {""}))
    return History(
        name,
        program=np.array(out["program"], dtype=object),
        jurisdiction=np.array(out["jurisdiction"], dtype=object),
        year=np.array(out["year"], dtype=np.int64),
        **{k: np.array(out[k], float) for k in fields[3:]},
        sources=sources,
    )
