"""The scenario edit form: what a planner can change, read from the compiled scenario and saved as an
``extends`` overlay that states only what differs from the scenario it came from.

Fields: name, description, budget lines; the policy timeline (each fixed-term document lapses or renews, each
open-ended document in force or superseded from a date, each program family's mode, the default payment lag);
non-cumulation overlap shares; per program its count (mean and parameter uncertainty ``rate_cv``) and named
parameters; free ``--set`` lines. Everything is checked by the same code as the CLI (:func:`fiscal_sim.api.load`,
:func:`fiscal_sim.api.assignments`) before anything is written; problems come back keyed by form field.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fiscal_sim.errors import FiscalSimError, InputError
from fiscal_sim.web.scenarios import NAME, Library

MAX_BUDGET_LINES = 12
EXPIRY_MODES = ("lapse", "renew")
FAMILY_MODES = ("stack", "successor_replaces", "highest_only")
LAGS = ("0", "1", "2", "3")


def _num(v: Any) -> str:
    return "" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


@dataclass
class ProgramRow:
    """One program's editable values (strings as shown) and what it is."""

    id: str
    title: str
    document: str
    basis: str
    count: str = ""
    rate_cv: str = ""
    params: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)


@dataclass
class Form:
    """The edit form's values (strings as typed) and its problems by field."""

    name: str = ""
    description: str = ""
    budgets: list[dict[str, str]] = field(default_factory=list)
    expiry: dict[str, str] = field(default_factory=dict)
    validity: dict[str, str] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)
    lag: str = ""
    overlap: dict[str, str] = field(default_factory=dict)
    programs: list[ProgramRow] = field(default_factory=list)
    sets: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_scenario(cls, scen: Any, name: str) -> "Form":
        """The form of a compiled scenario: every value as the scenario runs it."""
        sp = scen.spec
        budgets = [
            {"payer": b.payer, "program": b.program, "amount": _amount_wan(b.amount, b.unit)} for b in sp.budgets
        ]
        f = cls(name=name, description=sp.description, budgets=budgets)
        fixed = sorted({p.document.number for p in scen.catalogue.programs.values() if p.document.in_force.to})
        f.expiry = {d: "lapse" for d in fixed}
        for a in scen.assumptions:
            if a.kind == "after_expiry":
                f.expiry[a.subject] = "renew" if a.setting.startswith("renew") else "lapse"
            elif a.kind == "validity":
                m = re.search(r"\d{4}-\d{2}-\d{2}", a.setting)
                f.validity[a.subject] = m.group(0) if a.setting.startswith("superseded") and m else ""
            elif a.kind == "family":
                f.families[a.subject] = a.setting.split(":")[0]
            elif a.kind == "timing" and a.subject == "default":
                f.lag = (re.search(r"lag (\d+)", a.setting) or [None, "1"])[1]
        f.overlap = {g.name: _num(g.overlap) for g in scen.groups}
        for s in scen.programs:
            spec = s.prog.spec
            count = spec.uptake.count
            row = ProgramRow(s.id, spec.title_zh, s.prog.document.number, spec.uptake.basis)
            row.count, row.rate_cv = _num(count.mean), _num(count.rate_cv)
            for pname, par in (spec.parameters or {}).items():
                if not isinstance(par.value, dict):
                    row.params[pname], row.units[pname] = _num(par.value), par.unit
            f.programs.append(row)
        return f

    def structured(self) -> dict[str, str]:
        """The ``--set`` line each structured field stands for, keyed by its form field name."""
        out = {f"overlap.{g}": f"overlap.{g}={v}" for g, v in self.overlap.items()}
        for r in self.programs:
            out[f"p.{r.id}.count"] = f"uptake.{r.id}.mean={r.count}"
            out[f"p.{r.id}.rate_cv"] = f"uptake.{r.id}.rate_cv={r.rate_cv}"
            out |= {f"p.{r.id}.param.{k}": f"programs.{r.id}.parameters.{k}={v}" for k, v in r.params.items()}
        return out

    def read_post(self, data: Any) -> None:
        """Take the posted values over this form's layout (the fields the page showed)."""
        self.name = str(data.get("name", "")).strip()
        self.description = str(data.get("description", "")).strip()
        self.budgets = []
        for i in range(MAX_BUDGET_LINES):
            payer = str(data.get(f"budgets.{i}.payer", "")).strip()
            amount = str(data.get(f"budgets.{i}.amount", "")).strip()
            if payer or amount:
                prog = str(data.get(f"budgets.{i}.program", "ALL")).strip() or "ALL"
                self.budgets.append({"payer": payer, "program": prog, "amount": amount})
        self.expiry = {d: str(data.get(f"expiry.{d}", m)) for d, m in self.expiry.items()}
        self.validity = {d: str(data.get(f"validity.{d}", v)).strip() for d, v in self.validity.items()}
        self.families = {k: str(data.get(f"family.{k}", m)) for k, m in self.families.items()}
        self.lag = str(data.get("lag", self.lag)).strip()
        self.overlap = {g: str(data.get(f"overlap.{g}", v)).strip() for g, v in self.overlap.items()}
        for r in self.programs:
            r.count = str(data.get(f"p.{r.id}.count", r.count)).strip()
            r.rate_cv = str(data.get(f"p.{r.id}.rate_cv", r.rate_cv)).strip()
            r.params = {k: str(data.get(f"p.{r.id}.param.{k}", v)).strip() for k, v in r.params.items()}
        self.sets = str(data.get("sets", ""))


