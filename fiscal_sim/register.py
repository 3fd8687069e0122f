"""The existing commitment book: awards made before the horizon whose payments fall inside it.

A register is a CSV, Parquet or XLSX table, one row per award (columns in
``scenarios/README.md``). Loading checks every row against the scenario (the
program exists and is simulated, the place is where it applies, amounts are
non-negative, the award date is before the horizon, the schedule is readable)
and names file, row and column on any problem. The result, :class:`Register`,
holds per program the remaining payments by fiscal year as small arrays; the
engine runs them off with the program's attrition and cost sharing
(:mod:`fiscal_sim.engine.runoff`).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiscal_sim.errors import MAX_PROBLEMS, InputError, Problem
from fiscal_sim.rules.schedule import Annual, Instalments, OneOff, ScheduleChoice
from fiscal_sim.yamlfile import not_utf8

REQUIRED = ("program", "jurisdiction", "award_date", "payments_made", "present")
AMOUNTS = {"amount_wan": 1e4, "amount_cny": 1.0, "annual_amount_wan": 1e4, "annual_amount_cny": 1.0}
OPTIONAL = ("record_id", "schedule", "lag", "note")


@dataclass
class ProgramBook:
    """One program's register rows, runoff-ready: ``cash[r, t]`` is row r's payment due in horizon year t
    (overdue payments fall in the first year); ``index[r, t]`` numbers the years with a remaining payment
    (0 = the next; a recipient reaches number k with probability (1 − attrition)^k); ``beyond[r]`` is what falls
    due after the horizon (number ``beyond_index``)."""

    rows: np.ndarray
    """row numbers in the file (1 = first data row)"""
    jur: np.ndarray
    """index into the program's jurisdictions"""
    cash_cny: np.ndarray
    index: np.ndarray
    beyond_cny: np.ndarray
    beyond_index: np.ndarray
    """payment index of the first payment after the horizon (-1 if none)"""

    @property
    def opening_cny(self) -> np.ndarray:
        """Remaining nominal commitment of each row at the start of the horizon."""
        return self.cash_cny.sum(axis=1) + self.beyond_cny


@dataclass
class Register:
    path: str
    books: dict[str, ProgramBook]
    rows: int
    covered: frozenset[str] = frozenset()
    """programs with any row (present or not)"""
    years: dict[str, frozenset[int]] = field(default_factory=dict)
    """per program, the award years with a row: those cohorts are the register's, never estimated"""
    complete_from: int | None = None
    """the register lists every award from this year on (every program): those cohorts are never estimated"""
    synthetic: bool = False
    """the file says its rows are synthetic (an illustration, not a bureau's book): figures resting on it say so"""

    def covers(self, pid: str, year: int) -> bool:
        """Whether the awards of ``pid`` decided in ``year`` are the register's (not to be estimated)."""
        return year in self.years.get(pid, ()) or (self.complete_from is not None and year >= self.complete_from)


FLAGS = ("synthetic", "complete_from")
"""file-level flags: CSV comment lines before the header (``# synthetic: true``), Parquet key-value metadata"""


def _flags(raw: dict[str, str], name: str) -> dict[str, Any]:
    """Checked file-level flags (``synthetic`` true/false, ``complete_from`` a year)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in FLAGS:
            raise InputError([Problem(name, None, "header", f"unknown flag {key!r} (known: {', '.join(FLAGS)})")])
        try:
            out[key] = _bool(value) if key == "synthetic" else int(str(value).strip())
        except ValueError:
            raise InputError(
                [Problem(name, None, key, f"{value!r} is not a {'true/false' if key == 'synthetic' else 'year'}")]
            ) from None
    return out


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]], dict[str, str]]:
    """Header, rows and file-level flags of a CSV, Parquet or XLSX file (values as read, empty cells as None)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                flags: dict[str, str] = {}
                lines = iter(fh)
                first = ""
                for first in lines:
                    if not first.startswith("#"):
                        break
                    m = re.fullmatch(r"#\s*([a-z_]+)\s*:\s*(.*?)\s*", first.rstrip("\r\n"))
                    if m:  # '# key: value' is a flag; any other comment line is a comment
                        flags[m.group(1)] = m.group(2)
                reader = csv.DictReader([first, *lines] if first and not first.startswith("#") else [])
                rows = [{k: (v if v not in ("", None) else None) for k, v in r.items()} for r in reader]
                return list(reader.fieldnames or []), rows, flags
        except UnicodeDecodeError as e:  # Excel in a Chinese locale saves CSV as GBK
            raise InputError([Problem(str(path), None, "-", not_utf8(path.read_bytes(), e))]) from None
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as e:  # pyarrow.ArrowInvalid is a ValueError
            raise InputError(
                [Problem(str(path), None, "-", f"not a readable Parquet file ({' '.join(str(e).split())[:160]})")]
            ) from None
        meta = {
            k.decode(): v.decode()
            for k, v in (table.schema.metadata or {}).items()
            if k.decode().removeprefix("fiscal_sim.") in FLAGS
        }
        return table.column_names, table.to_pylist(), {k.removeprefix("fiscal_sim."): v for k, v in meta.items()}
    if suffix == ".xlsx":
        try:
            import openpyxl
        except ImportError:  # pragma: no cover - depends on the installation
            raise InputError(
                [Problem(str(path), None, "-", "reading .xlsx needs openpyxl: pip install 'fiscal-sim[xlsx]'")]
            ) from None
        try:
            ws = openpyxl.load_workbook(path, read_only=True, data_only=True).active
        except Exception as e:  # zipfile.BadZipFile, openpyxl's InvalidFileException, a damaged part …
            raise InputError(
                [
                    Problem(
                        str(path),
                        None,
                        "-",
                        f"not an Excel workbook ({type(e).__name__}): is it a "
                        "CSV or another file saved under an .xlsx name? Save it as .csv or as a real "
                        "workbook",
                    )
                ]
            ) from None
        values = list(ws.iter_rows(values_only=True))
        header = [str(h) if h is not None else "" for h in (values[0] if values else [])]
        return (
            header,
            [
                {h: (v if v != "" else None) for h, v in zip(header, r)}
                for r in values[1:]
                if any(v not in (None, "") for v in r)
            ],
            {},
        )
    raise InputError(
        [Problem(str(path), None, "-", f"unknown register format {suffix!r} (use .csv, .parquet or .xlsx)")]
    )


