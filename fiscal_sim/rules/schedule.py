"""Payment schedules: turn one award into cash by year offset from the award year.

A schedule yields, per applicant, a factor matrix ``F`` (n × L) and a payment
index matrix ``K``: the cash paid in year offset ``t`` is ``amount × F[:, t]``,
and it is the ``K[:, t]``-th payment (0-based), so attrition stops payments
with index ``>= years_stayed``.

What the formula's amount means depends on the schedule:
``one_off`` and ``instalments`` take the award total; ``annual`` takes the
amount *per year* (a 10-year rent subsidy of 10万元 a year has amount 10).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

import numpy as np
from pydantic import Field, model_validator

from fiscal_sim.rules.formula import ByInput, EvalContext, Strict

Lag = Annotated[int, Field(ge=0, le=10)]
Years = Union[Annotated[int, Field(ge=1, le=30)], ByInput]


class _Schedule(Strict):
    clause: str | None = None

    def matrices(self, ctx: EvalContext, width: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def max_len(self) -> int:
        raise NotImplementedError


class OneOff(_Schedule):
    """Paid once, ``lag`` years after the award."""

    kind: Literal["one_off"]
    lag: Lag = 0

    def matrices(self, ctx, width):
        F = np.zeros((ctx.n, width))
        F[:, self.lag] = 1.0
        K = np.full((ctx.n, width), -1, dtype=np.int16)
        K[:, self.lag] = 0
        return F, K

    def max_len(self):
        return self.lag + 1

    def describe(self) -> str:
        return "one-off" + (f", {self.lag} year(s) after the award" if self.lag else "")


class Annual(_Schedule):
    """The formula's amount every year for ``years`` years, from ``lag`` years after the award."""

    kind: Literal["annual"]
    years: Years
    lag: Lag = 0

    @model_validator(mode="after")
    def _int_years(self):
        if isinstance(self.years, ByInput):
            bad = [k for k, v in self.years.values.items() if v != int(v) or v < 1]
            if bad:
                raise ValueError(f"years must be whole numbers ≥ 1 (categories {bad})")
        return self

    def _years(self, ctx) -> np.ndarray:
        y = ctx.param(self.years)
        return np.broadcast_to(np.asarray(y, dtype=np.int64), (ctx.n,))

    def matrices(self, ctx, width):
        k = np.arange(width)[None, :] - self.lag
        paid = (k >= 0) & (k < self._years(ctx)[:, None])
        return paid.astype(float), np.where(paid, k, -1).astype(np.int16)

    def max_len(self):
        y = max(self.years.values.values()) if isinstance(self.years, ByInput) else self.years
        return self.lag + int(y)

    def describe(self) -> str:
        y = self.years if isinstance(self.years, int) else f"by {self.years.by} {self.years.values}"
        return f"annual for {y} years" + (f" from year +{self.lag}" if self.lag else "")


class Instalments(_Schedule):
    """The award total paid in fractions over consecutive years (e.g. 40/30/30)."""

    kind: Literal["instalments"]
    fractions: list[Annotated[float, Field(gt=0, le=1)]] = Field(min_length=1)
    lag: Lag = 0

    @model_validator(mode="after")
    def _sum_to_one(self):
        if abs(sum(self.fractions) - 1.0) > 1e-9:
            raise ValueError(f"instalment fractions must sum to 1, got {sum(self.fractions):g}")
        return self

    def matrices(self, ctx, width):
        F = np.zeros((ctx.n, width))
        K = np.full((ctx.n, width), -1, dtype=np.int16)
        for k, f in enumerate(self.fractions):
            F[:, self.lag + k] = f
            K[:, self.lag + k] = k
        return F, K

    def max_len(self):
        return self.lag + len(self.fractions)

    def describe(self) -> str:
        return (
            "instalments "
            + "/".join(f"{f:.0%}" for f in self.fractions)
            + (f" from year +{self.lag}" if self.lag else "")
        )