def _amount_wan(amount: Any, unit: str) -> str:
    from fiscal_sim.units import cny_per

    return _num(amount) if unit == "万元" else f"{float(amount) * cny_per(unit) / 1e4:g}"


def _number(text: str) -> Any:
    """A typed amount as a number, or the text itself so validation names the field."""
    try:
        return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
    except ValueError:
        return text


def own_sets(path: Path, covered: set[str]) -> str:
    """A workspace file's own ``overrides`` the structured fields do not show, as ``--set`` lines."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    overrides = (data.get("scenario") or {}).get("overrides") or {}
    lines = []
    for pid, paths in overrides.items():
        for k, v in (paths or {}).items():
            shown = k in ("uptake.count.mean", "uptake.count.rate_cv") or f"{pid}:{k}" in covered
            if not shown:
                lines.append(f"programs.{pid}.{k}={v}")
    return "\n".join(lines)


def _choices(
    key: str, field: str, mine: dict[str, str], base: dict[str, str], allowed: tuple[str, ...], tl: dict, errors: dict
) -> None:
    """The choices of ``mine`` that differ from ``base`` into ``tl[key]``; one outside ``allowed`` is a problem."""
    changed = {k: m for k, m in mine.items() if m != base.get(k)}
    for k, m in changed.items():
        if m not in allowed:
            errors[f"{field}.{k}"] = f"one of {', '.join(allowed)}"
    if changed:
        tl[key] = changed


def _timeline(form: Form, base: Form) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``timeline:`` block of what differs from ``base``, and problems by field."""
    tl: dict[str, Any] = {}
    errors: dict[str, str] = {}
    _choices("after_expiry", "expiry", form.expiry, base.expiry, EXPIRY_MODES, tl, errors)
    validity = {}
    for d, v in form.validity.items():
        if v == base.validity.get(d):
            continue
        if not v:
            validity[d] = {"status": "in_force"}
            continue
        try:
            validity[d] = {"status": "superseded", "from": dt.date.fromisoformat(v).isoformat()}
        except ValueError:
            errors[f"validity.{d}"] = "a date YYYY-MM-DD (no new awards from that day), or empty: in force"
    if validity:
        tl["validity"] = validity
    _choices("families", "family", form.families, base.families, FAMILY_MODES, tl, errors)
    if form.lag != base.lag:
        if form.lag not in LAGS:
            errors["lag"] = f"whole years from 0 to {LAGS[-1]}"
        else:
            tl["timing"] = {"default": {"lag": int(form.lag)}}
    return tl, errors


