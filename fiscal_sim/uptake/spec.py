"""Uptake assumptions as data: how many apply, what they claim, which tier or option.

This module only declares and validates; :mod:`fiscal_sim.uptake.sample` draws.
Money in an input distribution is in the program's unit unless ``unit`` is given.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from fiscal_sim.rules.formula import Strict

NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class Count(Strict):
    """Applicants per year (over the program's whole area unless ``by_jurisdiction``).

    ``poisson``: Poisson(λ). ``negbin``: Poisson(λ·G), G ~ Gamma(mean 1, CV
    ``dispersion``) per draw, jurisdiction and year (overdispersion).
    ``binomial``: Binomial(``pool``, take-up), the take-up rate ``take_up``.
    ``rate_cv`` is parameter uncertainty: λ (or the take-up) itself is scaled
    by a Gamma(mean 1, CV ``rate_cv``) factor drawn once per draw.
    ``growth``: λ × (1 + growth)^(year − base_year).
    """

    dist: Literal["poisson", "negbin", "binomial"] = "poisson"
    mean: NonNeg | None = None
    by_jurisdiction: dict[str, Union[NonNeg, dict[int, NonNeg]]] | None = None
    by_year: dict[int, NonNeg] | None = None
    dispersion: NonNeg = 0.0
    rate_cv: NonNeg = 0.0
    growth: Annotated[float, Field(ge=-0.5, le=1.0)] = 0.0
    base_year: int | None = None
    pool: Annotated[int, Field(ge=0)] | None = None
    take_up: Fraction | None = None
    shock: bool = Field(default=True, description="exposed to the scenario's shared uptake shock")

    @model_validator(mode="after")
    def _complete(self):
        if self.dist == "binomial":
            if self.pool is None or self.take_up is None:
                raise ValueError("a binomial count needs pool and take_up")
        elif self.mean is None and self.by_jurisdiction is None and self.by_year is None:
            raise ValueError("a count needs mean, by_year or by_jurisdiction")
        if self.dist == "negbin" and self.dispersion <= 0:
            raise ValueError("negbin needs dispersion > 0")
        return self


class _Dist(Strict):
    unit: str | None = Field(default=None, description="money unit of the values; default the program's")


class FixedDist(_Dist):
    dist: Literal["fixed"]
    value: float


class LogNormalDist(_Dist):
    """Lognormal with the given median and log-sd ``sigma``; optionally clipped to ``max``."""

    dist: Literal["lognormal"]
    median: Annotated[float, Field(gt=0)]
    sigma: NonNeg
    max: float | None = None


class TriangularDist(_Dist):
    dist: Literal["triangular"]
    low: float
    mode: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        if not self.low <= self.mode <= self.high or self.low == self.high:
            raise ValueError("triangular needs low <= mode <= high and low < high")
        return self


class UniformDist(_Dist):
    dist: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError("uniform needs low < high")
        return self


class EmpiricalDist(_Dist):
    """Equally spaced quantiles from 0 to 1 (min, ..., max); sampled by linear interpolation."""

    dist: Literal["empirical"]
    quantiles: list[float] = Field(min_length=2)

    @model_validator(mode="after")
    def _sorted(self):
        if any(b < a for a, b in zip(self.quantiles, self.quantiles[1:])):
            raise ValueError("empirical quantiles must be ascending")
        return self


class BetaDist(_Dist):
    """A share in (0, 1) with the given mean and sd (used for "up to" grants and take-up)."""

    dist: Literal["beta"]
    mean: Annotated[float, Field(gt=0, lt=1)]
    sd: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _feasible(self):
        if self.sd**2 >= self.mean * (1 - self.mean):
            raise ValueError("beta sd too large for its mean (need sd² < mean·(1−mean))")
        return self


class CategoricalDist(_Dist):
    """Tier or option mix. With ``concentration`` the mix itself is Dirichlet-distributed per draw."""

    dist: Literal["categorical"]
    probs: dict[str, NonNeg]
    concentration: Annotated[float, Field(gt=0)] | None = None

    @model_validator(mode="after")
    def _sum(self):
        if abs(sum(self.probs.values()) - 1) > 1e-6:
            raise ValueError(f"probs must sum to 1, got {sum(self.probs.values()):g}")
        return self


InputDist = Annotated[
    Union[FixedDist, LogNormalDist, TriangularDist, UniformDist, EmpiricalDist, BetaDist, CategoricalDist],
    Field(discriminator="dist"),
]


class Uptake(Strict):
    """A program's uptake prior: counts, input distributions, attrition, entity pools."""

    basis: Literal["target", "assumption", "calibrated"] = Field(
        description="target: from a number in the documents (quote it); assumption: no target exists; "
        "calibrated: updated from award history (fiscal-sim calibrate; the note gives the basis)"
    )
    quote: str | None = None
    target_until: int | None = Field(
        default=None, description="last year the quoted target covers; later years are an assumption (carried forward)"
    )
    note: str | None = None
    count: Count
    allocation: Union[str, dict[str, NonNeg], None] = Field(
        default=None,
        description="share of applicants by jurisdiction: named weights of jurisdictions.yaml "
        "(allocation_weights), an explicit table, or (null) the catalogue's default weights",
    )
    inputs: dict[str, InputDist] = {}
    attrition: Fraction = Field(default=0.0, description="annual probability a multi-year recipient leaves")
    entities: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="entities per jurisdiction sharing an aggregate cap (applicants assigned uniformly)"
    )

    @model_validator(mode="after")
    def _quoted(self):
        if self.basis == "target" and not self.quote:
            raise ValueError("an uptake prior based on a target needs the quote it comes from")
        if self.target_until is not None and self.basis != "target":
            raise ValueError("target_until only applies to basis: target")
        return self

    def basis_in(self, year: int) -> str:
        """The basis of the count in ``year``: ``target`` while the quoted target covers it, ``calibrated``, else ``assumption``."""
        if self.basis == "target" and (self.target_until is None or year <= self.target_until):
            return "target"
        return "calibrated" if self.basis == "calibrated" else "assumption"
