"""Scenario files: which programs, reforms (overrides), uptake, horizon, budgets and run settings.

A scenario names programs of the catalogue, overrides any program parameter by
its name (``parameters.cap: 300`` is "cap 500 → 300万元"), overrides cost-sharing
shares, and sets the horizon, draws, seed, chunking, shared shock and budget
lines. Loading it yields :class:`Scenario`, the compiled input of the engine.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import Field, ValidationError, model_validator

from fiscal_sim.catalogue import parameters
from fiscal_sim.catalogue.geography import Geography
from fiscal_sim.catalogue.groups import SimGroup, active_groups, known_groups
from fiscal_sim.catalogue.loader import Catalogue, CompiledProgram, load_catalogue, recompile
from fiscal_sim.catalogue.schema import InForce, Program
from fiscal_sim.catalogue.timeline import Assumption, TimelineSettings, check_settings, merged, resolve
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.pricing import Price, priced
from fiscal_sim.rules.formula import Strict
from fiscal_sim.units import cny_per
from fiscal_sim.yamlfile import YamlDoc

NonNeg = Annotated[float, Field(ge=0)]


class Horizon(Strict):
    start: Annotated[int, Field(ge=2000, le=2100)]
    end: Annotated[int, Field(ge=2000, le=2100)]

    @model_validator(mode="after")
    def _order(self):
        if self.end < self.start:
            raise ValueError(f"horizon reversed: end {self.end} is before start {self.start}")
        return self

    @property
    def years(self) -> list[int]:
        return list(range(self.start, self.end + 1))


class Shock(Strict):
    """A lognormal uptake factor per draw and year, mean 1 and log-sd ``sigma``.

    Each program's factor mixes a common normal (weight ``sqrt(correlation)``)
    with its own, so two exposed programs' log-factors correlate at ``correlation``.
    """

    sigma: NonNeg = 0.0
    correlation: Annotated[float, Field(ge=0, le=1)] = 0.5


class Budget(Strict):
    """A budget line: cash (or commitments) of a payer, for one program or all, per year."""

    payer: str
    program: str = "ALL"
    year: int | None = Field(default=None, description="null: the same line every year")
    amount: NonNeg
    unit: str = "万元"
    measure: Literal["cash", "committed"] = "cash"
    basis: Literal["illustrative", "document"] = Field(
        default="illustrative",
        description="document: the amount is a budget a document states (quote it in "
        "source); illustrative: a yardstick, never an appropriation",
    )
    source: str | None = None

    @model_validator(mode="after")
    def _sourced(self):
        if self.basis == "document" and not self.source:
            raise ValueError("a budget line with basis: document needs the source (document, section, quote)")
        return self


class EstimateBefore(Strict):
    """Estimated pre-horizon cohorts: awards decided from ``from`` to the year before the horizon, for programs
    the register does not cover, simulated with the same uptake, in-force dates and payment timing as new awards
    (an assumption; the register is the authority where the bureau has one)."""

    from_: Annotated[int, Field(alias="from", ge=2000, le=2100)]
    programs: Union[Literal["uncovered"], list[str]] = "uncovered"


class Commitments(Strict):
    """The existing book: a register file and/or estimated pre-horizon cohorts."""

    register_path: str | None = Field(
        default=None, alias="register", description="CSV, Parquet or XLSX, relative to the scenario file"
    )
    synthetic: bool | None = Field(default=None, description="the register's rows are synthetic (over the file's flag)")
    complete_from: Annotated[int, Field(ge=2000, le=2100)] | None = Field(
        default=None, description="the register lists every award from this year on (over the file's flag)"
    )
    estimate_before: EstimateBefore | None = None


class ScenarioSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    extends: str | None = Field(
        default=None, description="base scenario file (relative to this one); see merge_extends"
    )
    description: str = ""
    policy_basis: Literal["as_written", "current_policy"] | None = Field(
        default=None,
        description="the validity rule the scenario applies to every document: as_written (each stops "
        "where its text or a stated validity assumption says) or current_policy (every "
        "document in force at the horizon start renews on its terms)",
    )
    programs: Union[Literal["all"], list[str]] = "all"
    exclude: list[str] = []
    overrides: dict[str, dict[str, Any]] = {}
    dated_overrides: dict[dt.date, dict[str, dict[str, Any]]] = Field(
        default={},
        description="changes from a date: DATE → program → path → value; awards decided on or after DATE take "
        "them (with every earlier date's), earlier awards keep the terms before (fiscal_sim.scenario.dated_parts)",
    )
    cost_sharing: dict[str, dict[str, dict[str, NonNeg]]] = {}
    horizon: Horizon
    draws: Annotated[int, Field(ge=1, le=10_000_000)] = 1000
    seed: Annotated[int, Field(ge=0)] = 0
    chunk_size: Annotated[int, Field(ge=1)] = 1000
    block_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    var_level: Annotated[float, Field(gt=0.5, lt=1)] = 0.95
    shock: Shock = Shock()
    budgets: list[Budget] = []
    price: dict[str, Price] = Field(default={}, description="unpriced program → amounts by grade (fiscal_sim.pricing)")
    overlap: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(
        default={}, description="non-cumulation group → overlap share (default: catalogue/exclusive_groups.yaml)"
    )
    pipelines: list[dict[str, Any]] = Field(
        default=[], description="administrative pipelines (see fiscal_sim.pipeline)"
    )
    timeline: TimelineSettings | None = Field(default=None, description="changes to the catalogue's policy timeline")
    alternatives: list[dict[str, Any]] = Field(
        default=[], description="the scenario's own assumption-ledger alternatives (fiscal_sim.analysis.assumptions)"
    )
    commitments: str | Commitments | None = Field(
        default=None,
        description="the existing book: a register path (CSV, Parquet or XLSX, relative to the scenario "
        "file), or {register: PATH, estimate_before: {from: YEAR, programs: uncovered|[ids]}}",
    )

    @property
    def commitments_spec(self) -> Commitments:
        c = self.commitments
        return Commitments(register=c) if isinstance(c, str) else c or Commitments()


class ScenarioFile(Strict):
    scenario: ScenarioSpec
    calibration: dict[str, Any] | None = Field(default=None, description="provenance written by fiscal-sim calibrate")


@dataclass
class SimProgram:
    """A program ready to simulate: its compiled rules plus arrays the engine needs."""

    prog: CompiledProgram
    jur: np.ndarray
    """indices of the program's jurisdictions in the geography"""
    lam: np.ndarray
    """expected applicants per (jurisdiction, year) before random factors"""
    shares: np.ndarray
    """payer shares per program jurisdiction (J_p × payers)"""
    per_applicant: bool = False
    """force per-applicant simulation (programs in a pipeline need their applicants)"""

    @property
    def id(self) -> str:
        return self.prog.id


