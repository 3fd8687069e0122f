"""Non-cumulation groups (从优、从高、不重复 / 就高原则): which programs one applicant cannot stack.

``catalogue/exclusive_groups.yaml`` gives, per group named by programs'
``exclusive_group``, the clause it implements and the *overlap share*: of the
applicants of the group's least-applied-for program, the share who are also
eligible for (and apply to) every other member. Those applicants receive only
the highest award (by total commitment, as ``calc`` pays one applicant). The
share is a labelled assumption unless a document states it; a scenario changes
it with ``overlap: {group: share}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from fiscal_sim.catalogue.schema import group_names
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.rules.formula import Strict
from fiscal_sim.yamlfile import YamlDoc

GROUPS_FILE = "catalogue/exclusive_groups.yaml"
Share = Annotated[float, Field(ge=0, le=1)]


class ExclusiveGroup(Strict):
    """One group: the rule's wording, its source, and the overlap share with its basis."""

    rule: str = Field(min_length=2, description="the non-cumulation wording, e.g. 从优、从高、不重复")
    document: str
    quote: str = Field(min_length=4)
    overlap: Share
    basis: Literal["document", "assumption"]
    note: str = Field(min_length=4, description="why this share")

    @model_validator(mode="after")
    def _document_basis_is_certain(self):
        if self.basis == "document" and self.overlap not in (0.0, 1.0):
            raise ValueError(
                "only a share of 0 or 1 can follow from a document's text; label other shares an assumption"
            )
        return self


class GroupsFile(Strict):
    groups: dict[str, ExclusiveGroup]


def load_groups(path: Path, named: dict[str, list[str]]) -> dict[str, ExclusiveGroup]:
    """Load the groups file; every group a program names needs an entry, and every entry a program.

    ``named`` maps each group to the ids of the programs naming it. A missing
    file is an empty table (a catalogue without non-cumulation groups).
    """
    if not path.exists():
        data = GroupsFile(groups={})
        doc = None
    else:
        doc = YamlDoc(path)
        try:
            data = GroupsFile.model_validate(doc.data)
        except ValidationError as e:
            raise InputError(doc.problems_from(e, (), None, doc.data)) from None
    problems = [
        Problem(
            str(path),
            ", ".join(ids),
            "exclusive_group",
            f"group {g!r} has no entry in {GROUPS_FILE} (its rule, quote and overlap share)",
        )
        for g, ids in named.items()
        if g not in data.groups
    ]
    problems += [
        doc.problem(("groups", g), f"no program names exclusive_group {g!r}")  # type: ignore[union-attr]
        for g in data.groups
        if g not in named
    ]
    if problems:
        raise InputError(problems)
    return data.groups


@dataclass
class SimGroup:
    """A group as the engine applies it: simulated members (scenario order) and the overlap share in force."""

    name: str
    members: list[str]
    overlap: float


FAMILY_PREFIX = "family:"
FAMILY_OVERLAP = 1.0
"""a ``highest_only`` family (:mod:`fiscal_sim.catalogue.timeline`) pays for the same thing under two documents:
while both are in force every applicant is eligible under both"""


def known_groups(groups: dict[str, ExclusiveGroup], families: list[str]) -> list[str]:
    """Group names a scenario's ``overlap`` may set: the catalogue's and the policy families' (``family:<id>``)."""
    return list(groups) + [FAMILY_PREFIX + f for f in families]


def active_groups(groups: dict[str, ExclusiveGroup], sims: list, overrides: dict[str, float]) -> list[SimGroup]:
    """Groups with two or more simulated members and a positive share; their members are simulated per applicant.

    ``sims`` are the scenario's ``SimProgram`` objects (their ``exclusive_group`` as the policy timeline set it);
    ``overrides`` the scenario's ``overlap`` table. A ``highest_only`` family's group has share
    :data:`FAMILY_OVERLAP` unless the scenario sets one.
    """
    out = []
    for name in dict.fromkeys(g for sp in sims for g in group_names(sp.prog.spec.exclusive_group)):
        default = groups[name].overlap if name in groups else FAMILY_OVERLAP
        share = overrides.get(name, default)
        members = [sp for sp in sims if name in group_names(sp.prog.spec.exclusive_group)]
        if len(members) < 2 or share <= 0:
            continue
        for sp in members:
            sp.per_applicant = True
        out.append(SimGroup(name, [sp.id for sp in members], share))
    return out


def components(groups: list[SimGroup]) -> list[list[SimGroup]]:
    """Groups that share a program, joined (a program in two groups is simulated once, both rules applied to the
    same applicants); each component's groups in their order, components in the order of their first group."""
    comps: list[list[SimGroup]] = []
    for g in groups:
        touching = [c for c in comps if any(set(g.members) & set(h.members) for h in c)]
        merged = [h for c in touching for h in c] + [g]
        comps = [c for c in comps if c not in touching]
        comps.append(sorted(merged, key=groups.index))
    return sorted(comps, key=lambda c: groups.index(c[0]))
