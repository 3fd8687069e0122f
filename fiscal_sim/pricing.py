"""Pricing an unpriced program in a scenario: an amount table by grade (e.g. 嘉政办发〔2024〕6号 分档择优予以奖励).

A scenario's ``price:`` section gives, per unpriced program, the amount of
each grade (or one amount) in the program's unit, the grade mix and, unless the
catalogue already states one, the uptake count. The program then becomes a
priced program with a ``grade`` input and a ``tiered`` formula; its cost
sharing and in-force dates are the catalogue's, so they are computed like any
other program's. The amounts are the user's, labelled so in ``note``.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, model_validator

from fiscal_sim.catalogue.geography import Geography
from fiscal_sim.catalogue.loader import CompiledProgram, recompile
from fiscal_sim.rules.formula import Strict
from fiscal_sim.uptake.spec import Count

NonNeg = Annotated[float, Field(ge=0)]
GRADE = "grade"


class Price(Strict):
    """A user's price for an unpriced program: amounts by grade, the grade mix, and the count if the catalogue has none."""

    amounts: Union[NonNeg, dict[str, NonNeg]] = Field(description="one amount, or an amount per grade (program unit)")
    shares: dict[str, Annotated[float, Field(ge=0, le=1)]] | None = Field(
        default=None, description="share of awards in each grade (sum 1); default equal"
    )
    count: Count | None = Field(default=None, description="awards a year; default the catalogue's uptake count")
    note: str = Field(min_length=4, description="where the amounts come from (they are not in the document)")

    @model_validator(mode="after")
    def _grades(self):
        if self.shares is not None:
            if not isinstance(self.amounts, dict):
                raise ValueError("shares need amounts by grade")
            if set(self.shares) != set(self.amounts):
                raise ValueError(f"shares are for grades {sorted(self.shares)}, amounts for {sorted(self.amounts)}")
            if abs(sum(self.shares.values()) - 1) > 1e-6:
                raise ValueError(f"shares sum to {sum(self.shares.values()):g}, not 1")
        return self


def priced(prog: CompiledProgram, price: Price, geo: Geography, problem) -> CompiledProgram | None:
    """``prog`` priced by ``price``; ``problem(path, message)`` is called for each problem (then None)."""
    if prog.priced:
        problem((), "the program is priced already (its amounts come from the document); use overrides to change them")
        return None
    up = prog.spec.uptake
    if price.count is None and up is None:
        problem(("count",), "the catalogue states no uptake for this program: give count (awards a year)")
        return None
    amounts = price.amounts if isinstance(price.amounts, dict) else {"single": price.amounts}
    shares = price.shares or {g: 1 / len(amounts) for g in amounts}
    note = f"priced by the scenario: {price.note}"
    data: dict[str, Any] = prog.spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    data |= {
        "status": "priced",
        "inputs": {
            GRADE: {"type": "category", "values": list(amounts), "description": "grade (分档) set by the scenario"}
        },
        "formula": {"kind": "tiered", "by": GRADE, "amounts": amounts, "clause": prog.spec.source.quote},
        "assumptions": list(prog.spec.assumptions) + [note],
    }
    uptake: dict[str, Any] = (
        up.model_dump(by_alias=True, mode="json", exclude_none=True) if up else {"basis": "assumption", "note": note}
    )
    if price.count is not None:
        uptake["count"] = price.count.model_dump(by_alias=True, mode="json", exclude_none=True)
    uptake["inputs"] = {GRADE: {"dist": "categorical", "probs": shares}}
    data["uptake"] = uptake
    return recompile(prog, data, geo, problem)