@dataclass
class Scenario:
    spec: ScenarioSpec
    path: str
    catalogue: Catalogue
    programs: list[SimProgram]
    sha256: str
    unpriced: list[CompiledProgram] = field(default_factory=list)
    assumptions: list[Assumption] = field(default_factory=list)
    """timeline and timing assumptions as applied (catalogue defaults and the scenario's changes)"""
    register: Any = None
    """the existing commitment book (:class:`fiscal_sim.register.Register`), or None"""
    groups: list[SimGroup] = field(default_factory=list)
    """non-cumulation groups the engine applies (two or more simulated members, overlap > 0)"""
    estimated: dict[str, Any] = field(default_factory=dict)
    """programs whose pre-horizon cohorts are estimated (``commitments.estimate_before``) →
    :class:`fiscal_sim.cohorts.PreHorizon` (award years)"""
    documented: dict[str, CompiledProgram] = field(default_factory=dict)
    """overridden programs as the catalogue has them: pre-horizon awards were made on these terms"""
    extends: tuple[str, ...] = ()
    """the scenario files this one ``extends`` (base first is last), read with it"""

    @property
    def existing_programs(self) -> set[str]:
        """Programs with an ``existing`` vintage: register books and estimated pre-horizon cohorts."""
        return set(self.register.books if self.register is not None else ()) | set(self.estimated)

    @property
    def geography(self) -> Geography:
        return self.catalogue.geography

    @property
    def years(self) -> list[int]:
        return self.spec.horizon.years

    def with_settings(self, **settings: Any) -> "Scenario":
        """A copy with run settings changed (draws, seed, chunk_size) — validated like the file."""
        data = self.spec.model_dump(by_alias=True) | {k: v for k, v in settings.items() if v is not None}
        spec = ScenarioSpec.model_validate(data)
        return Scenario(
            spec,
            self.path,
            self.catalogue,
            self.programs,
            self.sha256,
            self.unpriced,
            self.assumptions,
            self.register,
            self.groups,
            self.estimated,
            self.documented,
            self.extends,
        )


