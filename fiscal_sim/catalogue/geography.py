"""Jurisdictions, payers and cost-sharing regimes, loaded from ``jurisdictions.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from fiscal_sim.errors import InputError
from fiscal_sim.rules.formula import Strict
from fiscal_sim.yamlfile import YamlDoc


class Jurisdiction(Strict):
    name_zh: str
    name_en: str
    fiscal_class: str


class Payer(Strict):
    name_zh: str
    name_en: str


class Regime(Strict):
    """Shares of each payer by fiscal class; ``local`` means the applicant's own jurisdiction."""

    label_en: str
    label_zh: str
    basis: Literal["document", "assumption"]
    source: dict[str, str] | None = None
    assumptions: list[str] = []
    shares: dict[str, dict[str, float]]

    @model_validator(mode="after")
    def _sum_to_one(self):
        for cls, s in self.shares.items():
            if any(v < 0 for v in s.values()):
                raise ValueError(f"shares for {cls} must not be negative")
            if abs(sum(s.values()) - 1) > 1e-9:
                raise ValueError(f"shares for {cls} sum to {sum(s.values()):g}, not 1")
        return self


class GeographyFile(Strict):
    jurisdictions: dict[str, Jurisdiction]
    fiscal_classes: dict[str, str]
    groups: dict[str, list[str]]
    payers: dict[str, Payer]
    default_allocation: dict[str, float]
    cost_sharing: dict[str, Regime] = Field(min_length=1)


@dataclass
class Geography:
    """Jurisdiction and payer indices plus each regime's share matrix (jurisdiction × payer)."""

    data: GeographyFile
    path: str

    @property
    def jurisdictions(self) -> list[str]:
        return list(self.data.jurisdictions)

    @property
    def payers(self) -> list[str]:
        """``city``, ``province``, then every jurisdiction's own finance."""
        return list(self.data.payers) + self.jurisdictions

    def payer_name(self, payer: str, lang: str = "zh") -> str:
        p = self.data.payers.get(payer) or self.data.jurisdictions[payer]
        return p.name_zh if lang == "zh" else p.name_en

    def resolve(self, applies_in: str | list[str]) -> list[str]:
        """Jurisdiction ids for a group name, an id, or a list of either."""
        items = [applies_in] if isinstance(applies_in, str) else applies_in
        out: list[str] = []
        for it in items:
            for j in self.data.groups.get(it, [it]):
                if j not in self.data.jurisdictions:
                    raise KeyError(it)
                if j not in out:
                    out.append(j)
        return out

    def share_matrix(self, regime: str, overrides: dict[str, dict[str, float]] | None = None) -> np.ndarray:
        """Shares (n_jurisdictions × n_payers) for ``regime``; rows sum to 1."""
        shares = dict(self.data.cost_sharing[regime].shares)
        shares.update(overrides or {})
        payers = self.payers
        M = np.zeros((len(self.jurisdictions), len(payers)))
        for i, (jid, j) in enumerate(self.data.jurisdictions.items()):
            for payer, s in shares[j.fiscal_class].items():
                M[i, payers.index(jid if payer == "local" else payer)] += s
        return M


def load_geography(path: Path | str) -> Geography:
    doc = YamlDoc(path)
    try:
        data = GeographyFile.model_validate(doc.data)
    except ValidationError as e:
        raise InputError(doc.problems_from(e, (), None, doc.data)) from None
    problems = []
    classes = set(data.fiscal_classes)
    known_payers = set(data.payers) | {"local"}
    for jid, j in data.jurisdictions.items():
        if j.fiscal_class not in classes:
            problems.append(doc.problem(("jurisdictions", jid, "fiscal_class"), f"unknown fiscal class {j.fiscal_class!r}"))
    for name, r in data.cost_sharing.items():
        for cls in classes - set(r.shares):
            problems.append(doc.problem(("cost_sharing", name, "shares"), f"no shares for fiscal class {cls!r}"))
        for cls, s in r.shares.items():
            for payer in set(s) - known_payers:
                problems.append(doc.problem(("cost_sharing", name, "shares", cls, payer), f"unknown payer {payer!r}"))
    for g, members in data.groups.items():
        for m in members:
            if m not in data.jurisdictions:
                problems.append(doc.problem(("groups", g), f"unknown jurisdiction {m!r}"))
    if problems:
        raise InputError(problems)
    return Geography(data, str(path))
