"""One-case calculator: one applicant's award, its schedule by year and its split by payer."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from fiscal_sim.catalogue.loader import Catalogue, CompiledProgram
from fiscal_sim.catalogue.schema import group_names
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.rules.aggregate import cap_by_group
from fiscal_sim.rules.formula import TraceStep
from fiscal_sim.units import fmt_wan, parse_money, parse_number

AWARD = "award"
"""the input that prices an unpriced program (its amount, in the program's unit unless a unit is given)"""


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
    """the formula's amount summed over the claims, after caps: per year for annual schedules, else the total"""
    total_cny: float
    """the commitment: every payment of the schedule"""
    schedule: list[dict[str, Any]]
    payers: dict[str, float]
    """cash paid by payer, yuan (the commitment's split unless ``stay`` cuts the schedule)"""
    steps: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exclusive_group: str | list[str] | None = None
    winner: bool = True
    claims: list[dict[str, Any]] = field(default_factory=list)
    """each claim's inputs and award before and after the aggregate caps"""
    stay_years: int | None = None
    paid_cny: float = 0.0
    """cash paid: the commitment, less what lapses when the recipient leaves (``stay``)"""
    lapsed_cny: float = 0.0
    parameters: list[dict[str, Any]] = field(default_factory=list)
    """the program's named parameters as applied: name, value, unit, clause"""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_inputs(prog: CompiledProgram, raw: dict[str, Any]) -> dict[str, np.ndarray]:
    """Turn ``key=value`` strings (or numbers) into one-element arrays: money in yuan, categories as codes."""
    spec = prog.spec
    out: dict[str, np.ndarray] = {}
    problems = []
    for key in raw:
        if key not in spec.inputs:
            problems.append(
                Problem(
                    prog.file,
                    prog.id,
                    f"inputs.{key}",
                    f"not an input of this program (inputs: {', '.join(spec.inputs) or 'none'})",
                )
            )
    for name, s in spec.inputs.items():
        value = raw.get(name, s.default)
        if value is None:
            problems.append(
                Problem(
                    prog.file,
                    prog.id,
                    f"inputs.{name}",
                    f"required input is missing ({s.type}"
                    + (f": one of {', '.join(s.values)}" if s.values else "")
                    + ")",
                )
            )
            continue
        try:
            if s.type == "category":
                if str(value) not in s.values:  # type: ignore[operator]
                    raise ValueError(f"{value!r} is not one of {', '.join(s.values)}")  # type: ignore[arg-type]
                out[name] = np.array([s.values.index(str(value))])  # type: ignore[union-attr]
            elif s.type == "money":
                out[name] = np.array(
                    [parse_money(value if isinstance(value, (int, float)) else str(value), s.unit or spec.unit)]
                )
            else:
                try:
                    v = parse_number(str(value))
                except ValueError as e:
                    raise ValueError(f"{e} (input {name} is a {s.type}, e.g. {name}=0.5)") from None
                if s.type == "share" and not 0 <= v <= 1:
                    raise ValueError(f"{value!r} is outside 0–1: a share is a fraction (e.g. 0.35 for 35%)")
                out[name] = np.array([v])
        except ValueError as e:
            problems.append(Problem(prog.file, prog.id, f"inputs.{name}", str(e)))
    if problems:
        raise InputError(problems)
    return out


def calculate(
    cat: Catalogue,
    program_id: str,
    raw_inputs: dict[str, Any] | list[dict[str, Any]],
    jurisdiction: str | None = None,
    award_date: dt.date | None = None,
    explain: bool = True,
    stay: int | None = None,
    timeline: bool = True,
) -> CaseResult:
    """Compute one applicant's claims under ``program_id`` and how they are paid and shared.

    ``raw_inputs`` is one claim's inputs, or a list of claims of the same
    entity or person in the award year (e.g. one intermediary's contracts): the
    program's aggregate caps apply across them, in the order given, after what
    ``used_<per>`` says is already used. ``stay`` (years) stops a multi-year
    schedule after that many payments; the unpaid rest is reported as lapsed.
    Unpriced programs are priced by an ``award`` input (the amount, program unit).
    ``timeline`` (default): the program as the simulation runs it (successor switch dates, payment lag and
    instalments of catalogue/timeline.yaml); False: the document's own terms (in-force dates and schedule).
    """
    prog, notes = on_catalogue_timeline(cat, program_id) if timeline else (cat.get(program_id), [])
    spec = prog.spec
    day = award_date or dt.date.today()
    if jurisdiction is None:
        jurisdiction = prog.jurisdictions[0]
        notes.append(f"no jurisdiction given: using {cat.geography.payer_name(jurisdiction)} ({jurisdiction})")
    else:
        try:
            jurisdiction = cat.geography.find(jurisdiction)
        except KeyError as e:
            raise InputError([Problem(prog.file, prog.id, "jurisdiction", e.args[0])]) from None
    if jurisdiction not in prog.jurisdictions:
        raise InputError(
            [
                Problem(
                    prog.file,
                    prog.id,
                    "jurisdiction",
                    f"{jurisdiction!r} is not where the program applies ({', '.join(prog.jurisdictions)})",
                )
            ]
        )
    claims = split_claims(prog, raw_inputs)
    used = used_amounts(prog, claims)
    trace: list[TraceStep] | None = [] if explain else None
    parsed, awards = [], []
    for i, raw in enumerate(claims):
        own = {k: v for k, v in raw.items() if not k.startswith("used_") and k != AWARD}
        inputs = parse_inputs(prog, own)
        if trace is not None and len(claims) > 1:
            trace.append(TraceStep("claim", f"claim {i + 1} of {len(claims)}: " + claim_text(own), 0.0, None, 0))
        ctx = prog.context(inputs, 1, trace)
        awards.append(float(user_award(prog, raw, trace, notes) if AWARD in raw else prog.award_cny(ctx)[0]))
        parsed.append(inputs)
    if not prog.priced and AWARD not in claims[0]:
        notes.append(
            f"status {spec.status}: no amount in the document ({spec.source.quote}); costs nothing until "
            f"priced (calc: --amount or -i award=…; a scenario: price:)"
        )
    award = np.array(awards)
    uncapped = award.copy()
    for c in spec.caps:
        before = award.sum()
        award = cap_by_group(award, np.zeros(award.size), c.max * prog.unit_cny, c.method, already_used=used[c.per])
        step = (
            f"aggregate cap per {c.per.replace('_', '-')} {fmt_wan(c.max * prog.unit_cny)}"
            + (f" over {len(claims)} claims" if len(claims) > 1 else "")
            + f", already used {fmt_wan(used[c.per])} → {fmt_wan(float(award.sum()))}"
        )
        if trace is not None:
            trace.append(TraceStep("aggregate_cap", step, float(award.sum()), c.clause, 1))
        if award.sum() < before:
            notes.append(step)
    in_force = spec.in_force.contains(day)
    if not in_force:
        to = spec.in_force.to or "open"
        notes.append(f"award date {day} is outside the in-force period {spec.in_force.from_} – {to}: not payable")
        award = np.zeros(award.size)
    ctx = prog.context({k: np.concatenate([p[k] for p in parsed]) for k in parsed[0]}, len(claims))
    stayed = None if stay is None else np.full(len(claims), stay)
    committed, cash = prog.cash(award, ctx, stayed)
    cash = cash.sum(axis=0)
    total, paid = float(committed.sum()), float(cash.sum())
    if stay is not None:
        notes.append(
            f"the recipient stays {stay} year(s): paid {fmt_wan(paid)} of {fmt_wan(total)}; "
            f"{fmt_wan(total - paid)} lapses"
        )
    shares = cat.geography.share_matrix(spec.cost_sharing)[cat.geography.jurisdictions.index(jurisdiction)]
    payers = {p: paid * s for p, s in zip(cat.geography.payers, shares) if s}
    schedule = [
        {
            "year_offset": k,
            "fiscal_year": day.year + k,
            "cash_cny": float(v),
            "payers_cny": {p: float(v * s) for p, s in zip(cat.geography.payers, shares) if s},
        }
        for k, v in enumerate(cash)
        if v
    ]
    steps = [
        {
            "step": s.kind,
            "text": s.text,
            "value_cny": s.value_cny,
            "clause": s.clause or spec.source.quote,
            "depth": s.depth,
        }
        for s in (trace or [])
    ]
    claim_rows = [
        {
            "inputs": {k: str(v) for k, v in raw.items() if not k.startswith("used_")},
            "award_before_caps_cny": float(a),
            "award_cny": float(b),
        }
        for raw, a, b in zip(claims, uncapped, award)
    ]
    return CaseResult(
        prog.id,
        spec.title_zh,
        spec.title_en,
        prog.document.number,
        spec.source.section,
        jurisdiction,
        day.isoformat(),
        in_force,
        float(award.sum()),
        total,
        schedule,
        payers,
        steps,
        notes,
        spec.exclusive_group,
        claims=claim_rows,
        stay_years=stay,
        paid_cny=paid,
        lapsed_cny=total - paid,
        parameters=[
            {"name": n, "value": p.value, "unit": p.unit, "clause": p.clause} for n, p in spec.parameters.items()
        ],
    )


def on_catalogue_timeline(cat: Catalogue, program_id: str) -> tuple[CompiledProgram, list[str]]:
    """The program as a simulation of the catalogue has it — in-force end after successors and validity, payment
    lag and instalments (catalogue/timeline.yaml) — and the timeline's notes about it."""
    from fiscal_sim.catalogue.timeline import resolve
    from fiscal_sim.scenario import on_timeline

    cat.get(program_id)  # one clear error for an unknown id
    changes, _ = resolve(cat.programs, cat.timeline)
    prog = on_timeline(cat.programs[program_id], changes.get(program_id))
    return prog, [f"policy timeline: {n}" for n in changes.get(program_id, {}).get("notes", [])]


def split_claims(prog: CompiledProgram, raw: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Claims from inputs: a list of claims, or one mapping whose list values give one claim each.

    An input given once applies to every claim; inputs given several times
    must be given the same number of times.
    """
    if isinstance(raw, list):
        return raw or [{}]
    lengths = {k: len(v) for k, v in raw.items() if isinstance(v, (list, tuple))}
    k = max(lengths.values(), default=1)
    uneven = {n: m for n, m in lengths.items() if m not in (1, k)}
    if uneven:
        raise InputError(
            [
                Problem(
                    prog.file,
                    prog.id,
                    f"inputs.{n}",
                    f"given {m} times, but another input is given "
                    f"{k} times: give each input once (shared by every claim) or once per claim",
                )
                for n, m in uneven.items()
            ]
        )
    return [
        {n: (v[i if len(v) > 1 else 0] if isinstance(v, (list, tuple)) else v) for n, v in raw.items()}
        for i in range(k)
    ]


def used_amounts(prog: CompiledProgram, claims: list[dict[str, Any]]) -> dict[str, float]:
    """``used_<per>`` inputs in yuan (what the entity or person already received this year / lifetime)."""
    pers = [c.per for c in prog.spec.caps]
    out = {per: 0.0 for per in pers}
    problems = []
    for key in {k for c in claims for k in c if k.startswith("used_")}:
        per = key[len("used_") :]
        values = {str(c.get(key)) for c in claims}
        if per not in pers:
            problems.append(
                Problem(
                    prog.file,
                    prog.id,
                    f"inputs.{key}",
                    "the program has no such aggregate cap "
                    f"(used_* inputs: {', '.join('used_' + p for p in pers) or 'none'})",
                )
            )
        elif len(values) > 1:
            problems.append(
                Problem(
                    prog.file,
                    prog.id,
                    f"inputs.{key}",
                    "the amount already used is one per entity or person: give it once, not per claim",
                )
            )
        else:
            try:
                out[per] = parse_money(values.pop(), prog.spec.unit)
            except ValueError as e:
                problems.append(Problem(prog.file, prog.id, f"inputs.{key}", str(e)))
    if problems:
        raise InputError(problems)
    return out


def user_award(prog: CompiledProgram, raw: dict[str, Any], trace: list[TraceStep] | None, notes: list[str]) -> float:
    """The amount a user gives for an unpriced program (``award``, program unit or explicit unit)."""
    if prog.priced:
        raise InputError(
            [
                Problem(
                    prog.file,
                    prog.id,
                    f"inputs.{AWARD}",
                    "the program is priced: its amount comes "
                    "from its formula (an award amount prices only unpriced programs)",
                )
            ]
        )
    try:
        value = parse_money(str(raw[AWARD]), prog.spec.unit)
    except ValueError as e:
        raise InputError([Problem(prog.file, prog.id, f"inputs.{AWARD}", str(e))]) from None
    if value < 0:
        raise InputError([Problem(prog.file, prog.id, f"inputs.{AWARD}", "an award cannot be negative")])
    text = f"award priced by the user: {fmt_wan(value)} (the document gives no amount)"
    if trace is not None:
        trace.append(TraceStep("award", text, value, prog.spec.source.quote, 0))
    if text not in notes:
        notes.append(text)
    return value


def claim_text(inputs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in inputs.items()) or "no inputs"


def calculate_many(cat: Catalogue, program_ids: list[str], raw_inputs: dict[str, Any], **kw) -> list[CaseResult]:
    """Several programs for one applicant; within a non-cumulation group only the highest total pays.

    A program id given several times is that many claims of the same entity
    (its aggregate caps apply across them); inputs given several times give
    each claim its own value.
    """
    progs = [cat.get(pid) for pid in dict.fromkeys(program_ids)]
    repeats = {pid: program_ids.count(pid) for pid in program_ids}
    known = {name for p in progs for name in p.spec.inputs} | {f"used_{c.per}" for p in progs for c in p.spec.caps}
    known |= {AWARD} if any(not p.priced for p in progs) else set()
    stray = [k for k in raw_inputs if k not in known]
    if stray:  # a mistyped input must not be dropped silently (its default would be used instead)
        where = progs[0].file if len(progs) == 1 else "--input"
        raise InputError(
            [
                Problem(
                    where,
                    ", ".join(dict.fromkeys(program_ids)),
                    f"inputs.{k}",
                    "an award amount prices only unpriced programs; these are priced (their formula gives the amount)"
                    if k == AWARD
                    else f"not an input of {'this program' if len(progs) == 1 else 'any of these programs'} "
                    f"(inputs: {', '.join(sorted(known)) or 'none'})",
                )
                for k in stray
            ]
        )
    results = []
    for prog in progs:
        mine = {
            k: v
            for k, v in raw_inputs.items()
            if k in prog.spec.inputs
            or k in {f"used_{c.per}" for c in prog.spec.caps}
            or (k == AWARD and not prog.priced)
        }
        r = repeats[prog.id]
        lengths = {len(v) for v in mine.values() if isinstance(v, (list, tuple)) and len(v) > 1}
        if r > 1 and lengths - {r}:
            raise InputError(
                [
                    Problem(
                        "--input",
                        prog.id,
                        "program",
                        f"listed {r} times (= {r} claims) but inputs are "
                        f"given {', '.join(map(str, sorted(lengths)))} times",
                    )
                ]
            )
        if r > 1 and not lengths:
            mine = {k: (list(v) if isinstance(v, (list, tuple)) else [v]) * r for k, v in mine.items()} or [{}] * r
        results.append(calculate(cat, prog.id, mine, **kw))
    # within each non-cumulation group only the highest pays (ties: the first given); a program in several groups
    # pays only if it is the highest in each (the simulation's rule: engine/overlap.py)
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        for g in group_names(r.exclusive_group):
            groups.setdefault(g, []).append(r)
    for g, members in groups.items():
        best = max(members, key=lambda r: r.total_cny)
        for r in members:
            if r is not best:
                r.winner = False
                r.notes.append(
                    f"non-cumulation group {g!r}: {best.program} pays more ({fmt_wan(best.total_cny)}); "
                    "this one is not paid"
                )
    return results