def set_path(obj: Any, path: list[str], value: Any) -> None:
    """Set ``obj[path]``; every step must exist (a reform cannot invent a parameter)."""
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(obj, list):
            if not key.isdigit() or int(key) >= len(obj):
                raise KeyError(".".join(path[: i + 1]))
            key = int(key)  # type: ignore[assignment]
        elif not isinstance(obj, dict) or key not in obj:
            raise KeyError(".".join(path[: i + 1]))
        if last:
            obj[key] = value
        else:
            obj = obj[key]


def apply_overrides(prog: CompiledProgram, changes: dict[str, Any], geo: Geography, problem) -> CompiledProgram | None:
    """A program with ``changes`` (path → value) applied and re-validated; None on problems."""
    data = prog.spec.model_dump(by_alias=True, mode="json")
    raw = copy.deepcopy(data)
    ok = True
    for path, value in changes.items():
        head, _, rest = path.partition(".")
        if head == "parameters":  # by name: every place the formula refers to it
            name, _, key = rest.partition(".")
            msg = parameters.override(raw, name, key or None, value)
            if msg:
                problem((path,), f"{msg} in program {prog.id}")
                ok = False
            continue
        held = parameters.name_at(prog.spec.parameters, path)
        if held is not None:
            name, key = held
            problem(
                (path,),
                f"address parameters by name: programs.{prog.id}.parameters.{name}"
                + (f".{key}" if key else "")
                + f" (not {path})",
            )
            ok = False
            continue
        try:
            set_path(raw, path.split("."), value)
        except KeyError as e:
            problem(
                (path,),
                f"no parameter {e.args[0]!r} in program {prog.id} (a reform can only change existing parameters)",
            )
            ok = False
    if not ok:
        return None
    return recompile(prog, raw, geo, problem)


def year_fraction_in_force(prog: CompiledProgram, year: int) -> float:
    """Share of ``year`` inside the in-force dates (applications assumed uniform over the year)."""
    f = prog.spec.in_force
    start = max(f.from_, dt.date(year, 1, 1))
    end = min(f.to or dt.date(year, 12, 31), dt.date(year, 12, 31))
    days = (dt.date(year, 12, 31) - dt.date(year, 1, 1)).days + 1
    return max((end - start).days + 1, 0) / days


def _table_value(table: dict[int, float], year: int) -> float:
    """A year's value from a year table: that year, else the nearest earlier year, else the first."""
    earlier = [y for y in table if y <= year]
    return table[max(earlier)] if earlier else table[min(table)]


def expected_counts(
    prog: CompiledProgram, geo: Geography, years: list[int], base_year: int | None = None
) -> np.ndarray:
    """Expected applicants per (program jurisdiction, year): targets, allocation, growth, in-force share.

    Growth runs from the count's ``base_year``, else ``base_year`` given here, else the first year."""
    up = prog.spec.uptake
    J, Y = len(prog.jurisdictions), len(years)
    if up is None or not prog.priced:
        return np.zeros((J, Y))
    c = up.count
    alloc = geo.allocation(up.allocation, prog.jurisdictions)
    base_year = c.base_year or base_year or years[0]
    lam = np.zeros((J, Y))
    for t, y in enumerate(years):
        g = (1.0 + c.growth) ** (y - base_year)
        if c.dist == "binomial":
            total = float(c.pool) * float(c.take_up)  # type: ignore[arg-type]
            lam[:, t] = total * alloc
        elif c.by_jurisdiction is not None:
            for i, j in enumerate(prog.jurisdictions):
                v = c.by_jurisdiction.get(j, 0.0)
                lam[i, t] = _table_value(v, y) if isinstance(v, dict) else v
        elif c.by_year is not None:
            lam[:, t] = _table_value(c.by_year, y) * alloc
        else:
            lam[:, t] = float(c.mean) * alloc  # type: ignore[arg-type]
        lam[:, t] *= g * year_fraction_in_force(prog, y)
    return lam


FILE_KEYS = ("commitments",)
"""scenario keys naming a file relative to the scenario file"""


