"""The provision map: every provision id of the reference extraction → programs, or the reason it is none."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from fiscal_sim.catalogue.loader import Catalogue
from fiscal_sim.errors import InputError
from fiscal_sim.rules.formula import Strict
from fiscal_sim.yamlfile import YamlDoc

PROVISION_ID = r"^S\d{3}-\d+[a-z]?$"


class Entry(Strict):
    programs: list[str] = []
    reason: str | None = None

    @model_validator(mode="after")
    def _one(self):
        if bool(self.programs) == bool(self.reason):
            raise ValueError("give either programs or a reason")
        return self


class ProvisionMap(Strict):
    provisions: dict[str, Entry] = Field(min_length=1)


def load_provision_map(path: Path | str, cat: Catalogue) -> dict[str, Entry]:
    """Parse a provision-map file and check that mapped programs exist."""
    doc = YamlDoc(path)
    try:
        pm = ProvisionMap.model_validate(doc.data)
    except ValidationError as e:
        raise InputError(doc.problems_from(e, (), None, doc.data)) from None
    problems = [
        doc.problem(("provisions", pid, "programs"), f"unknown program {p!r}", p)
        for pid, e in pm.provisions.items()
        for p in e.programs
        if p not in cat.programs
    ]
    if problems:
        raise InputError(problems)
    return pm.provisions


def load_all(folder: Path, cat: Catalogue) -> dict[str, Entry]:
    out: dict[str, Entry] = {}
    for f in sorted(folder.glob("*.yaml")):
        out.update(load_provision_map(f, cat))
    return out
