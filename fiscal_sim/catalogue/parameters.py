"""Named parameters: a program's amounts, rates, caps and thresholds by name, each with its unit and clause.

A program file lists them under ``parameters:`` and its formula (and aggregate caps) refer to them as ``$name``::

    parameters:
      cap: {value: 500, unit: 万元, clause: 每年最高给予 500 万元补助}
    formula: {kind: up_to, max: $cap, clause: 每年最高给予 500 万元补助}

Loading replaces each reference by the value and records where it stood (``at``), so overrides, reforms, timeline
renewals and sweeps address ``programs.ID.parameters.NAME`` (``…NAME.KEY`` for one entry of a table) whatever
the shape of the formula; a place in the tree (``formula.max``) is refused with the name to use instead.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

from pydantic import Field

from fiscal_sim.rules.formula import Strict

REF = "$"
PLACES = ("formula", "caps")
"""the parts of a program that may refer to parameters"""


class Parameter(Strict):
    """One named amount, rate, cap or threshold (a number, or a table by category)."""

    value: float | dict[str, float]
    unit: str = Field(min_length=1, description="万元, 元, share, ratio, factor, years, count …")
    clause: str = Field(min_length=2, description="the words of the document that state it")
    note: str | None = None
    at: list[str] = Field(default=[], description="where the formula refers to it (filled in when loading)")


def _refs(obj: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], str]]:
    if isinstance(obj, str) and obj.startswith(REF):
        return [(path, obj[len(REF) :])]
    if isinstance(obj, dict):
        return [r for k, v in obj.items() for r in _refs(v, path + (str(k),))]
    if isinstance(obj, list):
        return [r for i, v in enumerate(obj) for r in _refs(v, path + (str(i),))]
    return []


def _set(obj: Any, path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[int(key)] if isinstance(obj, list) else obj[key]
    last = path[-1]
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


def resolve(data: Any) -> Any:
    """A program's raw data with every ``$name`` replaced by its parameter's value and each parameter's ``at``
    filled in. Raises ValueError for a reference to no parameter, or a parameter no formula refers to."""
    if not isinstance(data, dict):
        return data
    refs = [r for place in PLACES if place in data for r in _refs(data[place], (place,))]
    params = data.get("parameters") or {}
    if not refs:
        return data
    if not isinstance(params, dict):
        raise ValueError("parameters: a mapping of name → {value, unit, clause}")
    unknown = sorted({name for _, name in refs if name not in params})
    if unknown:
        hints = [
            f"{REF}{u}"
            + (
                f" (did you mean {', '.join(difflib.get_close_matches(u, params, 2))}?)"
                if difflib.get_close_matches(u, params, 2)
                else ""
            )
            for u in unknown
        ]
        raise ValueError(f"{', '.join(hints)}: no such parameter (parameters: {', '.join(params) or 'none'})")
    unused = [name for name in params if name not in {n for _, n in refs}]
    if unused:
        raise ValueError(f"parameter(s) {', '.join(unused)} are named but no formula refers to them ({REF}name)")
    out = copy.deepcopy(data)
    for path, name in refs:
        p = out["parameters"][name]
        if not isinstance(p, dict) or "value" not in p:
            raise ValueError(f"parameters.{name}: expected {{value, unit, clause}}")
        _set(out, path, copy.deepcopy(p["value"]))
    for name in params:
        out["parameters"][name]["at"] = [".".join(path) for path, n in refs if n == name]
    return out


def name_at(parameters: dict[str, Parameter], path: str) -> tuple[str, str | None] | None:
    """The parameter (and table key) a place in the tree holds: ``formula.max`` → ``("cap", None)``,
    ``formula.amounts.national`` → ``("amounts", "national")``; None when no parameter is there."""
    for name, p in parameters.items():
        for at in p.at:
            if path == at:
                return name, None
            if path.startswith(at + ".") and isinstance(p.value, dict):
                return name, path[len(at) + 1 :]
            if at.startswith(path + "."):  # a branch above a parameter: still a place, not a name
                return name, None
    return None


def override(raw: dict[str, Any], name: str, key: str | None, value: Any) -> str | None:
    """Set parameter ``name`` (entry ``key`` of a table) to ``value`` in a program's dumped data, at every place
    the formula refers to it; returns a problem message, or None."""
    params = raw.get("parameters") or {}
    if name not in params:
        close = difflib.get_close_matches(name, params, 3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"no parameter {name!r} (parameters: {', '.join(params) or 'none'}){hint}"
    p = params[name]
    if key is not None:
        if not isinstance(p["value"], dict) or key not in p["value"]:
            have = ", ".join(p["value"]) if isinstance(p["value"], dict) else "a number, not a table"
            return f"parameter {name!r} has no entry {key!r} ({have})"
        p["value"][key] = value
        for at in p["at"]:
            _set(raw, tuple(at.split(".")) + (key,), value)
        return None
    if isinstance(p["value"], dict) and not isinstance(value, dict):
        return f"parameter {name!r} is a table by category ({', '.join(p['value'])}): name one, e.g. {name}.{next(iter(p['value']))}"
    p["value"] = value
    for at in p["at"]:
        _set(raw, tuple(at.split(".")), copy.deepcopy(value))
    return None