def merge_extends(doc: YamlDoc, chain: tuple[Path, ...] = ()) -> tuple[Any, tuple[Path, ...]]:
    """A scenario's data with its ``extends`` base merged in, and the chain of files (this one first).

    The file's ``scenario`` keys replace the base's, except ``overrides``, merged per program (the file's
    paths win). Inherited overrides of programs the file leaves out (``programs``, ``exclude``) are dropped.
    """
    chain = chain + (doc.path.resolve(),)
    data = doc.data
    child = data.get("scenario") if isinstance(data, dict) else None
    if not isinstance(child, dict) or not child.get("extends"):
        return data, chain
    base_path = (doc.path.parent / str(child["extends"])).resolve()
    if base_path in chain:
        raise InputError([doc.problem(("scenario", "extends"), f"circular extends: {base_path} extends this file")])
    if not base_path.exists():
        raise InputError([doc.problem(("scenario", "extends"), f"no such scenario file {base_path}")])
    base, chain = merge_extends(YamlDoc(base_path), chain)
    base_sc = dict(base.get("scenario") or {}) if isinstance(base, dict) else {}

    def anchored(name: str) -> str:  # a file the base names stays where the base says, wherever the overlay lives
        return name if Path(name).is_absolute() else str((base_path.parent / name).resolve())

    for key in FILE_KEYS:
        if isinstance(base_sc.get(key), str):
            base_sc[key] = anchored(base_sc[key])
    book = base_sc.get("commitments")
    if isinstance(book, dict) and isinstance(book.get("register"), str):  # commitments: {register: FILE, …}
        base_sc["commitments"] = {**book, "register": anchored(book["register"])}
    overrides = {pid: dict(v or {}) for pid, v in (base_sc.get("overrides") or {}).items()}
    keep = child.get("programs", base_sc.get("programs", "all"))
    for pid in list(overrides):
        if (keep != "all" and isinstance(keep, list) and pid not in keep) or pid in (child.get("exclude") or []):
            del overrides[pid]
    for pid, paths in (child.get("overrides") or {}).items():
        overrides[pid] = {**overrides.get(pid, {}), **(paths or {})}
    merged = {**base_sc, **child, "overrides": overrides}
    return {**(base if isinstance(base, dict) else {}), **data, "scenario": merged}, chain


