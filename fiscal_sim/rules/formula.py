"""Declarative formulas: composable nodes that evaluate the primitives over arrays.

A formula is a tree of nodes, each with a ``kind``. It is written in a program
file in the document's money unit and evaluated in yuan: ``EvalContext.unit_cny``
is the number of yuan per written unit. Category inputs arrive as integer codes
into the program's declared category list. Evaluation is pure and vectorised;
with ``trace`` set it also records each step and the clause it implements.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Iterator, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fiscal_sim.rules import primitives as P
from fiscal_sim.units import fmt_wan


class Strict(BaseModel):
    # defer_build: a model's validator is built on its first validation, not at import, so commands that
    # read the compiled catalogue from the cache (``calc``, ``programs list``) never pay for schema building;
    # inf and nan are never a valid input
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)


class ByInput(Strict):
    """A parameter that depends on a category input: ``{by: tier, values: {A: 500, B: 300}}``."""

    by: str
    values: dict[str, float]


NonNeg = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(ge=0, le=1)]


class ByInputMoney(ByInput):
    values: dict[str, NonNeg]


class ByInputRate(ByInput):
    values: dict[str, Fraction]


MoneyParam = Union[NonNeg, ByInputMoney]
"""Money in the program's unit; a number or a table by category."""
RateParam = Union[Fraction, ByInputRate]
"""A rate between 0 and 1 (10% → 0.10); a number or a table by category."""
RatioParam = Union[NonNeg, ByInput]


@dataclass
class TraceStep:
    kind: str
    text: str
    value_cny: float
    clause: str | None
    depth: int


@dataclass
class EvalContext:
    """Inputs for one evaluation: ``n`` applicants, arrays in yuan / codes / numbers."""

    n: int
    inputs: dict[str, np.ndarray]
    categories: dict[str, list[str]]
    unit_cny: float
    trace: list[TraceStep] | None = None
    depth: int = 0
    money_scale: dict[str, float] | None = None
    """yuan per written unit of each money input (conditions compare money in the program's unit)"""

    def param(self, p: Any, money: bool = False) -> np.ndarray | float:
        """Resolve a scalar-or-table parameter; money is converted to yuan."""
        scale = self.unit_cny if money else 1.0
        if isinstance(p, ByInput):
            table = np.array([p.values[c] for c in self.categories[p.by]], dtype=float)
            return P.by_tier(self.inputs[p.by], table) * scale
        return float(p) * scale

    def record(self, kind: str, text: str, value: np.ndarray, clause: str | None) -> None:
        if self.trace is not None and self.n:
            self.trace.append(TraceStep(kind, text, float(value[0]), clause, self.depth))

    def label(self, p: Any, money: bool) -> str:
        """Describe a parameter's value for the first applicant (for traces)."""
        v = self.param(p, money)
        v0 = float(np.asarray(v).reshape(-1)[0]) if np.ndim(v) else float(v)
        txt = fmt_wan(v0) if money else (f"{v0:.4g}" if v0 > 1 else f"{v0:.2%}")
        if isinstance(p, ByInput):
            cat = self.categories[p.by][int(self.inputs[p.by][0])]
            txt += f" ({p.by}={cat})"
        return txt


class Node(Strict):
    clause: str | None = Field(default=None, description="verbatim wording this step implements")

    def evaluate(self, ctx: EvalContext) -> np.ndarray:
        if ctx.trace is None:
            return self._eval(ctx)
        ctx.depth += 1
        out = self._eval(ctx)
        ctx.depth -= 1
        # post-order: inner steps first, as a reader computes them
        ctx.record(self.kind, self.describe(ctx, out), out, self.clause)  # type: ignore[attr-defined]
        return out

    def _eval(self, ctx: EvalContext) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self, ctx: EvalContext, out: np.ndarray) -> str:
        return f"{self.kind} = {fmt_wan(float(out[0]))}"  # type: ignore[attr-defined]

    def children(self) -> Iterator["Node"]:
        return iter(())

    def params(self) -> Iterator[tuple[str, Any, bool]]:
        """Yield ``(field, parameter, is_money)`` for this node's own parameters."""
        return iter(())

    def input_refs(self) -> Iterator[tuple[str, str]]:
        """Yield ``(input_name, expected_type)`` this node reads directly."""
        for _, p, _ in self.params():
            if isinstance(p, ByInput):
                yield p.by, "category"

    def walk(self, path: tuple = ()) -> Iterator[tuple[tuple, "Node"]]:
        yield path, self
        for name, child in self.named_children():
            yield from child.walk(path + name)

    def named_children(self) -> Iterator[tuple[tuple, "Node"]]:
        return iter(())


def _operand(ctx: EvalContext, base: "str | Node") -> np.ndarray:
    return ctx.inputs[base] if isinstance(base, str) else base.evaluate(ctx)


def _operand_text(ctx: EvalContext, base: "str | Node") -> str:
    if isinstance(base, str):
        return f"{base} {fmt_wan(float(ctx.inputs[base][0]))}"
    return "the amount above"


