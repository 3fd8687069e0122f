"""Scenario files for the workbench: the repo's (read-only) and the workspace's own, and the edit form.

A form is saved as an ordinary scenario file that ``extends`` the one it came from, so the CLI runs it too. It
is validated by the same code as the CLI (:func:`fiscal_sim.scenario.load_scenario`, the sweep's ``--set``
grammar) before anything is written; problems come back keyed by form field.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fiscal_sim.errors import FiscalSimError, InputError

NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SOURCES = ("repo", "ws")
RENEW_DOC = "嘉政办发〔2024〕7号"
MAX_BUDGET_LINES = 12


class NotFound(FiscalSimError):
    """No such scenario (or a name that could never be one)."""


def repo_scenarios() -> Path:
    """The repository's scenarios/ folder (next to the package in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "scenarios"


@dataclass
class Library:
    """Where scenario files live: ``repo`` (read-only) and ``ws`` (the workspace's scenarios/)."""

    repo: Path
    ws: Path

    def root(self, src: str) -> Path:
        if src not in SOURCES:
            raise NotFound(f"no scenario source {src!r}")
        return self.repo if src == "repo" else self.ws

    def path(self, src: str, name: str) -> Path:
        """The file of scenario ``name`` in ``src``; refuses any name that is not a plain file name inside it."""
        root = self.root(src).resolve()
        if not NAME.match(name):
            raise NotFound(f"not a scenario name: {name!r}")
        p = (root / f"{name}.yaml").resolve()
        if not p.is_relative_to(root) or not p.is_file():
            raise NotFound(f"no scenario {src}/{name}")
        return p

    def list(self) -> list[dict[str, str]]:
        out = []
        for src in SOURCES:
            root = self.root(src)
            for p in sorted(root.glob("*.yaml")) if root.is_dir() else []:
                if NAME.match(p.stem):
                    out.append({"src": src, "name": p.stem, "description": _description(p)})
        return out


def _description(p: Path) -> str:
    try:
        from fiscal_sim.scenario import merge_extends
        from fiscal_sim.yamlfile import YamlDoc

        data, _ = merge_extends(YamlDoc(p))
        return str((data.get("scenario") or {}).get("description", ""))
    except Exception:  # a broken file still lists; opening it shows the problem
        return ""


def merged(path: Path) -> dict[str, Any]:
    """The scenario block with its ``extends`` chain merged in (what the form starts from)."""
    from fiscal_sim.scenario import merge_extends
    from fiscal_sim.yamlfile import YamlDoc

    data, _ = merge_extends(YamlDoc(path))
    return dict(data.get("scenario") or {})


@dataclass
class Form:
    """The edit form's values (strings as typed) and its problems by field."""

    name: str = ""
    description: str = ""
    budgets: list[dict[str, str]] = field(default_factory=list)
    renew: bool = False
    sets: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_scenario(cls, sc: dict[str, Any], name: str) -> "Form":
        budgets = [
            {"payer": str(b.get("payer", "")), "program": str(b.get("program", "ALL")), "amount": _amount_wan(b)}
            for b in sc.get("budgets") or []
        ]
        mode = ((sc.get("timeline") or {}).get("after_expiry") or {}).get(RENEW_DOC)
        renew = (mode.get("mode") if isinstance(mode, dict) else mode) == "renew"
        return cls(name=name, description=str(sc.get("description", "")), budgets=budgets, renew=renew)

    @classmethod
    def from_post(cls, data: Any) -> "Form":
        budgets = []
        for i in range(MAX_BUDGET_LINES):
            payer = str(data.get(f"budgets.{i}.payer", "")).strip()
            amount = str(data.get(f"budgets.{i}.amount", "")).strip()
            if payer or amount:
                budgets.append(
                    {
                        "payer": payer,
                        "program": str(data.get(f"budgets.{i}.program", "ALL")).strip() or "ALL",
                        "amount": amount,
                    }
                )
        return cls(
            name=str(data.get("name", "")).strip(),
            description=str(data.get("description", "")).strip(),
            budgets=budgets,
            renew=data.get("renew") == "on",
            sets=str(data.get("sets", "")),
        )


