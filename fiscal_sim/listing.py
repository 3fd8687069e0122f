"""Filters of ``programs list``: documents by 文号 (any bracket style) or short id, places by id or Chinese name.

A filter that matches nothing is an error that says what was asked, what exists, and the closest names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

from fiscal_sim.errors import FiscalSimError

STATUSES = ("priced", "unpriced", "equity")
# 〔2024〕, [2024], (2024), （2024）, 【2024】, ［2024］ all mean the same year bracket of a 文号
_BRACKETS = str.maketrans({c: "(" for c in "〔[（【［〖"} | {c: ")" for c in "〕]）】］〗"})


class NoMatch(FiscalSimError):
    """A filter that matches nothing."""


def norm_number(text: str) -> str:
    """A 文号 for comparison: one bracket style, no spaces, ``号`` optional, case-folded."""
    return re.sub(r"\s+", "", text.translate(_BRACKETS)).removesuffix("号").casefold()


def short_id(program_id: str) -> str:
    """The document's short id: the part of a program id before its first dot (``jzbf2024-7``)."""
    return program_id.split(".", 1)[0]


def suggest(value: str, choices: list[str], n: int = 3) -> str:
    close = difflib.get_close_matches(value, choices, n=n, cutoff=0.4)
    return f"; did you mean {', '.join(close)}?" if close else ""


@dataclass
class Filters:
    document: str | None = None
    kind: str | None = None
    status: str | None = None
    jurisdiction: str | None = None


def resolve_jurisdiction(text: str, jurisdictions: dict[str, Any]) -> str:
    """A jurisdiction id from its id, Chinese name (南湖区) or English name (case-insensitive)."""
    if text in jurisdictions:
        return text
    for jid, j in jurisdictions.items():
        if text in (j.name_zh,) or text.casefold() == j.name_en.casefold():
            return jid
    names = list(jurisdictions) + [j.name_zh for j in jurisdictions.values()]
    raise NoMatch(
        f"--jurisdiction {text}: no such jurisdiction (ids: {', '.join(jurisdictions)}){suggest(text, names)}"
    )


def select(programs: list[Any], f: Filters, jurisdictions: dict[str, Any]) -> list[tuple[Any, list[str]]]:
    """Programs (with their formula kinds) that pass every filter; :class:`NoMatch` when none does."""
    if f.status and f.status not in STATUSES:
        raise NoMatch(f"--status {f.status}: expected one of {', '.join(STATUSES)}{suggest(f.status, list(STATUSES))}")
    place = resolve_jurisdiction(f.jurisdiction, jurisdictions) if f.jurisdiction else None
    doc = norm_number(f.document) if f.document else None
    rows = []
    for p in programs:
        kinds = sorted({n.kind for _, n in p.spec.formula.walk()}) if p.spec.formula else []
        if doc and doc not in norm_number(p.document.number) and doc != short_id(p.id).casefold():
            continue
        if f.kind and f.kind not in kinds:
            continue
        if f.status and p.spec.status != f.status:
            continue
        if place and place not in p.jurisdictions:
            continue
        rows.append((p, kinds))
    if rows:
        return rows
    asked = ", ".join(f"--{k} {v}" for k, v in vars(f).items() if v)
    hints = ""
    if f.document:
        docs = sorted({p.document.number for p in programs} | {short_id(p.id) for p in programs})
        hints = suggest(f.document, docs) or f" (documents: {', '.join(sorted({short_id(p.id) for p in programs}))})"
    elif f.kind:
        kinds_all = sorted({n.kind for p in programs if p.spec.formula for _, n in p.spec.formula.walk()})
        hints = suggest(f.kind, kinds_all) or f" (formula kinds: {', '.join(kinds_all)})"
    raise NoMatch(f"no program matches {asked}{hints}")


def timeline_lines(cat: Any, p: Any) -> list[str]:
    """The baseline policy timeline as it applies to program ``p``: every assumption with its basis."""
    from fiscal_sim.catalogue.timeline import resolve

    changes, assumptions = resolve(cat.programs, cat.timeline)
    fams = {fid for fid, f in cat.timeline.families.items() if p.id in f.predecessors + f.successors}
    mine = [
        a
        for a in assumptions
        if (a.kind in ("validity", "after_expiry") and a.subject == p.document.number)
        or (a.kind == "family" and a.subject in fams)
        or (a.kind == "after_expiry" and a.subject in fams)
    ]
    t = cat.timeline.timing
    src = p.id if p.id in t.programs else p.document.number if p.document.number in t.documents else "default"
    mine += [a for a in assumptions if a.kind == "timing" and a.subject == src]
    lines = ["  timeline (catalogue/timeline.yaml; a scenario's timeline: block changes any of these):"]
    lines += [f"    - {a.line()}" for a in mine]
    if not any(a.kind == "validity" for a in mine) and p.spec.in_force.to is None:
        lines.append(f"    - validity {p.document.number}: open-ended, no validity assumption recorded")
    lines += [f"    → {n}" for n in (changes.get(p.id) or {}).get("notes", [])]
    up = p.spec.uptake
    if up is not None and up.basis == "target":
        lines.append(
            f"  uptake basis: target{f' to {up.target_until}, assumption (carried forward) after' if up.target_until else ''}"
        )
    return lines
