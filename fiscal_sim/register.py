"""The existing commitment book: awards made before the horizon whose payments fall inside it.

A register is a CSV, Parquet or XLSX table, one row per award (columns in
``scenarios/README.md``). Loading checks every row against the scenario (the
program exists and is simulated, the place is where it applies, amounts are
non-negative, the award date is before the horizon, the schedule is readable)
and names file, row and column on any problem. The result, :class:`Register`,
holds per program the remaining payments by fiscal year as small arrays; the
engine runs them off with the program's attrition and cost sharing
(:mod:`fiscal_sim.engine.runoff`).

File-level facts sit in a sidecar ``<register file>.meta.yaml`` (any format):
``synthetic: true`` marks illustrative rows (every figure resting on them says
so), and ``complete_from: YEAR`` (or ``{program: YEAR}``) states that the
register holds every award of a program from that award year. Coverage is per
program *and cohort year*: a year is the register's when it has a row of that
award year or is at or after ``complete_from``; other pre-horizon cohorts stay
estimated (``commitments.estimate_before``).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fiscal_sim.errors import InputError, Problem
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
    cohorts: dict[str, frozenset[int]] = field(default_factory=dict)
    """award years with a row (present or not), per program"""
    complete_from: dict[str, int] = field(default_factory=dict)
    """program → first award year from which the register holds every award (sidecar ``complete_from``)"""
    synthetic: bool = False
    """the sidecar declares the rows synthetic (illustrative, not a bureau's book)"""

    def covers(self, pid: str, year: int) -> bool:
        """Is the cohort of award year ``year`` of ``pid`` the register's (never estimated)?"""
        c = self.complete_from.get(pid)
        return year in self.cohorts.get(pid, frozenset()) or (c is not None and year >= c)


META = ".meta.yaml"


def read_meta(path: Path, programs) -> tuple[bool, dict[str, int]]:
    """The sidecar ``<path>.meta.yaml``: (synthetic, complete_from per program); absent → (False, {})."""
    import yaml

    side = path.with_name(path.name + META)
    if not side.is_file():
        return False, {}
    name = str(side)
    try:
        data = yaml.safe_load(side.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError([Problem(name, None, "-", f"not readable YAML: {str(e).splitlines()[0]}")]) from None
    if not isinstance(data, dict) or set(data) - {"synthetic", "complete_from", "note"}:
        raise InputError([Problem(name, None, "-", "expected keys synthetic (true/false), complete_from "
                                                   "(YEAR or {program: YEAR}) and note")])
    syn = data.get("synthetic", False)
    if not isinstance(syn, bool):
        raise InputError([Problem(name, None, "synthetic", f"{syn!r} is not true/false")])
    cf = data.get("complete_from")
    if cf is None:
        return syn, {}
    if isinstance(cf, int) and not isinstance(cf, bool):
        return syn, {pid: cf for pid in programs}
    if isinstance(cf, dict) and all(isinstance(v, int) and not isinstance(v, bool) for v in cf.values()):
        unknown = [str(k) for k in cf if k not in programs]
        if unknown:
            raise InputError([Problem(name, unknown[0], "complete_from", "not a simulated program of the scenario")])
        return syn, {str(k): int(v) for k, v in cf.items()}
    raise InputError([Problem(name, None, "complete_from", f"{cf!r} is not a year or {{program: year}}")])


def _read_rows(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of a CSV, Parquet or XLSX file (values as read, empty cells as None)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            with path.open(newline="", encoding="utf-8-sig") as fh:
                reader = csv.DictReader(fh)
                rows = [{k: (v if v not in ("", None) else None) for k, v in r.items()} for r in reader]
                return list(reader.fieldnames or []), rows
        except UnicodeDecodeError as e:  # Excel in a Chinese locale saves CSV as GBK
            raise InputError([Problem(str(path), None, "-", not_utf8(path.read_bytes(), e))]) from None
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        return table.column_names, table.to_pylist()
    if suffix == ".xlsx":
        try:
            import openpyxl
        except ImportError:  # pragma: no cover - depends on the installation
            raise InputError([Problem(str(path), None, "-", "reading .xlsx needs openpyxl: pip install 'fiscal-sim[xlsx]'")]) from None
        ws = openpyxl.load_workbook(path, read_only=True, data_only=True).active
        values = list(ws.iter_rows(values_only=True))
        header = [str(h) if h is not None else "" for h in (values[0] if values else [])]
        return header, [{h: (v if v != "" else None) for h, v in zip(header, r)} for r in values[1:]
                        if any(v not in (None, "") for v in r)]
    raise InputError([Problem(str(path), None, "-", f"unknown register format {suffix!r} (use .csv, .parquet or .xlsx)")])


def parse_schedule(text: str):
    """``one_off``, ``annual:N`` or ``instalments:0.4/0.3/0.3`` → a schedule (lag set by the caller)."""
    kind, _, arg = text.strip().partition(":")
    if kind == "one_off" and not arg:
        return OneOff(kind="one_off")
    if kind == "annual":
        return Annual(kind="annual", years=int(arg))
    if kind == "instalments":
        return Instalments(kind="instalments", fractions=[float(x) for x in arg.split("/")])
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


def load_register(path: Path, scen) -> Register:
    """Read and check a register against scenario ``scen``; raise one error listing every problem."""
    name = str(path)
    if not path.is_file():
        raise InputError([Problem(name, None, "commitments", "no such register file")])
    header, rows = _read_rows(path)
    problems: list[Problem] = []
    missing = [c for c in REQUIRED if c not in header]
    if not any(c in header for c in AMOUNTS):
        missing.append(" or ".join(AMOUNTS))
    if missing:
        raise InputError([Problem(name, None, "header", f"missing column(s): {', '.join(missing)}")])
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL + tuple(AMOUNTS)]
    if unknown:
        problems.append(Problem(name, None, "header", f"unknown column(s): {', '.join(unknown)} "
                                                      f"(known: {', '.join(REQUIRED + tuple(AMOUNTS) + OPTIONAL)})"))
    sims = {sp.id: sp for sp in scen.programs}
    start = scen.spec.horizon.start
    Y = len(scen.years)
    parts: dict[str, list[tuple[int, int, np.ndarray, np.ndarray, float, int]]] = {}
    covered: set[str] = set()
    cohorts: dict[str, set[int]] = {}
    for i, row in enumerate(rows, start=1):
        pid = row.get("program")

        def bad(col: str, msg: str) -> None:
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
            bad("program", "not simulated in this scenario (unpriced, without uptake, or excluded): its commitments "
                           "cannot be run off")
            continue
        covered.add(pid)
        n_bad = len(problems)
        jur = str(row.get("jurisdiction") or "").strip()
        if jur not in sp.prog.jurisdictions:
            bad("jurisdiction", f"{jur or 'empty'!r} is not where the program applies ({', '.join(sp.prog.jurisdictions)})")
        try:
            award = _date(row.get("award_date"))
            cohorts.setdefault(pid, set()).add(award.year)
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
                if not amount >= 0:
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
            lag = sp.prog.spec.schedule.lag if not isinstance(sp.prog.spec.schedule, ScheduleChoice) else \
                next(iter(sp.prog.spec.schedule.options.values())).lag  # type: ignore[attr-defined]
            if row.get("lag") is not None:
                lag = int(str(row["lag"]).strip())
                if lag < 0:
                    raise ValueError(f"negative lag {lag}")
            sched = sched.model_copy(update={"lag": lag})
            pays = payments(sched, amount, annual) if len(problems) == n_bad else []
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
    books = {pid: ProgramBook(np.array([p[0] for p in ps]), np.array([p[1] for p in ps]),
                              np.array([p[2] for p in ps]), np.array([p[3] for p in ps]),
                              np.array([p[4] for p in ps]), np.array([p[5] for p in ps]))
             for pid, ps in parts.items()}
    synthetic, complete = read_meta(path, sims)
    return Register(name, books, len(rows), frozenset(covered), {p: frozenset(y) for p, y in cohorts.items()},
                    complete, synthetic)