def load_scenario(path: Path | str, catalogue: Catalogue | None = None) -> Scenario:
    """Read, validate and compile a scenario file; every problem names file, program and field."""
    doc = YamlDoc(path)
    data, chain = merge_extends(doc)
    try:
        sf = ScenarioFile.model_validate(data)
    except ValidationError as e:
        raise InputError(doc.problems_from(e, (), None, data)) from None
    spec = sf.scenario
    if catalogue is None:
        root = chain[-1].parent
        catalogue = load_catalogue(root if (root / "catalogue/jurisdictions.yaml").exists() else None)
    geo = catalogue.geography
    problems: list[Problem] = []
    ids = list(catalogue.programs) if spec.programs == "all" else list(spec.programs)
    for i, pid in enumerate(ids if spec.programs != "all" else []):
        if pid not in catalogue.programs:
            problems.append(doc.problem(("scenario", "programs", i), f"unknown program {pid!r}", pid))
    for pid in spec.exclude:
        if pid not in catalogue.programs:
            problems.append(doc.problem(("scenario", "exclude"), f"unknown program {pid!r}", pid))
    for pid in spec.overrides:
        if pid not in catalogue.programs:
            problems.append(doc.problem(("scenario", "overrides", pid), f"unknown program {pid!r}", pid))
        elif pid not in ids or pid in spec.exclude:
            problems.append(
                doc.problem(("scenario", "overrides", pid), "program is overridden but not in the scenario", pid)
            )
    for regime, classes in spec.cost_sharing.items():
        if regime not in geo.data.cost_sharing:
            problems.append(
                doc.problem(("scenario", "cost_sharing", regime), f"unknown cost-sharing regime {regime!r}")
            )
            continue
        for cls, shares in classes.items():
            if cls not in geo.data.fiscal_classes:
                problems.append(doc.problem(("scenario", "cost_sharing", regime, cls), f"unknown fiscal class {cls!r}"))
            elif abs(sum(shares.values()) - 1) > 1e-9:
                problems.append(
                    doc.problem(
                        ("scenario", "cost_sharing", regime, cls), f"shares sum to {sum(shares.values()):g}, not 1"
                    )
                )
            for payer in shares:
                if payer != "local" and payer not in geo.data.payers:
                    problems.append(
                        doc.problem(("scenario", "cost_sharing", regime, cls, payer), f"unknown payer {payer!r}")
                    )
    for pid in spec.price:
        if pid not in catalogue.programs:
            problems.append(doc.problem(("scenario", "price", pid), f"unknown program {pid!r}", pid))
        elif pid not in ids or pid in spec.exclude:
            problems.append(doc.problem(("scenario", "price", pid), "program is priced but not in the scenario", pid))
    known = known_groups(catalogue.groups, list(catalogue.timeline.families))
    for g in spec.overlap:
        if g not in known:
            problems.append(
                doc.problem(
                    ("scenario", "overlap", g),
                    f"unknown non-cumulation group {g!r} (known: {', '.join(known) or 'none'})",
                )
            )
    for i, b in enumerate(spec.budgets):
        if b.payer not in geo.payers and b.payer != "ALL":
            problems.append(doc.problem(("scenario", "budgets", i, "payer"), f"unknown payer {b.payer!r}"))
        if b.program != "ALL" and (b.program not in ids or b.program in spec.exclude):
            problems.append(
                doc.problem(
                    ("scenario", "budgets", i, "program"), f"program {b.program!r} is not in the scenario", b.program
                )
            )
        if b.year is not None and b.year not in spec.horizon.years:
            problems.append(
                doc.problem(
                    ("scenario", "budgets", i, "year"),
                    f"year {b.year} is outside the horizon "
                    f"{spec.horizon.start}–{spec.horizon.end}: the line would never be compared",
                )
            )
        try:
            cny_per(b.unit)
        except ValueError as e:
            problems.append(doc.problem(("scenario", "budgets", i, "unit"), str(e)))
    documents = {p.document.number for p in catalogue.programs.values()}
    if spec.timeline is not None:
        problems += check_settings(
            spec.timeline,
            catalogue.timeline,
            catalogue.programs,
            documents,
            lambda p, msg: doc.problem(("scenario", "timeline") + tuple(p), msg),
        )
    if problems:
        raise InputError(problems)
    timeline, by_scenario = merged(catalogue.timeline, spec.timeline, documents)
    changes, assumptions = resolve(catalogue.programs, timeline, by_scenario)
    sims, unpriced = [], []
    documented: dict[str, CompiledProgram] = {}  # programs as documented, before the scenario's overrides
    for pid in ids:
        if pid in spec.exclude:
            continue
        prog = on_timeline(catalogue.programs[pid], changes.get(pid))
        if pid in spec.price:
            prog = priced(
                prog,
                spec.price[pid],
                geo,
                lambda p, msg, pid=pid: problems.append(doc.problem(("scenario", "price", pid) + tuple(p), msg, pid)),
            )
            if prog is None:
                continue
        if pid in spec.overrides:

            def problem(p, msg, pid=pid):
                problems.append(doc.problem(("scenario", "overrides", pid) + tuple(p), msg, pid))

            notes = prog.timeline_notes
            documented[pid] = prog
            prog = apply_overrides(prog, spec.overrides[pid], geo, problem)
            if prog is None:
                continue
            prog.timeline_notes = notes
        renewal = (changes.get(pid) or {}).get("renewal")
        if renewal is not None:

            def problem(p, msg, pid=pid, number=prog.document.number):
                problems.append(
                    doc.problem(("scenario", "timeline", "after_expiry", number, "overrides", pid) + tuple(p), msg, pid)
                )

            copy_ = renewed(prog, renewal, geo, problem)
            if copy_ is not None and copy_.priced and copy_.spec.uptake is not None:
                sims.append(sim_program(copy_, geo, spec))
        dated = sorted((d, ch[pid]) for d, ch in spec.dated_overrides.items() if pid in ch)
        if dated:

            def problem(p, msg, pid=pid):
                problems.append(doc.problem(("scenario", "dated_overrides") + tuple(p), msg, pid))

            if renewal is not None:
                problem((str(dated[0][0]), pid), f"program {pid} is renewed with changes (renew_with) already")
                continue
            lines = [i for i, b in enumerate(spec.budgets) if b.program == pid]
            if lines:
                problem(
                    (str(dated[0][0]), pid),
                    f"budget line {lines[0]} is on program {pid}, whose part from {dated[0][0]} is program "
                    f"{pid}{DATED}{dated[0][0]}: put the line on ALL or leave the dated change out",
                )
                continue
            parts = dated_parts(prog, dated, geo, problem)
            if parts is None:
                continue
            prog, later = parts[0], parts[1:]
        else:
            later = []
        if not prog.priced or prog.spec.uptake is None:
            unpriced.append(prog)
            continue
        sims.append(sim_program(prog, geo, spec))
        sims += [sim_program(p, geo, spec) for p in later]
    if not problems:  # a program dropped for a bad override would make its budget lines look unmatched
        problems += unmatched_budgets(doc, spec, sims, geo)
    if spec.pipelines:
        problems += pipeline_problems(doc, spec, sims, geo)
    if problems:
        raise InputError(problems)
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in chain)).hexdigest()
    scen = Scenario(
        spec,
        str(path),
        catalogue,
        sims,
        digest,
        unpriced,
        assumptions,
        groups=active_groups(catalogue.groups, sims, spec.overlap),
    )
    scen.documented = documented
    scen.extends = tuple(str(f) for f in chain[1:])
    book = spec.commitments_spec
    if book.register_path:
        from fiscal_sim.register import load_register

        scen.register = load_register(
            Path(path).resolve().parent / book.register_path,
            scen,
            {"synthetic": book.synthetic, "complete_from": book.complete_from},
        )
    if book.estimate_before is not None:
        from fiscal_sim.cohorts import estimated_programs

        scen.estimated = estimated_programs(scen, book.estimate_before, doc)
    return scen


