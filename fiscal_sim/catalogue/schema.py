"""The program file format: one YAML file per source document, one program per entry.

A file has a ``document`` block (number, title, date, and defaults the programs
inherit: ``unit``, ``in_force``, ``applies_in``, ``cost_sharing``) and a list
of ``programs``. Money fields are in the program's ``unit`` (万元 by default).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Union

from pydantic import Field, model_validator

from fiscal_sim.catalogue.parameters import Parameter, resolve
from fiscal_sim.rules.formula import Formula, Strict
from fiscal_sim.rules.schedule import OneOff, Schedule
from fiscal_sim.uptake.spec import Uptake

ProgramId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]*$", max_length=80)]
INHERITED = ("unit", "in_force", "applies_in", "cost_sharing")


class InForce(Strict):
    """In-force dates; an award dated outside ``[from, to]`` is not payable. ``to: null`` = open-ended."""

    from_: dt.date = Field(alias="from")
    to: dt.date | None = None

    @model_validator(mode="after")
    def _order(self):
        if self.to is not None and self.to < self.from_:
            raise ValueError(f"in-force dates reversed: from {self.from_} is after to {self.to}")
        return self

    def contains(self, day: dt.date) -> bool:
        return self.from_ <= day and (self.to is None or day <= self.to)


class Source(Strict):
    section: str = Field(min_length=1, description="article or section, e.g. 二（七）")
    quote: str = Field(min_length=4, description="short verbatim quote from the seed text")
    provisions: list[str] = Field(default=[], description="ids in the reference extraction, e.g. S000-21")


class InputSpec(Strict):
    """An input the formula needs: ``money`` (with unit), ``category`` (with values), ``number`` or ``share`` (0–1)."""

    type: Literal["money", "category", "number", "share"]
    unit: str | None = None
    values: list[str] | None = None
    labels: dict[str, str] | None = None
    description: str | None = None
    default: Union[float, str, None] = None

    @model_validator(mode="after")
    def _typed(self):
        if self.type == "category" and not self.values:
            raise ValueError("a category input needs its list of values")
        if self.type != "category" and self.values:
            raise ValueError(f"values only apply to category inputs, not {self.type}")
        return self


class AggregateCap(Strict):
    """A cap on the sum of a group's awards ("每家每年累计不超过100万元").

    ``per``: entity_year, person_year or entity_lifetime. ``method``: how an
    over-cap total is cut, ``proportional`` or ``in_order`` (award date order).
    In one-case calculations the amount already used is the input
    ``used_<per>`` (program unit, default 0).
    """

    per: Literal["entity_year", "person_year", "entity_lifetime"]
    max: Annotated[float, Field(ge=0)]
    method: Literal["proportional", "in_order"] = "in_order"
    clause: str | None = None


class Document(Strict):
    number: str = Field(description="文号, e.g. 嘉政办发〔2024〕7号")
    title: str
    issuer: str
    date: dt.date
    seed_file: str | None = None
    part: str | None = Field(default=None, description="where in the seed file, e.g. D2 (L471–617)")
    unit: str = "万元"
    in_force: InForce
    applies_in: Union[str, list[str]] = "all"
    cost_sharing: str = "existing_regime"
    notes: list[str] = []


class Program(Strict):
    id: ProgramId
    title_zh: str
    title_en: str
    source: Source
    status: Literal["priced", "unpriced", "equity"] = "priced"
    unit: str
    in_force: InForce
    applies_in: Union[str, list[str]]
    cost_sharing: str
    inputs: dict[str, InputSpec] = {}
    parameters: dict[str, Parameter] = Field(
        default={}, description="amounts, rates, caps and thresholds by name; the formula refers to them as $name"
    )
    formula: Formula | None = None
    schedule: Schedule = OneOff(kind="one_off")
    caps: list[AggregateCap] = []
    exclusive_group: str | list[str] | None = Field(
        default=None, description="non-cumulation group(s): within each, an applicant gets the highest award only"
    )
    assumptions: list[str] = []
    uptake: Uptake | None = None

    @model_validator(mode="before")
    @classmethod
    def _named_parameters(cls, data: Any) -> Any:
        return resolve(data)

    @model_validator(mode="after")
    def _priced_has_formula(self):
        if self.status in ("priced", "equity") and self.formula is None:
            raise ValueError(f"a {self.status} program needs a formula (or status: unpriced)")
        return self


class ProgramFile(Strict):
    document: Document
    programs: list[dict] = Field(min_length=1)


def group_names(value: str | list[str] | None) -> list[str]:
    """A program's non-cumulation groups as a list (``exclusive_group`` is one name, several, or none)."""
    return [] if not value else [value] if isinstance(value, str) else list(value)
