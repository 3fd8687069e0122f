"""Jurisdictions, payers and cost-sharing regimes, loaded from ``jurisdictions.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

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


class Weights(Strict):
    """Relative weights of jurisdictions that allocate a city-wide program's applicants (firms, incubators, …).

    ``basis: document`` needs the document, the table and a verbatim ``quote``
    of its heading; ``basis: assumption`` says in ``note`` why no data is used.
    """

    label_en: str
    basis: Literal["document", "assumption"]
    document: str | None = None
    source: str | None = Field(default=None, description="where in the document, e.g. 附件 table and column")
    quote: str | None = None
    note: str
    weights: dict[str, Annotated[float, Field(ge=0)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _cited(self):
        if self.basis == "document" and not (self.document and self.source and self.quote):
            raise ValueError("weights with basis: document need document, source and quote")
        return self


class GeographyFile(Strict):
    jurisdictions: dict[str, Jurisdiction]
    fiscal_classes: dict[str, str]
    groups: dict[str, list[str]]
    payers: dict[str, Payer]
    allocation_weights: dict[str, Weights] = Field(min_length=1)
    default_allocation: str = Field(description="the weights a program uses when its uptake names none")
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

    def find(self, name: str) -> str:
        """The jurisdiction id for any of its names: the id (``haining``), the Chinese name with or without its
        suffix (海宁市, 海宁), the English name (case-insensitive); KeyError with the accepted names otherwise."""
        key = name.strip()
        names: dict[str, str] = {}
        for j, d in self.data.jurisdictions.items():
            zh = d.name_zh.split("（")[0]
            for n in (
                j,
                d.name_zh,
                zh,
                zh.rstrip("区县市") if len(zh) > 2 else zh,
                d.name_en,
                d.name_en.split(" (")[0],
                d.name_en.split(" District")[0].split(" County")[0],
            ):
                names.setdefault(n.lower(), j)
        try:
            return names[key.lower()]
        except KeyError:
            listed = ", ".join(f"{j} ({d.name_zh})" for j, d in self.data.jurisdictions.items())
            raise KeyError(f"{name!r} is not a place fiscal-sim knows: {listed}") from None

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

    def weights_name(self, allocation: str | dict[str, float] | None) -> str | None:
        """The named weights a program's ``uptake.allocation`` uses (None for an explicit table)."""
        return (
            self.data.default_allocation if allocation is None else allocation if isinstance(allocation, str) else None
        )

    def allocation(self, allocation: str | dict[str, float] | None, places: list[str]) -> np.ndarray:
        """Shares (summing to 1) of ``places`` from named weights, an explicit table, or the default weights."""
        name = self.weights_name(allocation)
        table: dict[str, float] = (
            self.data.allocation_weights[name].weights if name else (allocation if isinstance(allocation, dict) else {})
        )
        w = np.array([float(table.get(j, 0.0)) for j in places])
        return w / w.sum() if w.sum() > 0 else np.full(len(places), 1.0 / len(places))

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
            problems.append(
                doc.problem(("jurisdictions", jid, "fiscal_class"), f"unknown fiscal class {j.fiscal_class!r}")
            )
    for name, r in data.cost_sharing.items():
        for cls in classes - set(r.shares):
            problems.append(doc.problem(("cost_sharing", name, "shares"), f"no shares for fiscal class {cls!r}"))
        for cls, s in r.shares.items():
            for payer in set(s) - known_payers:
                problems.append(doc.problem(("cost_sharing", name, "shares", cls, payer), f"unknown payer {payer!r}"))
    for name, w in data.allocation_weights.items():
        for place in set(w.weights) - set(data.jurisdictions):
            problems.append(
                doc.problem(("allocation_weights", name, "weights", place), f"unknown jurisdiction {place!r}")
            )
    if data.default_allocation not in data.allocation_weights:
        problems.append(
            doc.problem(
                ("default_allocation",),
                f"unknown weights {data.default_allocation!r} (known: {', '.join(data.allocation_weights)})",
            )
        )
    for name, r in data.cost_sharing.items():
        if any(s.get("province", 0) > 0 for s in r.shares.values()) and not (r.basis == "document" and r.source):
            problems.append(
                doc.problem(
                    ("cost_sharing", name),
                    "a province share needs a document naming the provincial co-funding (basis: document, source)",
                )
            )
    for g, members in data.groups.items():
        for m in members:
            if m not in data.jurisdictions:
                problems.append(doc.problem(("groups", g), f"unknown jurisdiction {m!r}"))
    if problems:
        raise InputError(problems)
    return Geography(data, str(path))