def own_sets(path: Path) -> str:
    """A workspace file's own ``overrides`` as ``--set`` lines (so an edit keeps them)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    overrides = (data.get("scenario") or {}).get("overrides") or {}
    return "\n".join(f"programs.{pid}.{k}={v}" for pid, paths in overrides.items() for k, v in (paths or {}).items())


def _amount_wan(b: dict[str, Any]) -> str:
    unit, amount = b.get("unit", "万元"), b.get("amount", "")
    if unit == "万元" or amount == "":
        return str(amount)
    from fiscal_sim.units import cny_per

    return f"{float(amount) * cny_per(unit) / 1e4:g}"


def _number(text: str) -> Any:
    """A typed amount as a number, or the text itself so validation names the field."""
    try:
        return int(text) if re.fullmatch(r"-?\d+", text) else float(text)
    except ValueError:
        return text


def _document(form: Form, parent: Path, target: Path, base: dict[str, Any]) -> dict[str, Any]:
    """The scenario file a form saves: it ``extends`` ``parent`` and states what the form sets."""
    inside = parent.resolve().is_relative_to(target.parent.resolve())
    rel = os.path.relpath(parent, target.parent) if inside else str(parent.resolve())
    timeline = dict(base.get("timeline") or {})
    timeline["after_expiry"] = {**(timeline.get("after_expiry") or {}), RENEW_DOC: "renew" if form.renew else "lapse"}
    budgets = []
    for b in form.budgets:
        old = next(
            (
                o
                for o in base.get("budgets") or []
                if o.get("payer") == b["payer"] and o.get("program", "ALL") == b["program"]
            ),
            {},
        )
        budgets.append(
            {
                **{k: v for k, v in old.items() if k in ("year", "measure")},
                "payer": b["payer"],
                "program": b["program"],
                "amount": _number(b["amount"]),
                "unit": "万元",
            }
        )
    sc: dict[str, Any] = {
        "extends": rel,
        "name": form.name,
        "description": form.description,
        "budgets": budgets,
        "timeline": timeline,
    }
    return {"scenario": sc}


def _field_of(problem_field: str, form: Form) -> str:
    """A problem's field path (``scenario.budgets.0.amount``) as the form field it belongs to."""
    f = re.sub(r"\[(\d+)\]", r".\1", problem_field).removeprefix("scenario.")
    if f.startswith("budgets."):
        parts = f.split(".")
        if len(parts) >= 3 and parts[2] in ("payer", "program", "amount"):
            return ".".join(parts[:3])
        return ".".join(parts[:2]) + ".amount" if len(parts) >= 2 else "budgets"
    if f.startswith("timeline"):
        return "renew"
    if f in ("name", "description"):
        return f
    return "_"


def save(lib: Library, form: Form, parent: Path, *, overwrite: bool) -> Path | None:
    """Validate ``form`` and write ``<ws>/<name>.yaml``; on problems fill ``form.errors`` and write nothing."""
    from fiscal_sim.analysis.sweep import SweepError, parse_assignment, parse_target, plan
    from fiscal_sim.scenario import load_scenario

    if not NAME.match(form.name):
        form.errors["name"] = "letters, digits, _ and - only (1–64), e.g. renew_2027_city_3yi"
        return None
    lib.ws.mkdir(parents=True, exist_ok=True)
    target = (lib.ws / f"{form.name}.yaml").resolve()
    if not target.is_relative_to(lib.ws.resolve()):
        form.errors["name"] = "not a file name in the workspace"
        return None
    if target.exists() and not overwrite:
        form.errors["name"] = f"a scenario named {form.name} exists already in the workspace; choose another name"
        return None
    base = merged(parent)
    doc = _document(form, parent, target, base)
    sets = [s.strip() for s in form.sets.splitlines() if s.strip()]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{form.name}-", suffix=".yaml", dir=lib.ws)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f, allow_unicode=True, sort_keys=False)
        scen = load_scenario(tmp)
        if sets:
            p = plan(scen, sets, [])
            if len(p.points) != 1:
                raise SweepError("one value per line here (a sweep takes several: see the sweep page)")
            for s in sets:
                t = parse_target(scen, parse_assignment(s, "--set")[0])
                if t.kind != "program":
                    raise SweepError(f"{s}: only programs.ID.PATH=VALUE amounts are set here")
            for t, v in zip(p.targets, p.points[0]):
                doc["scenario"].setdefault("overrides", {}).setdefault(t.program, {})[t.path] = v
            tmp.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
            load_scenario(tmp)
        os.replace(tmp, target)
        return target
    except InputError as e:
        for pr in e.problems:
            key = _field_of(pr.field, form)
            form.errors[key] = (form.errors.get(key, "") + " " + pr.message).strip()
        return None
    except FiscalSimError as e:
        form.errors["sets"] = str(e).replace(str(tmp), f"{form.name}.yaml")
        return None
    finally:
        tmp.unlink(missing_ok=True)