def parse_schedule(text: str):
    """``one_off``, ``annual:N`` or ``instalments:0.4/0.3/0.3`` → a schedule (lag set by the caller)."""
    from pydantic import ValidationError

    kind, _, arg = text.strip().partition(":")
    try:
        if kind == "one_off" and not arg:
            return OneOff(kind="one_off")
        if kind == "annual":
            years = int(arg)
            if years < 1:
                raise ValueError(f"annual:{arg}: an annual schedule pays for 1 year or more")
            return Annual(kind="annual", years=years)
        if kind == "instalments":
            return Instalments(kind="instalments", fractions=[float(x) for x in arg.split("/")])
    except ValidationError as e:
        raise ValueError(f"{text!r}: {e.errors()[0]['msg']}") from None
    raise ValueError(f"unknown schedule {text!r} (one_off, annual:N or instalments:F1/F2/…)")


def _date(v: Any) -> dt.date:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    return dt.date.fromisoformat(str(v).strip())


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "yes", "1", "y", "是"):
        return True
    if s in ("false", "no", "0", "n", "否"):
        return False
    raise ValueError(f"{v!r} is not true/false")


def payments(schedule, amount_cny: float, annual: bool) -> list[tuple[int, float]]:
    """(year offset from the award year, amount) of every payment of one award."""
    if isinstance(schedule, Annual):
        per_year = amount_cny if annual else amount_cny / schedule.years  # type: ignore[operator]
        return [(schedule.lag + k, per_year) for k in range(int(schedule.years))]  # type: ignore[arg-type]
    if annual:
        raise ValueError("an annual amount needs an annual schedule (annual:N)")
    if isinstance(schedule, Instalments):
        return [(schedule.lag + k, f * amount_cny) for k, f in enumerate(schedule.fractions)]
    return [(schedule.lag, amount_cny)]