class Fixed(Node):
    """A fixed amount per award."""

    kind: Literal["fixed"]
    amount: MoneyParam

    def _eval(self, ctx):
        return P.fixed(ctx.param(self.amount, True), ctx.n)

    def describe(self, ctx, out):
        return f"fixed amount {ctx.label(self.amount, True)}"

    def params(self):
        yield "amount", self.amount, True


class Tiered(Node):
    """An amount by tier or category: ``{by: tier, amounts: {A: 500, B: 300}}``."""

    kind: Literal["tiered"]
    by: str
    amounts: dict[str, NonNeg]

    def _eval(self, ctx):
        table = np.array([self.amounts[c] for c in ctx.categories[self.by]], dtype=float)
        return P.by_tier(ctx.inputs[self.by], table * ctx.unit_cny)

    def describe(self, ctx, out):
        cat = ctx.categories[self.by][int(ctx.inputs[self.by][0])]
        return f"amount for {self.by}={cat}: {fmt_wan(float(out[0]))}"

    def params(self):
        yield "amounts", ByInputMoney(by=self.by, values=self.amounts), True


class Rate(Node):
    """``rate × base``; the base is an input name or a nested formula."""

    kind: Literal["rate"]
    rate: RateParam
    base: Union[str, "Formula"]

    def _eval(self, ctx):
        return P.rate_of(_operand(ctx, self.base), ctx.param(self.rate))

    def describe(self, ctx, out):
        return f"{ctx.label(self.rate, False)} × {_operand_text(ctx, self.base)} = {fmt_wan(float(out[0]))}"

    def params(self):
        yield "rate", self.rate, False

    def input_refs(self):
        yield from super().input_refs()
        if isinstance(self.base, str):
            yield self.base, "money"

    def named_children(self):
        if not isinstance(self.base, str):
            yield ("base",), self.base


class Excess(Node):
    """``rate × max(base − threshold, 0)``: the part above a threshold."""

    kind: Literal["excess"]
    base: str
    threshold: MoneyParam
    rate: RateParam

    def _eval(self, ctx):
        return P.excess_over(ctx.inputs[self.base], ctx.param(self.threshold, True), ctx.param(self.rate))

    def describe(self, ctx, out):
        return (
            f"{ctx.label(self.rate, False)} × ({_operand_text(ctx, self.base)} − threshold "
            f"{ctx.label(self.threshold, True)}) = {fmt_wan(float(out[0]))}"
        )

    def params(self):
        yield "threshold", self.threshold, True
        yield "rate", self.rate, False

    def input_refs(self):
        yield from super().input_refs()
        yield self.base, "money"


class Cap(Node):
    """Per-award cap ("最高不超过"): ``min(of, max)``."""

    kind: Literal["cap"]
    of: "Formula"
    max: MoneyParam

    def _eval(self, ctx):
        return P.cap(self.of.evaluate(ctx), ctx.param(self.max, True))

    def describe(self, ctx, out):
        return f"capped at {ctx.label(self.max, True)} → {fmt_wan(float(out[0]))}"

    def params(self):
        yield "max", self.max, True

    def named_children(self):
        yield ("of",), self.of


class Floor(Node):
    """Per-award floor ("不低于"): ``max(of, min)``."""

    kind: Literal["floor"]
    of: "Formula"
    min: MoneyParam

    def _eval(self, ctx):
        return P.floor(self.of.evaluate(ctx), ctx.param(self.min, True))

    def describe(self, ctx, out):
        return f"at least {ctx.label(self.min, True)} → {fmt_wan(float(out[0]))}"

    def params(self):
        yield "min", self.min, True

    def named_children(self):
        yield ("of",), self.of


class Match(Node):
    """Matching of an external grant at a ratio (1:1 → ``ratio: 1``)."""

    kind: Literal["match"]
    grant: str
    ratio: RatioParam = 1.0

    def _eval(self, ctx):
        return P.match(ctx.inputs[self.grant], ctx.param(self.ratio))

    def describe(self, ctx, out):
        return f"match {_operand_text(ctx, self.grant)} at {ctx.label(self.ratio, False)}:1 = {fmt_wan(float(out[0]))}"

    def params(self):
        yield "ratio", self.ratio, False

    def input_refs(self):
        yield from super().input_refs()
        yield self.grant, "money"


class Choice(Node):
    """The applicant's chosen option (e.g. purchase subsidy or rent subsidy)."""

    kind: Literal["choice"]
    by: str
    options: dict[str, "Formula"]

    def _eval(self, ctx):
        codes = ctx.inputs[self.by]
        chosen = set(np.unique(codes).tolist())
        # options nobody chose are not evaluated (and so not traced)
        values = [
            self.options[c].evaluate(ctx) if i in chosen else np.zeros(ctx.n)
            for i, c in enumerate(ctx.categories[self.by])
        ]
        return P.choose(codes, values)

    def describe(self, ctx, out):
        cat = ctx.categories[self.by][int(ctx.inputs[self.by][0])]
        return f"option {self.by}={cat} chosen → {fmt_wan(float(out[0]))}"

    def input_refs(self):
        yield self.by, "category"

    def named_children(self):
        for k, v in self.options.items():
            yield ("options", k), v


