"""Load and validate the program catalogue: YAML files → checked, compiled programs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from pydantic import ValidationError

from fiscal_sim.catalogue.geography import Geography, load_geography
from fiscal_sim.catalogue.groups import GROUPS_FILE, ExclusiveGroup, load_groups
from fiscal_sim.catalogue.parameters import Parameter, name_at
from fiscal_sim.catalogue.schema import INHERITED, Document, Program, ProgramFile, group_names
from fiscal_sim.catalogue.timeline import TimelineFile, check_timeline, load_timeline
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.rules.compile import CompiledFormula, compile_formula
from fiscal_sim.rules.formula import ByInput, EvalContext, evaluate
from fiscal_sim.rules.schedule import ScheduleChoice, cash_by_offset
from fiscal_sim.units import cny_per
from fiscal_sim.yamlfile import YamlDoc, _real_path

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "scenarios"
GEOGRAPHY_FILE = "catalogue/jurisdictions.yaml"
TIMELINE_FILE = "catalogue/timeline.yaml"
PROGRAM_DIR = "programs"


@dataclass
class CompiledProgram:
    """A validated program with what evaluation needs: categories, unit scale, jurisdictions."""

    spec: Program
    document: Document
    file: str
    jurisdictions: list[str]
    timeline_notes: list[str] = field(default_factory=list)
    """how the policy timeline changed this program (in-force dates, schedule, group)"""

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def unit_cny(self) -> float:
        return cny_per(self.spec.unit)

    @property
    def categories(self) -> dict[str, list[str]]:
        return {k: v.values for k, v in self.spec.inputs.items() if v.type == "category"}  # type: ignore[misc]

    @property
    def priced(self) -> bool:
        return self.spec.status in ("priced", "equity") and self.spec.formula is not None

    @property
    def money_scale(self) -> dict[str, float]:
        return {k: self.unit_cny for k, v in self.spec.inputs.items() if v.type == "money"}

    def context(self, inputs: dict[str, np.ndarray], n: int, trace: list | None = None) -> EvalContext:
        return EvalContext(
            n=n,
            inputs=inputs,
            categories=self.categories,
            unit_cny=self.unit_cny,
            trace=trace,
            money_scale=self.money_scale,
        )

    @cached_property
    def plan(self) -> CompiledFormula:
        """The formula compiled to array operations (:mod:`fiscal_sim.rules.compile`)."""
        return compile_formula(self.spec.formula, self.categories, self.unit_cny, self.money_scale)  # type: ignore[arg-type]

    def award_cny(self, ctx: EvalContext) -> np.ndarray:
        """Each applicant's award (per year for annual schedules), before aggregate caps.

        Traced evaluations walk the formula tree step by step; others run the compiled plan.
        """
        if not self.priced:
            return np.zeros(ctx.n)
        if ctx.trace is not None:
            return evaluate(self.spec.formula, ctx)  # type: ignore[arg-type]
        return self.plan(ctx.inputs, ctx.n)

    def cash(self, amount_cny: np.ndarray, ctx: EvalContext, years_stayed=None, width=None):
        """``(committed_cny, cash_cny by year offset)`` for awards ``amount_cny``."""
        return cash_by_offset(self.spec.schedule, amount_cny, ctx, years_stayed, width)

    def money_input_cny(self, name: str) -> float:
        """Yuan per unit of a money input (its own unit, else the program's)."""
        return cny_per(self.spec.inputs[name].unit or self.spec.unit)


@dataclass
class Catalogue:
    programs: dict[str, CompiledProgram]
    geography: Geography
    files: list[Path] = field(default_factory=list)
    timeline: TimelineFile = field(default_factory=TimelineFile)
    groups: dict[str, ExclusiveGroup] = field(default_factory=dict)
    """non-cumulation groups (catalogue/exclusive_groups.yaml)"""

    def get(self, program_id: str) -> CompiledProgram:
        try:
            return self.programs[program_id]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(program_id, list(self.programs), n=3, cutoff=0.8)
            close += [p for p in self.programs if program_id.split(".")[-1] in p and p not in close][: 5 - len(close)]
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise InputError([Problem("catalogue", program_id, "id", f"unknown program{hint}")]) from None

    def sha256(self) -> str:
        """Hash of every catalogue file, in name order (recorded in run manifests)."""
        h = hashlib.sha256()
        for f in sorted(self.files + [Path(self.geography.path)]):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
        return h.hexdigest()


def program_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.yaml")) if path.is_dir() else [path]


def load_catalogue(root: Path | str | None = None, files: Iterable[Path] | None = None) -> Catalogue:
    """Load ``root/programs/*.yaml`` with ``root/catalogue/jurisdictions.yaml``; raise on any problem."""
    root = Path(root) if root else DEFAULT_ROOT
    geo = load_geography(root / GEOGRAPHY_FILE)
    files = list(files) if files is not None else program_files(root / PROGRAM_DIR)
    programs: dict[str, CompiledProgram] = {}
    problems: list[Problem] = []
    for f in files:
        try:
            for cp in load_program_file(f, geo):
                if cp.id in programs:
                    problems.append(
                        Problem(str(f), cp.id, "id", f"duplicate program id (also in {programs[cp.id].file})")
                    )
                programs[cp.id] = cp
        except InputError as e:
            problems.extend(e.problems)
    tl_path = root / TIMELINE_FILE
    timeline = TimelineFile()
    if not problems:
        try:
            timeline = load_timeline(tl_path)
        except InputError as e:
            problems.extend(e.problems)
        documents = {p.document.number for p in programs.values()}
        tl_doc = YamlDoc(tl_path) if tl_path.exists() else None
        problems += check_timeline(
            timeline,
            programs,
            documents,
            lambda path, msg: (
                tl_doc.problem(path, msg) if tl_doc else Problem(str(tl_path), None, ".".join(map(str, path)), msg)
            ),
        )
    if problems:
        raise InputError(problems)
    named: dict[str, list[str]] = {}
    for cp in programs.values():
        for g in group_names(cp.spec.exclusive_group):
            named.setdefault(g, []).append(cp.id)
    groups_path = root / GROUPS_FILE
    groups = load_groups(groups_path, named)
    extra = [f for f in (tl_path, groups_path) if f.exists()]
    return Catalogue(programs, geo, files + extra, timeline, groups)


def load_program_file(path: Path | str, geo: Geography) -> list[CompiledProgram]:
    """Validate one program file; all its problems are reported together."""
    doc = YamlDoc(path)
    if not isinstance(doc.data, dict):
        raise InputError([doc.problem((), "a program file is a mapping with 'document' and 'programs'")])
    try:
        pf = ProgramFile.model_validate(doc.data)
    except ValidationError as e:
        raise InputError(doc.problems_from(e, (), None, doc.data)) from None
    out, problems = [], []
    for i, raw in enumerate(pf.programs):
        pid = raw.get("id") if isinstance(raw, dict) else None
        merged = {k: getattr(pf.document, k) for k in INHERITED} | raw
        try:
            prog = Program.model_validate(merged)
        except ValidationError as e:
            problems += doc.problems_from(e, ("programs", i), pid, raw)
            continue
        found = check_program(
            prog, geo, lambda path, msg, i=i, pid=prog.id: doc.problem(("programs", i) + path, msg, pid)
        )
        if found:
            problems += found
            continue
        out.append(CompiledProgram(prog, pf.document, str(path), geo.resolve(prog.applies_in)))
    if problems:
        raise InputError(problems)
    return out


def check_program(prog: Program, geo: Geography, problem) -> list[Problem]:
    """Cross-field checks pydantic cannot do alone: references, tables, units, places, regimes."""
    out: list[Problem] = []
    inputs = prog.inputs
    try:
        cny_per(prog.unit)
    except ValueError as e:
        out.append(problem(("unit",), str(e)))
    for name, spec in inputs.items():
        if spec.type == "money" and spec.unit:
            try:
                cny_per(spec.unit)
            except ValueError as e:
                out.append(problem(("inputs", name, "unit"), str(e)))

    def check_table(path: tuple, p: Any) -> None:
        if not isinstance(p, ByInput):
            return
        spec = inputs.get(p.by)
        if spec is None or spec.type != "category":
            out.append(problem(path + ("by",), f"{p.by!r} is not a declared category input"))
            return
        missing = [c for c in spec.values if c not in p.values]  # type: ignore[union-attr]
        extra = [c for c in p.values if c not in spec.values]  # type: ignore[operator]
        if missing:
            out.append(problem(path, f"table has no value for {p.by} {missing} (declared values {spec.values})"))
        if extra:
            out.append(problem(path, f"table has values for undeclared {p.by} {extra} (declared values {spec.values})"))

    expected_types = {
        "money": {"money"},
        "category": {"category"},
        "number": {"number", "money", "share"},
        "share": {"share"},
    }
    if prog.formula is not None:
        for path, node in prog.formula.walk(("formula",)):
            for fname, p, _ in node.params():
                check_table(path + (fname,), p)
            for name, want in node.input_refs():
                spec = inputs.get(name)
                if spec is None:
                    out.append(problem(path, f"uses input {name!r}, which is not declared under inputs"))
                elif spec.type not in expected_types[want]:
                    out.append(problem(path, f"input {name!r} is {spec.type}, expected {want}"))
            if getattr(node, "kind", None) == "choice":
                check_table(path + ("options",), ByInput(by=node.by, values={k: 0 for k in node.options}))
            cond = getattr(node, "when", None)
            if cond is not None and cond.is_in is not None:
                spec = inputs.get(cond.input)
                undeclared = [c for c in cond.is_in if spec is not None and spec.values and c not in spec.values]
                if undeclared:
                    out.append(
                        problem(
                            path + ("when", "in"),
                            f"{cond.input} {undeclared} are not declared values (declared values {spec.values})",
                        )
                    )
    sched = prog.schedule
    stack = [(("schedule",), sched)]
    while stack:
        path, s = stack.pop()
        if isinstance(s, ScheduleChoice):
            check_table(path + ("options",), ByInput(by=s.by, values={k: 0 for k in s.options}))
            stack += [(path + ("options", k), v) for k, v in s.options.items()]
        elif getattr(s, "years", None) is not None:
            check_table(path + ("years",), s.years)
    try:
        places = geo.resolve(prog.applies_in)
    except KeyError as e:
        out.append(
            problem(
                ("applies_in",), f"unknown jurisdiction or group {e.args[0]!r} (known: {', '.join(geo.jurisdictions)})"
            )
        )
        places = []
    if prog.cost_sharing not in geo.data.cost_sharing:
        out.append(
            problem(
                ("cost_sharing",),
                f"unknown cost-sharing regime {prog.cost_sharing!r} (known: {', '.join(geo.data.cost_sharing)})",
            )
        )
    if prog.uptake is not None:
        out += check_uptake(prog, places, geo, problem)
    return out


def check_uptake(prog: Program, places: list[str], geo: Geography, problem) -> list[Problem]:
    out: list[Problem] = []
    up = prog.uptake
    assert up is not None
    if isinstance(up.allocation, str) and up.allocation not in geo.data.allocation_weights:
        out.append(
            problem(
                ("uptake", "allocation"),
                f"unknown allocation weights {up.allocation!r} (known: {', '.join(geo.data.allocation_weights)})",
            )
        )
    explicit = up.allocation if isinstance(up.allocation, dict) else None
    for key, table in (("allocation", explicit), ("by_jurisdiction", up.count.by_jurisdiction)):
        for j in table or {}:
            if j not in places:
                where = ("uptake", key, j) if key == "allocation" else ("uptake", "count", key, j)
                out.append(problem(where, f"jurisdiction {j!r} is not where the program applies ({', '.join(places)})"))
    for name, dist in up.inputs.items():
        spec = prog.inputs.get(name)
        if spec is None:
            out.append(problem(("uptake", "inputs", name), f"no input {name!r} is declared under inputs"))
            continue
        if dist.dist == "categorical":
            if spec.type != "category":
                out.append(problem(("uptake", "inputs", name), f"input {name!r} is {spec.type}, not category"))
            else:
                bad = [c for c in dist.probs if c not in spec.values]  # type: ignore[operator]
                if bad:
                    out.append(
                        problem(
                            ("uptake", "inputs", name, "probs"), f"unknown {name} values {bad} (declared {spec.values})"
                        )
                    )
        elif spec.type == "category":
            out.append(problem(("uptake", "inputs", name), f"input {name!r} is a category: use dist: categorical"))
    if prog.status != "unpriced":
        for name, spec in prog.inputs.items():
            if name not in up.inputs and spec.default is None:
                out.append(problem(("uptake", "inputs"), f"no distribution for input {name!r} (and it has no default)"))
    return out


def recompile(prog: CompiledProgram, data: dict[str, Any], geo: Geography, problem) -> CompiledProgram | None:
    """``prog`` with its spec replaced by ``data`` (a changed dump), validated like a program file.

    ``problem(path, message)`` is called for every problem; the result is then None.
    """
    try:
        spec = Program.model_validate(data)
    except ValidationError as e:
        seen = set()
        named = {n: Parameter(**{**p, "value": 0.0}) for n, p in (data.get("parameters") or {}).items()}
        for err in e.errors():  # one message per field: a union's other members add only noise
            loc = _real_path(err["loc"], data)
            held = name_at(named, ".".join(map(str, loc)))
            if held is not None or (loc and loc[0] == "parameters"):  # said once, where the user names it
                name, key = held if held is not None else (str(loc[1]) if len(loc) > 1 else "", None)
                loc = ("parameters", name) + ((key,) if key else ())
            if loc not in seen:
                seen.add(loc)
                problem(tuple(str(x) for x in loc), err["msg"].replace("Value error, ", ""))
        return None
    found = check_program(spec, geo, lambda path, msg: Problem("", prog.id, ".".join(map(str, path)), msg))
    for p in found:
        problem((p.field,), p.message)
    return (
        None
        if found
        else CompiledProgram(spec, prog.document, prog.file, geo.resolve(spec.applies_in), list(prog.timeline_notes))
    )
