"""The assumption ledger: what each labelled assumption is worth, with common random numbers.

Every alternative of ``scenarios/catalogue/alternatives.yaml`` (and of the
scenario's own ``alternatives:``) is a small patch of the scenario: scenario
keys merged in (``patch``) and/or sweep parameters (``set``, the grammar of
``fiscal-sim sweep --set``). Each switched scenario is compiled through the
same validation as a scenario file; then, chunk by chunk on the executor, the
scenario is simulated once and every alternative after it with the same seed,
draws and blocks, and only the few series the ledger reports are kept per draw:
horizon grant cash of all payers and of the city, and every budget line's
yearly series. The change of a mean is the mean of the per-draw change, its
Monte Carlo error the paired standard error; a budget line's worst-year
P(exceed) is the largest yearly share of draws over the line.

Output folder (written atomically): ``assumptions.parquet`` (one row per
alternative, ranked by the larger change of all payers' and the city's horizon cash),
``assumptions_budgets.parquet`` (one row per alternative and budget line) and
``manifest.json``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, ValidationError, model_validator

from fiscal_sim import headline
from fiscal_sim.analysis.common import SeriesKey, new_run_id, series_keys, spec_data, variant
from fiscal_sim.analysis.sweep import Plan, parse_target, point_scenario
from fiscal_sim.engine.ledger import ALL, SeriesLayout, layout, series_values
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.io.outdir import inputs_of
from fiscal_sim.io.parquet import manifest_header, round_money, write_json, write_table
from fiscal_sim.io.target import Remote, output
from fiscal_sim.orchestrate.driver import drive_chunks, executor_for
from fiscal_sim.orchestrate.executors import Executor
from fiscal_sim.rules.formula import Strict
from fiscal_sim.scenario import Scenario
from fiscal_sim.yamlfile import YamlDoc
from fiscal_sim.catalogue.schema import group_names

CATALOGUE_FILE = "alternatives.yaml"
Kind = Literal[
    "validity",
    "after_expiry",
    "family",
    "register",
    "count",
    "timing",
    "allocation",
    "overlap",
    "price",
    "cost_sharing",
    "shock",
]
MAX_CHUNK = 250
"""draws per chunk: every alternative of a chunk runs on one worker, one after the other"""


class AlternativeError(FiscalSimError):
    """A bad alternative; the message names the file and the alternative."""


class Alternative(Strict):
    """One named alternative to a labelled assumption: a scenario patch and/or sweep parameters."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9\-]*$")
    kind: Kind
    subject: str
    title: str
    basis: str = Field(min_length=1)
    patch: dict[str, Any] = {}
    set: dict[str, Any] = {}
    source: str = ""
    """the file that declares it (filled in by the loader)"""

    @model_validator(mode="after")
    def _changes_something(self):
        if not self.patch and not self.set:
            raise ValueError("an alternative needs a patch (scenario keys) or set (sweep parameters)")
        if {"name", "seed", "draws", "horizon", "budgets", "alternatives"} & set(self.patch):
            raise ValueError(
                "a patch cannot change name, seed, draws, horizon, budgets or alternatives "
                "(the ledger compares on the scenario's own)"
            )
        return self


def _parse(items: Any, source: str) -> list[Alternative]:
    if not isinstance(items, list):
        raise AlternativeError(f"{source}: alternatives: expected a list of alternatives")
    out: list[Alternative] = []
    for i, item in enumerate(items):
        name = item.get("name", f"#{i}") if isinstance(item, dict) else f"#{i}"
        try:
            out.append(Alternative.model_validate((item if isinstance(item, dict) else {}) | {"source": source}))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "alternative"
            raise AlternativeError(f"{source}: alternative {name}: {where}: {err['msg']}") from None
    return out


def load_alternatives(scen: Scenario, catalogue_file: Path | None = None) -> list[Alternative]:
    """The catalogue's alternatives, then the scenario's own (``alternatives:``); names must be unique."""
    path = catalogue_file or Path(scen.geography.path).parent / CATALOGUE_FILE
    alts = _parse((YamlDoc(path).data or {}).get("alternatives", []), str(path)) if Path(path).exists() else []
    alts = [_anchored(a, Path(path).resolve().parent.parent) for a in alts]
    alts += _parse(scen.spec.alternatives, scen.path)
    seen: dict[str, str] = {}
    for a in alts:
        if a.name in seen:
            raise AlternativeError(f"{a.source}: alternative {a.name}: name already used in {seen[a.name]}")
        seen[a.name] = a.source
    return alts


