"""Pipeline definitions in a scenario file: calls, review, approval, payment batches, appropriations.

A scenario's ``pipelines:`` list puts programs through an administrative
pipeline (see :mod:`fiscal_sim.pipeline.model` for what happens to an applicant)::

    pipelines:
      - name: innovation-rewards
        programs: [jzbf2024-7.hnte-first-certification, jzbf2024-7.research-institute]
        windows: quarterly            # or annual, monthly, or [{open: 3, close: 5}, ...] (months, inclusive)
        review:
          reviewers: 4                # applications reviewed at once (null: unbounded)
          days: {dist: triangular, low: 10, mode: 20, high: 45}
        approval_rate: 1.0
        payment_months: [6]           # the yearly batch (政策兑现月); several months = several batches
        lag_batches: 0                # first instalment no earlier than this many years after the award year
        discipline: fifo              # or priority (with priority: {program: rank}, 0 first)
        appropriations:               # per payer, per year (null year: every year); unit explicit
          - {payer: city, year: 2026, amount: 3000, unit: 万元}

Payers without an appropriation entry, and entries with ``amount: null``,
are unbounded; every entry states its ``unit``. This module only declares and validates;
:mod:`fiscal_sim.pipeline.plan` turns a pipeline into simulation settings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from fiscal_sim.errors import Problem
from fiscal_sim.rules.formula import Strict
from fiscal_sim.units import cny_per
from fiscal_sim.uptake.spec import EmpiricalDist, FixedDist, LogNormalDist, TriangularDist, UniformDist

Month = Annotated[int, Field(ge=1, le=12)]
NAMED_WINDOWS: dict[str, list[tuple[int, int]]] = {
    "annual": [(1, 12)],
    "quarterly": [(1, 3), (4, 6), (7, 9), (10, 12)],
    "monthly": [(m, m) for m in range(1, 13)],
}

DaysDist = Annotated[
    Union[FixedDist, UniformDist, TriangularDist, LogNormalDist, EmpiricalDist], Field(discriminator="dist")
]


class Window(Strict):
    """An application call: months ``open`` to ``close`` inclusive; ``share`` of the year's applicants."""

    open: Month
    close: Month
    share: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="relative weight of this call; default: every call the same"
    )

    @model_validator(mode="after")
    def _order(self):
        if self.close < self.open:
            raise ValueError(f"window closes (month {self.close}) before it opens (month {self.open})")
        return self


class Review(Strict):
    """Review capacity: ``reviewers`` applications in review at once; review time in days."""

    reviewers: Annotated[int, Field(ge=1, le=100_000)] | None = Field(
        default=None, description="null: unbounded (every application is reviewed at once)"
    )
    days: DaysDist = FixedDist(dist="fixed", value=0.0)

    @model_validator(mode="after")
    def _non_negative(self):
        d = self.days
        low = {
            "fixed": lambda: d.value,
            "uniform": lambda: d.low,
            "triangular": lambda: d.low,
            "lognormal": lambda: 0.0,
            "empirical": lambda: d.quantiles[0],
        }[d.dist]()
        if low < 0:
            raise ValueError("review days cannot be negative")
        if d.unit is not None:
            raise ValueError("review days are in days; remove 'unit'")
        return self


class Appropriation(Strict):
    """A payer's annual appropriation for the pipeline's programs (a funding envelope)."""

    payer: str
    year: int | None = Field(default=None, description="null: the same appropriation every year")
    amount: Annotated[float, Field(ge=0)] | None = Field(description="null: unbounded")
    unit: str = Field(description="money unit of amount, written out: 元, 万元 or 亿元")

    @model_validator(mode="after")
    def _unit(self):
        cny_per(self.unit)  # raises ValueError naming the allowed units
        return self

    @property
    def amount_cny(self) -> float:
        return float("inf") if self.amount is None else self.amount * cny_per(self.unit)