def count_basis(up, horizon) -> str:
    """The basis of a program's count over the horizon: ``target``, ``target Y0–Y1, assumption after``,
    ``assumption`` or ``calibrated`` (a target only while an in-date document states it)."""
    target = [y for y in range(horizon.start, horizon.end + 1) if up.basis_in(y) == "target"]
    if target and target[-1] < horizon.end:
        return f"target {target[0]}–{target[-1]}, assumption after"
    return "target" if target else up.basis_in(horizon.end)


def timeline_manifest(scen: Scenario) -> dict[str, Any]:
    """What a run manifest states about the timeline, timing, uptake bases and the commitment register."""
    y0 = scen.spec.horizon.start
    basis = {sp.id: count_basis(sp.prog.spec.uptake, scen.spec.horizon) for sp in scen.programs}
    reg = scen.register
    return {
        "timeline": [
            {
                "kind": a.kind,
                "subject": a.subject,
                "setting": a.setting,
                "basis": a.basis,
                "text": a.text,
                "set_by": a.set_by,
            }
            for a in scen.assumptions
        ],
        "program_timeline": {
            sp.id: {
                "in_force": [str(sp.prog.spec.in_force.from_), str(sp.prog.spec.in_force.to or "open")],
                "schedule": sp.prog.spec.schedule.describe(),
                "uptake_basis": basis[sp.id],
                "changes": sp.prog.timeline_notes,
            }
            for sp in scen.programs
        },
        "budgets": [
            {
                "payer": b.payer,
                "program": b.program,
                "amount": b.amount,
                "unit": b.unit,
                "basis": b.basis,
                "source": b.source,
            }
            for b in scen.spec.budgets
        ],
        "commitments": None
        if reg is None
        else {
            "path": reg.path,
            "rows": reg.rows,
            "programs": sorted(reg.books),
            "synthetic": reg.synthetic,
            "complete_from": reg.complete_from,
            "opening_outstanding_cny": float(sum(b.opening_cny.sum() for b in reg.books.values())),
        },
        "estimated_pre_horizon": None
        if not scen.estimated
        else {
            "basis": "assumption",
            "text": "vintage 'existing' = the register's awards plus estimated pre-horizon cohorts for the programs "
            "listed: awards decided from the first year given to the year before the horizon, simulated with "
            "the same uptake priors, in-force dates, timeline and payment timing as new awards, attrition "
            "from the award year; only payments falling in the horizon are counted (earlier ones were paid). "
            "Cohorts the register covers (a program's award years with register rows, and every year from "
            "the register's complete_from) are not estimated (no double counting).",
            "award_years": {pid: ph.years(y0) for pid, ph in scen.estimated.items()},
            "register_years": {pid: sorted(ph.skip) for pid, ph in scen.estimated.items() if ph.skip},
        },
    }


DATED = ".from-"
"""a program's part from a dated change on: id ``<id>.from-<date>``"""