def load_register(path: Path, scen, declared: dict[str, Any] | None = None) -> Register:
    """Read and check a register against scenario ``scen``; raise one error listing every problem.

    ``declared``: flags the scenario states for the file (``synthetic``, ``complete_from``), over the file's own."""
    name = str(path)
    if not path.is_file():
        raise InputError([Problem(name, None, "commitments", "no such register file")])
    header, rows, raw_flags = _read_rows(path)
    flags = _flags(raw_flags, name) | {k: v for k, v in (declared or {}).items() if v is not None}
    problems: list[Problem] = []
    missing = [c for c in REQUIRED if c not in header]
    if not any(c in header for c in AMOUNTS):
        missing.append(" or ".join(AMOUNTS))
    if missing:
        raise InputError([Problem(name, None, "header", f"missing column(s): {', '.join(missing)}")])
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL + tuple(AMOUNTS)]
    if unknown:
        problems.append(
            Problem(
                name,
                None,
                "header",
                f"unknown column(s): {', '.join(unknown)} (known: {', '.join(REQUIRED + tuple(AMOUNTS) + OPTIONAL)})",
            )
        )
    sims = {sp.id: sp for sp in scen.programs}
    start = scen.spec.horizon.start
    Y = len(scen.years)
    parts: dict[str, list[tuple[int, int, np.ndarray, np.ndarray, float, int]]] = {}
    covered: set[str] = set()
    years: dict[str, set[int]] = {}
    records: dict[str, int] = {}
    for i, row in enumerate(rows, start=1):
        if len(problems) >= MAX_PROBLEMS:  # a file of repeated bad rows: stop reading there
            problems.insert(
                0,
                Problem(
                    name,
                    None,
                    "-",
                    f"stopped at row {i:,} of {len(rows):,} after {MAX_PROBLEMS} problems: fix these first",
                ),
            )
            break
        pid = row.get("program")

        def bad(col: str, msg: str, pid: Any = pid, i: int = i) -> None:
            problems.append(Problem(name, str(pid) if pid else None, f"row {i}, column {col}", msg))

        if pid is None:
            bad("program", "empty")
            continue
        pid = str(pid).strip()
        if pid not in scen.catalogue.programs:
            bad("program", "unknown program")
            continue
        sp = sims.get(pid)
        if sp is None:
            bad(
                "program",
                "not simulated in this scenario (unpriced, without uptake, or excluded): its commitments "
                "cannot be run off",
            )
            continue
        covered.add(pid)
        n_bad = len(problems)
        rid = str(row.get("record_id") or "").strip()
        if rid:
            if rid in records:
                bad("record_id", f"record {rid!r} repeats row {records[rid]} (the same award counted twice?)")
            records.setdefault(rid, i)
        jur = str(row.get("jurisdiction") or "").strip()
        if jur not in sp.prog.jurisdictions:
            bad(
                "jurisdiction",
                f"{jur or 'empty'!r} is not where the program applies ({', '.join(sp.prog.jurisdictions)})",
            )
        try:
            award = _date(row.get("award_date"))
            years.setdefault(pid, set()).add(award.year)
            if award >= dt.date(start, 1, 1):
                bad("award_date", f"{award} is not before the horizon start {start}-01-01 (new awards are simulated)")
        except (TypeError, ValueError):
            bad("award_date", f"{row.get('award_date')!r} is not a date (YYYY-MM-DD)")
        given = [(c, row[c]) for c in AMOUNTS if row.get(c) is not None]
        amount, annual = 0.0, False
        if len(given) != 1:
            bad("amount_wan", f"give exactly one of {', '.join(AMOUNTS)} (found {len(given)})")
        else:
            col, v = given[0]
            try:
                amount = float(v) * AMOUNTS[col]
                annual = col.startswith("annual")
                if not math.isfinite(amount):
                    bad(col, f"{v!r} is not a finite amount")
                elif not amount >= 0:
                    bad(col, f"negative amount {v}")
            except (TypeError, ValueError):
                bad(col, f"{v!r} is not a number")
        try:
            made = int(str(row.get("payments_made")).strip())
            if made < 0:
                bad("payments_made", f"negative count {made}")
        except ValueError:
            bad("payments_made", f"{row.get('payments_made')!r} is not a whole number")
        try:
            present = _bool(row.get("present"))
        except ValueError as e:
            bad("present", str(e))
        sched = sp.prog.spec.schedule
        try:
            if row.get("schedule"):
                sched = parse_schedule(str(row["schedule"]))
            if isinstance(sched, ScheduleChoice) or (isinstance(sched, Annual) and not isinstance(sched.years, int)):
                raise ValueError(f"the program's schedule depends on its inputs ({sched.describe()}): give one")
            documented = sp.prog.spec.schedule
            if isinstance(documented, ScheduleChoice):
                documented = next(iter(documented.options.values()))
            lag = getattr(documented, "lag", 0)
            if row.get("lag") is not None:
                lag = int(str(row["lag"]).strip())
                if lag < 0:
                    raise ValueError(f"negative lag {lag}")
            sched = sched.model_copy(update={"lag": lag})
            pays = payments(sched, amount, annual) if len(problems) == n_bad else []
            if pays and made > len(pays):
                bad("payments_made", f"{made} payments made, but the schedule ({sched.describe()}) has {len(pays)}")
        except (TypeError, ValueError) as e:
            bad("schedule" if "lag" not in str(e) else "lag", str(e).splitlines()[0])
            continue
        if len(problems) > n_bad or not present:
            continue
        cash, due, beyond = np.zeros(Y), np.zeros(Y, dtype=bool), 0.0
        for off, a in pays[made:]:
            t = max(award.year + off - start, 0)  # overdue payments fall due in the first year
            if t < Y:
                cash[t] += a
                due[t] = True
            else:
                beyond += a
        # remaining payments numbered by the years they fall in: 0 = the first year with a payment
        index = np.where(due, np.cumsum(due) - 1, -1).astype(np.int16)
        beyond_k = int(due.sum()) if beyond > 0 else -1
        parts.setdefault(pid, []).append((i, sp.prog.jurisdictions.index(jur), cash, index, beyond, beyond_k))
    if problems:
        raise InputError(problems)
    books = {
        pid: ProgramBook(
            np.array([p[0] for p in ps]),
            np.array([p[1] for p in ps]),
            np.array([p[2] for p in ps]),
            np.array([p[3] for p in ps]),
            np.array([p[4] for p in ps]),
            np.array([p[5] for p in ps]),
        )
        for pid, ps in parts.items()
    }
    return Register(
        name,
        books,
        len(rows),
        frozenset(covered),
        {p: frozenset(y) for p, y in years.items()},
        flags.get("complete_from"),
        bool(flags.get("synthetic", False)),
    )