def _document(form: Form, base: Form, scen: Any, parent: Path, target: Path, lines: list[Any]) -> dict[str, Any]:
    """The scenario file a form saves: it ``extends`` ``parent`` and states what the form changes."""
    inside = parent.resolve().is_relative_to(target.parent.resolve())
    rel = os.path.relpath(parent, target.parent) if inside else str(parent.resolve())
    sc: dict[str, Any] = {"extends": rel, "name": form.name, "description": form.description}
    sc["budgets"] = [
        {"payer": b["payer"], "program": b["program"], "amount": _number(b["amount"]), "unit": "万元"}
        for b in form.budgets
    ]
    tl, _ = _timeline(form, base)
    if tl:  # the file's timeline replaces its base's: the base's entries are kept, the changed ones replaced
        inherited = (
            scen.spec.timeline.model_dump(by_alias=True, mode="json", exclude_defaults=True)
            if scen.spec.timeline
            else {}
        )
        sc["timeline"] = {k: {**(inherited.get(k) or {}), **tl.get(k, {})} for k in dict.fromkeys([*inherited, *tl])}
    if "after_expiry" in tl or "validity" in tl:  # no longer the base's one rule for every document
        sc["policy_basis"] = None
    for a in lines:
        if a.kind == "program" and a.since is not None:
            dated = sc.setdefault("dated_overrides", {}).setdefault(a.since.isoformat(), {})
            dated.setdefault(a.program, {})[a.path] = a.value
        elif a.kind == "program":
            sc.setdefault("overrides", {}).setdefault(a.program, {})[a.path] = a.value
        elif a.kind == "overlap":
            sc.setdefault("overlap", {})[a.path] = a.value
        elif a.kind == "shock":
            sc.setdefault("shock", {})[a.path] = a.value
        elif a.kind == "cost_sharing":
            regime, cls, payer = a.path.split(".")
            sc.setdefault("cost_sharing", {}).setdefault(regime, {}).setdefault(cls, {})[payer] = a.value
    return {"scenario": sc}


def _field_of(problem_field: str) -> str:
    """A problem's field path (``scenario.budgets.0.amount``) as the form field it belongs to."""
    f = re.sub(r"\[(\d+)\]", r".\1", problem_field).removeprefix("scenario.")
    if f.startswith("budgets."):
        parts = f.split(".")
        if len(parts) >= 3 and parts[2] in ("payer", "program", "amount"):
            return ".".join(parts[:3])
        return ".".join(parts[:2]) + ".amount" if len(parts) >= 2 else "budgets"
    if f.startswith("timeline"):
        return "timeline"
    if f in ("name", "description"):
        return f
    return "_"


def _lines(form: Form, base: Form, scen: Any) -> list[Any]:
    """The changed structured fields and the free lines, checked one by one (problems keyed by field)."""
    from fiscal_sim import api

    want = form.structured()
    have = base.structured()
    chosen = [(k, line) for k, line in want.items() if line != have.get(k)]
    chosen += [("sets", s.strip()) for s in form.sets.splitlines() if s.strip()]
    out = []
    for key, line in chosen:
        if line.endswith("="):
            form.errors[key] = "a number is needed (the scenario's value was cleared)"
            continue
        try:
            a = api.assignments(scen, [line])[0]
        except FiscalSimError as e:
            form.errors[key] = (form.errors.get(key, "") + " " + str(e)).strip()
            continue
        if a.kind == "budget":
            form.errors[key] = "budget lines go in the budget table above"
            continue
        out.append(a)
    return out


def save(lib: Library, form: Form, base: Form, scen: Any, parent: Path, *, overwrite: bool) -> Path | None:
    """Validate ``form`` against ``base`` (the form of ``parent``, compiled as ``scen``) and write
    ``<ws>/<name>.yaml``; on problems fill ``form.errors`` and write nothing."""
    from fiscal_sim import api

    if not NAME.match(form.name):
        form.errors["name"] = "letters, digits, _ and - only (1–64), e.g. renew_2027_city_3yi"
        return None
    lib.ws.mkdir(parents=True, exist_ok=True)
    target = (lib.ws / f"{form.name}.yaml").resolve()
    if target.exists() and not overwrite:
        form.errors["name"] = f"a scenario named {form.name} exists already in the workspace; choose another name"
        return None
    _, terrors = _timeline(form, base)
    form.errors.update(terrors)
    lines = _lines(form, base, scen)
    doc = _document(form, base, scen, parent, target, lines)  # checked whole even when a field is wrong already,
    fd, tmp_name = tempfile.mkstemp(prefix=f".{form.name}-", suffix=".yaml", dir=lib.ws)  # so every problem shows
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f, allow_unicode=True, sort_keys=False)
        api.load(tmp)
    except InputError as e:
        for pr in e.problems:
            key = _field_of(pr.field)
            form.errors[key] = (form.errors.get(key, "") + " " + pr.message).strip()
    except FiscalSimError as e:
        form.errors["_"] = str(e).replace(str(tmp), f"{form.name}.yaml")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if form.errors:
        tmp.unlink(missing_ok=True)
        return None
    os.replace(tmp, target)
    return target