def sim_program(prog: CompiledProgram, geo: Geography, spec: ScenarioSpec) -> SimProgram:
    """A compiled program ready to simulate: its jurisdictions, expected counts and payer shares."""
    jur = np.array([geo.jurisdictions.index(j) for j in prog.jurisdictions])
    shares = geo.share_matrix(prog.spec.cost_sharing, spec.cost_sharing.get(prog.spec.cost_sharing, {}))[jur]
    return SimProgram(prog, jur, expected_counts(prog, geo, spec.horizon.years), shares)


def dated_parts(
    prog: CompiledProgram, dated: list[tuple[dt.date, dict[str, Any]]], geo: Geography, problem
) -> list[CompiledProgram] | None:
    """A program changed from dates on, as consecutive parts: the first keeps its terms to the day before the first
    date; from each date a part ``<id>.from-<date>`` with that date's changes (and every earlier one's), in force to
    the day before the next date. Each part draws its own awards (a year split by a date splits its expected
    count by the days in force). None on problems."""
    start, end = prog.spec.in_force.from_, prog.spec.in_force.to
    for d, _ in dated:
        if d <= start or (end is not None and d > end):
            problem(
                (str(d), prog.id),
                f"{d} is not inside program {prog.id}'s time in force ({start} to {end or 'open'}): a change applies "
                "from a day after the program's first",
            )
            return None
    day = dt.timedelta(days=1)
    first = prog.spec.model_copy(update={"in_force": InForce.model_construct(from_=start, to=dated[0][0] - day)})
    parts = [CompiledProgram(first, prog.document, prog.file, prog.jurisdictions, list(prog.timeline_notes))]
    ends = [d - day for d, _ in dated[1:]] + [end]
    changes: dict[str, Any] = {}
    for (d, ch), to in zip(dated, ends):
        changes = {**changes, **ch}
        data = prog.spec.model_dump(by_alias=True, mode="json")
        data.update(
            id=f"{prog.id}{DATED}{d}",
            title_zh=f"{prog.spec.title_zh}（{d}起）",
            title_en=f"{prog.spec.title_en} (from {d})",
            in_force={"from": str(d), "to": str(to) if to else None},
        )
        base = CompiledProgram(Program.model_validate(data), prog.document, prog.file, prog.jurisdictions)
        part = apply_overrides(base, changes, geo, lambda p, msg, d=d: problem((str(d), prog.id) + tuple(p), msg))
        if part is None:
            return None
        part.timeline_notes = list(prog.timeline_notes) + [
            f"part of {prog.id} from {d}: " + ", ".join(f"{k}={v}" for k, v in changes.items())
        ]
        parts.append(part)
    return parts


def renewed(prog: CompiledProgram, renewal: dict, geo: Geography, problem) -> CompiledProgram | None:
    """The renewed copy of a program (``renew_with``): id ``<id>.renewed``, in force from the day after expiry."""
    from fiscal_sim.catalogue.timeline import RENEWED

    data = prog.spec.model_dump(by_alias=True, mode="json")
    data.update(
        id=prog.id + RENEWED,
        title_zh=prog.spec.title_zh + "（续期）",
        title_en=prog.spec.title_en + " (renewed)",
        in_force={"from": str(renewal["from"]), "to": str(renewal["to"]) if renewal["to"] else None},
    )
    base = CompiledProgram(Program.model_validate(data), prog.document, prog.file, prog.jurisdictions)
    out = apply_overrides(base, renewal["overrides"], geo, problem) if renewal["overrides"] else base
    if out is not None:
        out.timeline_notes = [f"renewal of {prog.id} from {renewal['from']}"] + [
            f"{k}: {v}" for k, v in renewal["overrides"].items()
        ]
    return out


def on_timeline(prog: CompiledProgram, change: dict | None) -> CompiledProgram:
    """The program as the policy timeline has it: in-force end, schedule (lag, instalments), non-cumulation group."""
    if not change:
        return prog
    update: dict[str, Any] = {}
    if "in_force_to" in change:
        # constructed, not validated: a program superseded before its first day ends the day before it starts
        update["in_force"] = InForce.model_construct(from_=prog.spec.in_force.from_, to=change["in_force_to"])
    if "schedule" in change:
        update["schedule"] = change["schedule"]
    if "exclusive_group" in change:
        update["exclusive_group"] = change["exclusive_group"]
    return CompiledProgram(
        prog.spec.model_copy(update=update), prog.document, prog.file, prog.jurisdictions, list(change["notes"])
    )


