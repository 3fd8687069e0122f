"""One-case calculator: one applicant's award, its schedule by year and its split by payer."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fiscal_sim.catalogue.loader import Catalogue, CompiledProgram
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.rules.aggregate import cap_by_group
from fiscal_sim.rules.formula import TraceStep
from fiscal_sim.units import fmt_wan, parse_money


@dataclass
class CaseResult:
    program: str
    title_zh: str
    title_en: str
    document: str
    section: str
    jurisdiction: str
    award_date: str
    in_force: bool
    award_cny: float
    """the formula's amount: per year for annual schedules, else the total"""
    total_cny: float
    """the commitment: every payment of the schedule"""
    schedule: list[dict[str, Any]]
    payers: dict[str, float]
    """total by payer, yuan"""
    steps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exclusive_group: str | None = None
    winner: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_inputs(prog: CompiledProgram, raw: dict[str, Any]) -> dict[str, np.ndarray]:
    """Turn ``key=value`` strings (or numbers) into one-element arrays: money in yuan, categories as codes."""
    spec = prog.spec
    out: dict[str, np.ndarray] = {}
    problems = []
    for key in raw:
        if key not in spec.inputs and not key.startswith("used_"):
            problems.append(Problem(prog.file, prog.id, f"inputs.{key}",
                                    f"not an input of this program (inputs: {', '.join(spec.inputs) or 'none'})"))
    for name, s in spec.inputs.items():
        value = raw.get(name, s.default)
        if value is None:
            problems.append(Problem(prog.file, prog.id, f"inputs.{name}", f"required input is missing ({s.type}"
                                    + (f": one of {', '.join(s.values)}" if s.values else "") + ")"))
            continue
        try:
            if s.type == "category":
                if str(value) not in s.values:  # type: ignore[operator]
                    raise ValueError(f"{value!r} is not one of {', '.join(s.values)}")  # type: ignore[arg-type]
                out[name] = np.array([s.values.index(str(value))])  # type: ignore[union-attr]
            elif s.type == "money":
                out[name] = np.array([parse_money(str(value), s.unit or spec.unit)])
            else:
                try:
                    out[name] = np.array([float(value)])
                except ValueError:
                    raise ValueError(f"{value!r} is not a number (input {name} is a {s.type}, e.g. {name}=0.5)") from None
        except ValueError as e:
            problems.append(Problem(prog.file, prog.id, f"inputs.{name}", str(e)))
    for key in raw:
        if key.startswith("used_"):
            out[key] = np.array([parse_money(str(raw[key]), spec.unit)])
    if problems:
        raise InputError(problems)
    return out


def calculate(cat: Catalogue, program_id: str, raw_inputs: dict[str, Any], jurisdiction: str | None = None,
              award_date: dt.date | None = None, explain: bool = True) -> CaseResult:
    """Compute one applicant's award under ``program_id`` and how it is paid and shared."""
    prog = cat.get(program_id)
    spec = prog.spec
    day = award_date or dt.date.today()
    notes: list[str] = []
    if jurisdiction is None:
        jurisdiction = prog.jurisdictions[0]
        notes.append(f"no jurisdiction given: using {jurisdiction}")
    if jurisdiction not in prog.jurisdictions:
        raise InputError([Problem(prog.file, prog.id, "jurisdiction",
                                  f"{jurisdiction!r} is not where the program applies ({', '.join(prog.jurisdictions)})")])
    inputs = parse_inputs(prog, raw_inputs)
    trace: list[TraceStep] | None = [] if explain else None
    ctx = prog.context(inputs, 1, trace)
    award = prog.award_cny(ctx)
    if not prog.priced:
        notes.append(f"status {spec.status}: no amount in the document ({spec.source.quote}); costs nothing until a scenario prices it")
    for c in spec.caps:
        used = float(inputs.get(f"used_{c.per}", np.zeros(1))[0])
        before = award.copy()
        award = cap_by_group(award, np.zeros(1), c.max * prog.unit_cny, c.method, already_used=used)
        step = (f"aggregate cap per {c.per.replace('_', '-')} {fmt_wan(c.max * prog.unit_cny)}, "
                f"already used {fmt_wan(used)} → {fmt_wan(float(award[0]))}")
        if trace is not None:
            trace.append(TraceStep("aggregate_cap", step, float(award[0]), c.clause, 1))
        if award[0] < before[0]:
            notes.append(step)
    in_force = spec.in_force.contains(day)
    if not in_force:
        to = spec.in_force.to or "open"
        notes.append(f"award date {day} is outside the in-force period {spec.in_force.from_} – {to}: not payable")
        award = np.zeros(1)
    committed, cash = prog.cash(award, ctx)
    shares = cat.geography.share_matrix(spec.cost_sharing)[cat.geography.jurisdictions.index(jurisdiction)]
    payers = {p: float(committed[0] * s) for p, s in zip(cat.geography.payers, shares) if s}
    schedule = [{"year_offset": k, "fiscal_year": day.year + k, "cash_cny": float(v),
                 "payers_cny": {p: float(v * s) for p, s in zip(cat.geography.payers, shares) if s}}
                for k, v in enumerate(cash[0]) if v]
    steps = [{"step": s.kind, "text": s.text, "value_cny": s.value_cny, "clause": s.clause or spec.source.quote,
              "depth": s.depth} for s in (trace or [])]
    return CaseResult(prog.id, spec.title_zh, spec.title_en, prog.document.number, spec.source.section, jurisdiction,
                      day.isoformat(), in_force, float(award[0]), float(committed[0]), schedule, payers, steps, notes,
                      spec.exclusive_group)


def calculate_many(cat: Catalogue, program_ids: list[str], raw_inputs: dict[str, Any], **kw) -> list[CaseResult]:
    """Several programs for one applicant; within a non-cumulation group only the highest total pays."""
    progs = [cat.get(pid) for pid in program_ids]
    known = {name for p in progs for name in p.spec.inputs}
    stray = [k for k in raw_inputs if k not in known and not k.startswith("used_")]
    if stray:  # a mistyped input must not be dropped silently (its default would be used instead)
        where = progs[0].file if len(progs) == 1 else "--input"
        raise InputError([Problem(where, ", ".join(program_ids), f"inputs.{k}",
                                  f"not an input of {'this program' if len(progs) == 1 else 'any of these programs'} "
                                  f"(inputs: {', '.join(sorted(known)) or 'none'})") for k in stray])
    results = []
    for prog in progs:
        pid = prog.id
        mine = {k: v for k, v in raw_inputs.items() if k in prog.spec.inputs or k.startswith("used_")}
        results.append(calculate(cat, pid, mine, **kw))
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        if r.exclusive_group:
            groups.setdefault(r.exclusive_group, []).append(r)
    for g, members in groups.items():
        best = max(members, key=lambda r: r.total_cny)
        for r in members:
            r.winner = r is best
            if r is not best:
                r.notes.append(f"non-cumulation group {g!r}: {best.program} pays more ({fmt_wan(best.total_cny)}); this one is not paid")
    return results