class Condition(Strict):
    """A test on one input: numeric comparison or category membership."""

    input: str
    lt: float | None = None
    le: float | None = None
    gt: float | None = None
    ge: float | None = None
    is_in: list[str] | None = Field(default=None, alias="in")

    @model_validator(mode="after")
    def _one_test(self):
        if sum(v is not None for v in (self.lt, self.le, self.gt, self.ge, self.is_in)) != 1:
            raise ValueError("a condition needs exactly one of lt, le, gt, ge, in")
        return self

    def holds(self, ctx: EvalContext) -> np.ndarray:
        x = ctx.inputs[self.input]
        if ctx.money_scale and self.input in ctx.money_scale:
            x = x / ctx.money_scale[self.input]
        if self.is_in is not None:
            cats = ctx.categories[self.input]
            return np.isin(x, [cats.index(c) for c in self.is_in])
        for op, v in (("lt", self.lt), ("le", self.le), ("gt", self.gt), ("ge", self.ge)):
            if v is not None:
                return getattr(np, {"lt": "less", "le": "less_equal", "gt": "greater", "ge": "greater_equal"}[op])(x, v)
        raise AssertionError

    def text(self) -> str:
        for op, sym in (("lt", "<"), ("le", "≤"), ("gt", ">"), ("ge", "≥")):
            if getattr(self, op) is not None:
                return f"{self.input} {sym} {getattr(self, op):g}"
        return f"{self.input} in {self.is_in}"


class Uplift(Node):
    """A multiplier under a condition: ``of × factor`` where ``when`` holds."""

    kind: Literal["uplift"]
    of: "Formula"
    factor: Annotated[float, Field(gt=0)]
    when: Condition

    def _eval(self, ctx):
        return P.multiply_if(self.of.evaluate(ctx), self.when.holds(ctx), self.factor)

    def describe(self, ctx, out):
        held = bool(self.when.holds(ctx)[0])
        return f"× {self.factor:g} if {self.when.text()}: {'applies' if held else 'does not apply'} → {fmt_wan(float(out[0]))}"

    def input_refs(self):
        yield self.when.input, "category" if self.when.is_in is not None else "number"

    def named_children(self):
        yield ("of",), self.of


class When(Node):
    """An eligibility gate: ``of`` where the condition holds, else 0 (e.g. 累计投资超过3000万元)."""

    kind: Literal["when"]
    when: Condition
    of: "Formula"

    def _eval(self, ctx):
        return np.where(self.when.holds(ctx), self.of.evaluate(ctx), 0.0)

    def describe(self, ctx, out):
        held = bool(self.when.holds(ctx)[0])
        return f"only if {self.when.text()}: {'eligible' if held else 'not eligible'} → {fmt_wan(float(out[0]))}"

    def input_refs(self):
        yield self.when.input, "category" if self.when.is_in is not None else "number"

    def named_children(self):
        yield ("of",), self.of


class Sum(Node):
    """The sum of several formulas (e.g. a building grant plus a running grant)."""

    kind: Literal["sum"]
    terms: list["Formula"] = Field(min_length=1)

    def _eval(self, ctx):
        return np.sum([t.evaluate(ctx) for t in self.terms], axis=0)

    def named_children(self):
        for i, t in enumerate(self.terms):
            yield ("terms", i), t


class Highest(Node):
    """The highest of several formulas (就高 within one program)."""

    kind: Literal["max"]
    terms: list["Formula"] = Field(min_length=1)

    def _eval(self, ctx):
        return np.max([t.evaluate(ctx) for t in self.terms], axis=0)

    def describe(self, ctx, out):
        return f"highest of {len(self.terms)} → {fmt_wan(float(out[0]))}"

    def named_children(self):
        for i, t in enumerate(self.terms):
            yield ("terms", i), t


class UpTo(Node):
    """An "up to" award: ``share × max``, the share (0–1) being an input the uptake model draws."""

    kind: Literal["up_to"]
    max: MoneyParam
    share: str = "grant_share"

    def _eval(self, ctx):
        return P.up_to(ctx.param(self.max, True), ctx.inputs[self.share])

    def describe(self, ctx, out):
        return f"up to {ctx.label(self.max, True)}; share granted {float(ctx.inputs[self.share][0]):.0%} → {fmt_wan(float(out[0]))}"

    def params(self):
        yield "max", self.max, True

    def input_refs(self):
        yield from super().input_refs()
        yield self.share, "share"


Formula = Annotated[
    Union[Fixed, Tiered, Rate, Excess, Cap, Floor, Match, Choice, Uplift, When, Sum, Highest, UpTo],
    Field(discriminator="kind"),
]


def evaluate(formula: Node, ctx: EvalContext) -> np.ndarray:
    """Evaluate ``formula`` for all applicants in ``ctx`` (yuan)."""
    out = formula.evaluate(ctx)
    return np.broadcast_to(out, (ctx.n,)).astype(np.float64, copy=False)