def _anchored(alt: Alternative, root: Path) -> Alternative:
    """A catalogue alternative whose patch names a register file: the path is the scenarios folder's
    (``commitments/…``, as a scenario file there writes it), whatever scenario the alternative is applied to."""
    book = alt.patch.get("commitments")
    if isinstance(book, dict) and isinstance(book.get("register"), str) and not Path(book["register"]).is_absolute():
        patch = alt.patch | {"commitments": book | {"register": str(root / book["register"])}}
        return alt.model_copy(update={"patch": patch})
    return alt


def check_file(path: Path, root: Path) -> int:
    """Check an alternatives file: every alternative parses and, where ``root/baseline.yaml`` exists, switches
    into that baseline; the number of alternatives."""
    from fiscal_sim.scenario import load_scenario

    alts = [
        _anchored(a, Path(path).resolve().parent.parent)
        for a in _parse((YamlDoc(path).data or {}).get("alternatives", []), str(path))
    ]
    if (root / "baseline.yaml").exists():
        scen = load_scenario(root / "baseline.yaml")
        for a in alts:
            switched(scen, a)
    return len(alts)


def merge(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``data`` with ``patch`` merged in: mappings key by key, other values replaced (``None`` included)."""
    out = copy.deepcopy(data)
    for k, v in patch.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def switched(scen: Scenario, alt: Alternative) -> Scenario | None:
    """The scenario with ``alt`` applied (validated like a scenario file), or None when it changes nothing."""
    label = f"{alt.source}: alternative {alt.name}"
    if alt.source != scen.path and not_applicable(scen, alt):
        return None
    data = spec_data(scen)
    try:
        out = scen
        if alt.patch:
            patched = merge(data, alt.patch)
            if patched == data and not alt.set:
                return None
            out = variant(scen, patched, label) if patched != data else scen
        if alt.set:
            targets = [parse_target(out, t) for t in alt.set]
            values = tuple(alt.set.values())
            if all(_current(out, t) == v for t, v in zip(targets, values)) and out is scen:
                return None
            out = point_scenario(out, Plan(targets, [values], "grid"), 0)
    except FiscalSimError as e:
        msg = str(e).replace("\n", "; ")
        raise AlternativeError(msg if msg.startswith(label) else f"{label}: {msg}") from None
    return out


def _current(scen: Scenario, t: Any) -> Any:
    """The value a sweep target has in the scenario now (None where the sweep grammar cannot read it back)."""
    from fiscal_sim.analysis.sweep import program_value

    if t.kind == "overlap":
        return next((g.overlap for g in scen.groups if g.name == t.path), None)
    if t.kind == "program":
        prog = next(sp.prog for sp in scen.programs if sp.id == t.program)
        return program_value(prog, t.path)
    if t.kind == "shock":
        return getattr(scen.spec.shock, t.path)
    return None


def _group_members(scen: Scenario, group: str) -> set[str]:
    return {pid for pid, p in scen.catalogue.programs.items() if group in group_names(p.spec.exclusive_group)}


def named_programs(scen: Scenario, alt: Alternative) -> set[str] | None:
    """The programs an alternative names (overrides, prices, program parameters, overlap groups, program
    timing, families) and their non-cumulation partners; None where it may touch any program (validity, renewal, default timing, the book,
    cost sharing, the shock)."""
    from fiscal_sim.analysis.sweep import resolve_program

    out: set[str] = set()
    for key, value in alt.patch.items():
        if key in ("overrides", "price"):
            out |= set(value or {})
        elif key == "overlap":
            for g in value or {}:
                out |= _group_members(scen, g)
        elif key == "timeline" and set(value or {}) <= {"timing", "families"}:
            for k in value.get("timing") or {}:
                if k not in scen.catalogue.programs:
                    return None
                out.add(k)
            for fid in value.get("families") or {}:
                fam = scen.catalogue.timeline.families.get(fid)
                if fam is None:
                    return None
                out |= set(fam.predecessors) | set(fam.successors)
        else:
            return None
    for text in alt.set:
        head, _, rest = text.partition(".")
        if head in ("programs", "uptake"):
            out.add(resolve_program(scen, text, rest)[0])
        elif head == "overlap":
            out |= _group_members(scen, rest)
        else:
            return None
    while True:  # non-cumulation ties a group's members (and, through a program in two groups, both groups')
        partners = {
            g
            for pid in out
            if pid in scen.catalogue.programs
            for g in group_names(scen.catalogue.programs[pid].spec.exclusive_group)
        }
        tied = out.union(*(_group_members(scen, g) for g in partners))
        if tied == out:
            return out
        out = tied


def not_applicable(scen: Scenario, alt: Alternative) -> str | None:
    """Why a catalogue alternative has nothing to switch in this scenario (a program it names is not in it,
    a group it names has fewer than two simulated members), else None."""
    have = {sp.id for sp in scen.programs} | {p.id for p in scen.unpriced}
    simulated = {sp.id for sp in scen.programs}
    try:
        named = named_programs(scen, alt)
    except FiscalSimError:
        return None  # the compile reports it
    missing = sorted((named or set()) - have)
    if missing:
        return f"not in scenario {scen.spec.name}: {', '.join(missing)}"
    groups = list((alt.patch.get("overlap") or {})) + [t.partition(".")[2] for t in alt.set if t.startswith("overlap.")]
    for g in groups:
        if len(_group_members(scen, g) & simulated) < 2:
            return f"group {g} has fewer than two simulated programs in scenario {scen.spec.name}"
    return None


@dataclass
class Picks:
    """The series the ledger keeps per draw: horizon cash (all payers, city) and each budget line's years."""

    keys: list[SeriesKey]
    budget_cny: np.ndarray
    lines: list[tuple[str, str, str]]
    """budget lines (program, payer, measure), in the scenario's order"""
    line_rows: list[np.ndarray]
    """rows of ``keys`` of each budget line's yearly series"""

    HORIZON_ALL = 0
    HORIZON_CITY = 1


def picks(scen: Scenario, lay: SeriesLayout) -> Picks:
    keys: list[SeriesKey] = [(ALL, ALL, "cash", "horizon", None), (ALL, "city", "cash", "horizon", None)]
    budget = [math.inf, math.inf]
    lines: list[tuple[str, str, str]] = []
    rows: list[list[int]] = []
    for k, b in zip(series_keys(lay), lay.budget_cny):
        if k[3] != "year" or not np.isfinite(b):
            continue
        line = (k[0], k[1], k[2])
        if line not in lines:
            lines.append(line)
            rows.append([])
        rows[lines.index(line)].append(len(keys))
        keys.append(k)
        budget.append(float(b))
    return Picks(keys, np.array(budget), lines, [np.array(r) for r in rows])


def rows_of(lay: SeriesLayout, keys: list[SeriesKey]) -> np.ndarray:
    """Where each key sits in ``lay`` (−1: the scenario has no such series, zero in every draw)."""
    at = {k: i for i, k in enumerate(series_keys(lay))}
    return np.array([at.get(k, -1) for k in keys])


def picked(scen: Scenario, lay: SeriesLayout, rows: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The picked series of draws ``[start, stop)`` (keys × draws, yuan)."""
    v = series_values(scen, lay, simulate_chunk(scen, start, stop))
    out = np.zeros((rows.size, stop - start))
    have = rows >= 0
    out[have] = v[rows[have]]
    return out


def ledger_task(state: tuple, start: int, stop: int) -> tuple[int, list[np.ndarray]]:
    """One chunk on a worker: the scenario once, then every alternative, same draws."""
    scens, lays, rows = state
    return start, [picked(s, lay, r, start, stop) for s, lay, r in zip(scens, lays, rows)]


@dataclass
class LedgerResult:
    out: Path | Remote
    run_id: str
    table: pa.Table
    budgets: pa.Table


def values(
    scen: Scenario, alts: list[Scenario], executor: Executor, progress: Callable[[int], None] | None = None
) -> tuple[Picks, list[np.ndarray]]:
    """Per-draw picked series of the scenario (first) and of each switched scenario (keys × draws)."""
    lay = layout(scen)
    pk = picks(scen, lay)
    scens = [scen] + alts
    lays = [lay] + [layout(a) for a in alts]
    rows = [rows_of(lay_, pk.keys) for lay_ in lays]
    parts = [vals for _, _, (_, vals) in drive_chunks(scen, executor, ledger_task, (scens, lays, rows), (), progress)]
    return pk, [np.concatenate([v[i] for v in parts], axis=1) for i in range(len(scens))]


def _mean_se(d: np.ndarray) -> tuple[float, float | None]:
    """Mean of the per-draw change and its paired standard error (None from a single draw)."""
    n = d.size
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else None


def worst_year(v: np.ndarray, pk: Picks, line: int) -> tuple[int, np.ndarray]:
    """A budget line's worst year (largest share of draws over the line; the earliest on ties) and its
    per-draw exceedance indicator."""
    r = pk.line_rows[line]
    exceed = v[r] > pk.budget_cny[r][:, None]
    j = int(np.argmax(exceed.sum(axis=1)))
    return int(pk.keys[r[j]][4]), exceed[j]


def _size(row: dict[str, Any]) -> float:
    """How much an alternative moves the answer: the larger change of all payers' and the city's horizon cash."""
    return max(abs(row["change_horizon_cash_all_cny"]), abs(row["change_horizon_cash_city_cny"]))


def tables(
    scen: Scenario, alts: list[Alternative], pk: Picks, base: np.ndarray, vals: list[np.ndarray | None]
) -> tuple[pa.Table, pa.Table]:
    """The ranked ledger and its budget-line rows: ``base`` the scenario's picked series, ``vals`` each
    alternative's (None for one that changes nothing: its change is exactly zero)."""
    n = base.shape[1]
    rows: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    for alt, maybe in zip(alts, vals):
        v = base if maybe is None else maybe
        d_all, se_all = _mean_se(v[Picks.HORIZON_ALL] - base[Picks.HORIZON_ALL])
        d_city, se_city = _mean_se(v[Picks.HORIZON_CITY] - base[Picks.HORIZON_CITY])
        rows.append(
            {
                "alternative": alt.name,
                "kind": alt.kind,
                "subject": alt.subject,
                "title": alt.title,
                "basis": alt.basis,
                "declared_in": alt.source,
                "changes_scenario": v is not base,
                "note": not_applicable(scen, alt)
                or (
                    "changes nothing in this scenario"
                    if v is base
                    else ""
                    if np.any(v != base)
                    else "switched, but no reported series moves in any draw"
                ),
                "draws": n,
                "baseline_horizon_cash_all_cny": float(base[Picks.HORIZON_ALL].mean()),
                "alternative_horizon_cash_all_cny": float(v[Picks.HORIZON_ALL].mean()),
                "change_horizon_cash_all_cny": d_all,
                "change_horizon_cash_all_se_cny": se_all,
                "baseline_horizon_cash_city_cny": float(base[Picks.HORIZON_CITY].mean()),
                "alternative_horizon_cash_city_cny": float(v[Picks.HORIZON_CITY].mean()),
                "change_horizon_cash_city_cny": d_city,
                "change_horizon_cash_city_se_cny": se_city,
            }
        )
        for i, (prog, payer, measure) in enumerate(pk.lines):
            yb, eb = worst_year(base, pk, i)
            ya, ea = worst_year(v, pk, i)
            d, se = _mean_se(ea.astype(float) - eb.astype(float))
            lines.append(
                {
                    "alternative": alt.name,
                    "program": prog,
                    "payer": payer,
                    "measure": measure,
                    "budget_cny": float(pk.budget_cny[pk.line_rows[i][0]]),
                    "baseline_worst_year": yb,
                    "baseline_p_exceed": float(eb.mean()),
                    "alternative_worst_year": ya,
                    "alternative_p_exceed": float(ea.mean()),
                    "change_p_exceed": d,
                    "change_p_exceed_se": se,
                }
            )
    order = sorted(range(len(rows)), key=lambda i: (-_size(rows[i]), rows[i]["alternative"]))
    for rank, i in enumerate(order, 1):
        rows[i]["rank"] = rank
    ranked = [rows[i] for i in order]
    rank_of = {r["alternative"]: r["rank"] for r in ranked}
    lines.sort(key=lambda r: (rank_of[r["alternative"]], pk.lines.index((r["program"], r["payer"], r["measure"]))))
    return (
        pa.Table.from_pylist(ranked, schema=SCHEMA).select(SCHEMA.names),
        pa.Table.from_pylist(lines, schema=BUDGET_SCHEMA),
    )


SCHEMA = pa.schema(
    [
        ("rank", pa.int32()),
        ("alternative", pa.string()),
        ("kind", pa.string()),
        ("subject", pa.string()),
        ("title", pa.string()),
        ("basis", pa.string()),
        ("declared_in", pa.string()),
        ("changes_scenario", pa.bool_()),
        ("note", pa.string()),
        ("draws", pa.int32()),
        *[
            (f"{side}_horizon_cash_{who}_cny", pa.float64())
            for who in ("all", "city")
            for side in ("baseline", "alternative", "change")
        ],
        ("change_horizon_cash_all_se_cny", pa.float64()),
        ("change_horizon_cash_city_se_cny", pa.float64()),
    ]
)
BUDGET_SCHEMA = pa.schema(
    [
        ("alternative", pa.string()),
        ("program", pa.string()),
        ("payer", pa.string()),
        ("measure", pa.string()),
        ("budget_cny", pa.float64()),
        ("baseline_worst_year", pa.int16()),
        ("baseline_p_exceed", pa.float64()),
        ("alternative_worst_year", pa.int16()),
        ("alternative_p_exceed", pa.float64()),
        ("change_p_exceed", pa.float64()),
        ("change_p_exceed_se", pa.float64()),
    ]
)


def ledger_scenario(scen: Scenario) -> Scenario:
    """The scenario with the ledger's chunk size (every alternative of a chunk is held on one worker)."""
    return scen.with_settings(chunk_size=min(scen.spec.chunk_size, MAX_CHUNK))


def compile_all(scen: Scenario, alts: list[Alternative]) -> list[Scenario | None]:
    """Every alternative switched into ``scen`` (None: nothing to switch), checked before anything runs."""
    if not alts:
        raise AlternativeError(
            "no alternatives to run (the catalogue and the scenario declare none, or --only matched none)"
        )
    return [switched(scen, a) for a in alts]


def ledger(
    scen: Scenario,
    alts: list[Alternative],
    out: Path | str | Remote,
    workers: int = 1,
    command: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    executor: Executor | None = None,
    compiled: list[Scenario | None] | None = None,
) -> LedgerResult:
    """Run every alternative against ``scen`` with common random numbers; write the ledger folder ``out``.
    ``compiled``: the alternatives already switched into ``ledger_scenario(scen)`` (:func:`compile_all`)."""
    scen = ledger_scenario(scen)
    compiled = compile_all(scen, alts) if compiled is None else compiled
    live = [
        s.with_settings(
            draws=scen.spec.draws, seed=scen.spec.seed, block_size=scen.spec.block_size, chunk_size=scen.spec.chunk_size
        )
        for s in compiled
        if s is not None
    ]
    pk, vals = values(scen, live, executor_for(executor, workers), progress)
    it = iter(vals[1:])
    per_alt: list[np.ndarray | None] = [None if s is None else next(it) for s in compiled]
    table, budgets = (round_money(t) for t in tables(scen, alts, pk, vals[0], per_alt))  # as stored: to the fen
    run_id = new_run_id()
    rows, lines = table.to_pylist(), budgets.to_pylist()
    top = {lang: headline.assumption_lines(rows, lines, lang) for lang in ("en", "zh")}
    with output(out, "assumptions", run_id, inputs_of(scen)) as dest:
        write_table(table, dest.folder / "assumptions.parquet", run_id, scenario=scen.spec.name)
        write_table(budgets, dest.folder / "assumptions_budgets.parquet", run_id, scenario=scen.spec.name)
        write_json(
            {
                **manifest_header(run_id, command, kind="assumptions"),
                "scenario": {
                    "name": scen.spec.name,
                    "path": scen.path,
                    "sha256": scen.sha256,
                    "register": None if scen.register is None else scen.register.path,
                },
                "draws": scen.spec.draws,
                "seed_entropy": scen.spec.seed,
                "block_size": scen.spec.block_size,
                "common_random_numbers": True,
                "alternatives": len(alts),
                "headline": top,
                "money_unit": "CNY (yuan); columns ending in _cny",
                "files": {"ledger": "assumptions.parquet", "budget_lines": "assumptions_budgets.parquet"},
            },
            dest.folder / "manifest.json",
        )
    return LedgerResult(dest.location, run_id, table, budgets)