class PipelineSpec(Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]
    description: str = ""
    programs: list[str] = Field(min_length=1)
    windows: Union[Literal["annual", "quarterly", "monthly"], list[Window]] = "annual"
    review: Review = Review()
    approval_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    payment_months: list[Month] = Field(default=[12], min_length=1)
    lag_batches: Annotated[int, Field(ge=0, le=10)] = 0
    discipline: Literal["fifo", "priority"] = "fifo"
    priority: dict[str, Annotated[int, Field(ge=0)]] = Field(default={}, validate_default=True)
    appropriations: list[Appropriation] = []

    @field_validator("programs")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("a program is listed twice")
        return v

    @field_validator("windows")
    @classmethod
    def _disjoint(cls, v):
        if isinstance(v, list):
            for a, b in zip(v, v[1:]):
                if b.open <= a.close:
                    raise ValueError(
                        f"windows overlap or are out of order: months {a.open}–{a.close} and {b.open}–{b.close}"
                    )
        return v

    @field_validator("payment_months")
    @classmethod
    def _ascending(cls, v: list[int]) -> list[int]:
        if sorted(set(v)) != list(v):
            raise ValueError("payment months must be ascending without repeats")
        return v

    @field_validator("priority")
    @classmethod
    def _priority(cls, v: dict[str, int], info: ValidationInfo) -> dict[str, int]:
        discipline = info.data.get("discipline")
        if discipline == "priority" and not v:
            raise ValueError("discipline 'priority' needs 'priority': {program id: rank}, rank 0 served first")
        if discipline == "fifo" and v:
            raise ValueError("'priority' is only used with discipline: priority")
        return v

    @field_validator("appropriations")
    @classmethod
    def _one_per_payer_year(cls, v: list[Appropriation]) -> list[Appropriation]:
        seen = set()
        for a in v:
            if (a.payer, a.year) in seen:
                raise ValueError(f"two appropriations for payer {a.payer!r}, year {a.year or 'every year'}")
            seen.add((a.payer, a.year))
        return v

    def window_list(self) -> list[tuple[int, int]]:
        """The calls as (open month, close month), in calendar order."""
        if isinstance(self.windows, str):
            return NAMED_WINDOWS[self.windows]
        return [(w.open, w.close) for w in self.windows]

    def window_shares(self) -> list[float]:
        """Each call's share of a year's applicants (equal unless given)."""
        if isinstance(self.windows, str):
            k = len(NAMED_WINDOWS[self.windows])
            return [1.0 / k] * k
        w = [x.share if x.share is not None else 1.0 for x in self.windows]
        return [v / sum(w) for v in w]

    def rank(self, program: str) -> int:
        """Queue rank of a program: its priority (0 first), FIFO programs all 0; unlisted after listed."""
        if self.discipline == "fifo":
            return 0
        return self.priority.get(program, max(self.priority.values()) + 1)


def parse_pipelines(raw: list[dict[str, Any]]) -> list[PipelineSpec]:
    """Validated pipelines of a scenario (already checked by :func:`check_pipelines` at load time)."""
    return [PipelineSpec.model_validate(p) for p in raw]


def check_pipelines(
    doc, raw: list[Any], programs: list[str], payers: list[str], years: list[int], payers_of: dict[str, set[str]]
) -> list[Problem]:
    """Every problem of a scenario's ``pipelines``, naming the file, the pipeline and the field.

    ``programs``: ids simulated in the scenario (priced, not excluded);
    ``payers_of``: program id → the payers its cost-sharing puts money on.
    """
    problems: list[Problem] = []
    names: dict[str, int] = {}
    owner: dict[str, str] = {}
    for i, entry in enumerate(raw):
        base = ("scenario", "pipelines", i)
        label = entry.get("name", f"#{i + 1}") if isinstance(entry, dict) else f"#{i + 1}"

        def add(path: tuple, msg: str, label=label, base=base) -> None:
            p = doc.problem(base + tuple(path), f"pipeline {label!r}: {msg}")
            problems.append(p)

        if not isinstance(entry, dict):
            add((), "a pipeline is a mapping (name, programs, windows, review, …)")
            continue
        try:
            spec = PipelineSpec.model_validate(entry)
        except ValidationError as e:
            for p in doc.problems_from(e, base, None, entry):
                problems.append(Problem(p.file, None, p.field, f"pipeline {label!r}: {p.message}", p.line))
            continue
        if spec.name in names:
            add(("name",), f"duplicate pipeline name (also pipeline #{names[spec.name] + 1})")
        names[spec.name] = i
        used: set[str] = set()
        for k, pid in enumerate(spec.programs):
            if pid not in programs:
                add(
                    ("programs", k),
                    f"program {pid!r} is not simulated in this scenario "
                    "(unknown, excluded, unpriced or without uptake)",
                )
                continue
            if pid in owner and owner[pid] != spec.name:
                add(
                    ("programs", k), f"program {pid!r} is already in pipeline {owner[pid]!r} (one pipeline per program)"
                )
            owner[pid] = spec.name
            used |= payers_of.get(pid, set())
        for pid in spec.priority:
            if pid not in spec.programs:
                add(("priority", pid), f"{pid!r} is not one of this pipeline's programs")
        for k, a in enumerate(spec.appropriations):
            if a.payer not in payers:
                add(("appropriations", k, "payer"), f"unknown payer {a.payer!r} (payers: {', '.join(payers)})")
            elif a.payer not in used and used:
                add(
                    ("appropriations", k, "payer"),
                    f"payer {a.payer!r} pays nothing for this pipeline's programs "
                    f"(they are paid by {', '.join(sorted(used))})",
                )
            if a.year is not None and a.year not in years:
                add(("appropriations", k, "year"), f"year {a.year} is outside the horizon {years[0]}–{years[-1]}")
    return problems