def unmatched_budgets(doc: YamlDoc, spec: ScenarioSpec, sims: list[SimProgram], geo: Geography) -> list[Problem]:
    """Budget lines no simulated series matches (an unpriced program, a payer that pays nothing there)."""
    payers_of = {sp.id: {geo.payers[p] for p in np.flatnonzero(sp.shares.sum(axis=0) > 0)} for sp in sims}
    payers_of["ALL"] = set().union(*payers_of.values())
    out = []
    for i, b in enumerate(spec.budgets):
        if b.program not in payers_of:
            out.append(
                doc.problem(
                    ("scenario", "budgets", i, "program"),
                    f"program {b.program!r} is not simulated "
                    "(unpriced, or no uptake): the budget line would never be compared",
                    b.program,
                )
            )
        elif b.payer != "ALL" and b.payer in geo.payers and b.payer not in payers_of[b.program]:
            out.append(
                doc.problem(
                    ("scenario", "budgets", i, "payer"),
                    f"payer {b.payer!r} pays nothing for "
                    f"{'any simulated program' if b.program == 'ALL' else b.program}: the budget line "
                    "would never be compared",
                    None if b.program == "ALL" else b.program,
                )
            )
    return out


def pipeline_problems(doc: YamlDoc, spec: ScenarioSpec, sims: list[SimProgram], geo: Geography) -> list[Problem]:
    """Validate the scenario's pipelines; mark their programs for per-applicant simulation."""
    from fiscal_sim.pipeline_spec import check_pipelines

    payers_of = {sp.id: {geo.payers[p] for p in np.flatnonzero(sp.shares.sum(axis=0) > 0)} for sp in sims}
    found = check_pipelines(doc, spec.pipelines, [sp.id for sp in sims], geo.payers, spec.horizon.years, payers_of)
    members = {pid for p in spec.pipelines if isinstance(p, dict) for pid in p.get("programs") or []}
    for sp in sims:
        sp.per_applicant = sp.per_applicant or sp.id in members
    return found


def parse_budget(text: str, opt: str = "--budget") -> Budget:
    """``PAYER[:PROGRAM]=AMOUNT``: a yearly cash line, AMOUNT in 万元 unless it names its unit (``city=25000``,
    ``city=2.5亿``, ``ALL:jwf2017-4.talent-housing=1亿``); ``opt`` names the option in errors."""
    from fiscal_sim.errors import FiscalSimError
    from fiscal_sim.units import parse_money

    key, sep, amount = text.partition("=")
    payer, _, program = key.strip().partition(":")
    if not sep or not payer:
        raise FiscalSimError(f"{opt} {text!r}: expected PAYER[:PROGRAM]=AMOUNT, e.g. city=2.5亿")
    try:
        cny = parse_money(amount, "万元")
    except ValueError as e:
        raise FiscalSimError(f"{opt} {text!r}: {e}") from None
    return Budget(payer=payer, program=program.strip() or "ALL", amount=cny / 1e4, unit="万元")


def check_budget(scen: Scenario, b: Budget, text: str, opt: str = "--budget") -> None:
    """A budget line from the command line must name a payer and a simulated program (or ALL)."""
    from fiscal_sim.errors import FiscalSimError

    if b.payer != "ALL" and b.payer not in scen.geography.payers:
        raise FiscalSimError(
            f"{opt} {text!r}: unknown payer {b.payer!r} (known: ALL, {', '.join(scen.geography.payers)})"
        )
    if b.program not in ("ALL", "ALL_EQUITY") and b.program not in {sp.id for sp in scen.programs}:
        raise FiscalSimError(f"{opt} {text!r}: program {b.program!r} is not simulated in {scen.spec.name}")


def set_budget(lines: list[Budget], b: Budget) -> list[Budget]:
    """``lines`` with ``b`` replacing the every-year cash line of the same payer and program (or added)."""
    return [x for x in lines if (x.payer, x.program, x.measure, x.year) != (b.payer, b.program, "cash", None)] + [b]


def with_budgets(scen: Scenario, texts: list[str]) -> Scenario:
    """``scen`` with each ``--budget`` replacing the yearly line of the same payer and program (or added)."""
    lines = list(scen.spec.budgets)
    for text in texts:
        b = parse_budget(text)
        check_budget(scen, b, text)
        lines = set_budget(lines, b)
    return scen.with_settings(budgets=[x.model_dump(by_alias=True) for x in lines]) if texts else scen