class ScheduleChoice(_Schedule):
    """A schedule by option (purchase one-off, or rent annually for 10 years)."""

    kind: Literal["choice"]
    by: str
    options: dict[str, "Schedule"]

    def matrices(self, ctx, width):
        F = np.zeros((ctx.n, width))
        K = np.full((ctx.n, width), -1, dtype=np.int16)
        codes = ctx.inputs[self.by]
        for code, cat in enumerate(ctx.categories[self.by]):
            mask = codes == code
            if mask.any():
                f, k = self.options[cat].matrices(ctx, width)
                F[mask], K[mask] = f[mask], k[mask]
        return F, K

    def max_len(self):
        return max(s.max_len() for s in self.options.values())

    def describe(self) -> str:
        return "; ".join(f"{k}: {v.describe()}" for k, v in self.options.items())


Schedule = Annotated[Union[OneOff, Annual, Instalments, ScheduleChoice], Field(discriminator="kind")]


def category_refs(schedule: _Schedule) -> list[str]:
    """The category inputs a schedule depends on (option chosen, years by tier)."""
    if isinstance(schedule, ScheduleChoice):
        out = [schedule.by]
        for s in schedule.options.values():
            out += [r for r in category_refs(s) if r not in out]
        return out
    if isinstance(schedule, Annual) and isinstance(schedule.years, ByInput):
        return [schedule.years.by]
    return []


def schedule_classes(schedule: _Schedule, ctx: EvalContext, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Schedules by class instead of by applicant: ``(cls, F_c, K_c)``.

    Applicants whose schedule-relevant categories agree share a class; ``F_c``
    and ``K_c`` (classes × width) are computed once per class, and ``cls``
    gives each applicant's class. This avoids (applicants × years) matrices.
    """
    refs = category_refs(schedule)
    sizes = [len(ctx.categories[r]) for r in refs]
    grid = np.indices(sizes).reshape(len(sizes), -1) if refs else np.zeros((0, 1), dtype=np.int64)
    gctx = EvalContext(grid.shape[1], {r: grid[i] for i, r in enumerate(refs)}, ctx.categories, ctx.unit_cny)
    F, K = schedule.matrices(gctx, width)
    cls = np.zeros(ctx.n, dtype=np.int64)
    for r, size in zip(refs, sizes):
        cls = cls * size + ctx.inputs[r]
    return cls, F, K


def cash_by_offset(
    schedule: _Schedule,
    amount_cny: np.ndarray,
    ctx: EvalContext,
    years_stayed: np.ndarray | None = None,
    width: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(committed_cny, cash_cny)``: each award's total commitment and its cash by year offset.

    ``years_stayed`` (per applicant, optional) stops payments from that payment
    index on (attrition); the commitment is the full nominal total regardless.
    """
    width = width or schedule.max_len()
    F, K = schedule.matrices(ctx, width)
    committed = amount_cny * F.sum(axis=1)
    cash = amount_cny[:, None] * F
    if years_stayed is not None:
        cash = np.where(K < np.asarray(years_stayed)[:, None], cash, 0.0)
    return committed, cash


def with_timing(schedule: _Schedule, lag: int | None, instalments: list[float] | None = None) -> _Schedule:
    """``schedule`` with its payment lag set and a one-off award split into ``instalments``.

    The lag is the number of years from the award decision to the first payment
    (decided in t, paid in t + lag); ``None`` keeps each schedule's own lag.
    Instalments only replace ``one_off`` schedules (an annual or instalment
    schedule of the text is kept); a choice applies both to each option.
    """
    if isinstance(schedule, ScheduleChoice):
        return schedule.model_copy(
            update={"options": {k: with_timing(v, lag, instalments) for k, v in schedule.options.items()}}
        )
    lag = schedule.lag if lag is None else lag  # type: ignore[attr-defined]
    if instalments and isinstance(schedule, OneOff):
        return Instalments(kind="instalments", fractions=list(instalments), lag=lag, clause=schedule.clause)
    return schedule.model_copy(update={"lag": lag}) if lag != schedule.lag else schedule  # type: ignore[attr-defined]
