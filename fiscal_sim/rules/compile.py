"""Compile a formula tree into a flat sequence of array operations.

The interpreter in :mod:`fiscal_sim.rules.formula` walks the tree for every
evaluation and (for traces) records each step. For simulation the same tree is
compiled once per program into a :class:`CompiledFormula`:

* parts that depend only on category inputs (tiers, options, amounts by tier,
  uplifts on an age band) are evaluated once per category combination into a
  small table, and looked up with one gather per applicant;
* a ``choice`` whose options have the same shape (e.g. a capped salary share
  whose cap depends on the option) becomes that shape with its category tables
  joined over the option, so nothing is evaluated per option; options of
  different shapes are evaluated only where chosen-by-someone and combined
  with ``np.copyto(where=codes == i)``;
* repeated sub-formulas (YAML anchors) are evaluated once;
* the result is a list of steps over registers, each one numpy call, with
  temporaries reused through ``out=``.

Every applicant's value is computed by the same floating-point operations in
the same order as the interpreter, so compiled and interpreted awards are
bit-identical (``tests/test_compile.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from fiscal_sim.rules import formula as F

# ── expressions (compile time) ────────────────────────────────────────────────


@dataclass(frozen=True)
class Cat:
    """A value that depends only on category inputs ``dims``: ``table[codes…]`` (a scalar when ``dims`` is empty)."""

    dims: tuple[str, ...]
    table: np.ndarray

    def key(self) -> tuple:
        return ("cat", self.dims, self.table.shape, self.table.tobytes())


@dataclass(frozen=True)
class Inp:
    """A per-applicant numeric input (money in yuan)."""

    name: str

    def key(self) -> tuple:
        return ("in", self.name)


@dataclass(frozen=True)
class Op:
    """A numpy operation on per-applicant operands (``args`` are expressions, ``const`` extra scalars)."""

    fn: str
    args: tuple["Expr", ...]
    const: tuple = ()

    def key(self) -> tuple:
        return ("op", self.fn, self.const) + tuple(a.key() for a in self.args)


@dataclass(frozen=True)
class Pick:
    """Options of different shapes: per applicant the option its ``by`` code selects."""

    by: str
    options: tuple["Expr", ...]

    def key(self) -> tuple:
        return ("pick", self.by) + tuple(o.key() for o in self.options)


Expr = Union[Cat, Inp, Op, Pick]


def _scalar(v: float) -> Cat:
    return Cat((), np.asarray(float(v)))


def _align(c: Cat, dims: tuple[str, ...]) -> np.ndarray:
    """``c.table`` laid out over ``dims`` (a superset of ``c.dims``), size-1 axes where absent."""
    order = [c.dims.index(d) for d in dims if d in c.dims]
    t = np.transpose(c.table, order) if order else c.table
    shape = [c.table.shape[c.dims.index(d)] if d in c.dims else 1 for d in dims]
    return np.reshape(t, shape)


def _union(cats: list[Cat]) -> tuple[str, ...]:
    dims: list[str] = []
    for c in cats:
        dims += [d for d in c.dims if d not in dims]
    return tuple(dims)


# numpy functions of the operations; each takes operands and an optional ``out``
_FUNCS: dict[str, Any] = {
    "mul": np.multiply,
    "add": np.add,
    "sub": np.subtract,
    "div": np.divide,
    "min": np.minimum,
    "max": np.maximum,
    "lt": np.less,
    "le": np.less_equal,
    "gt": np.greater,
    "ge": np.greater_equal,
}


def _apply(fn: str, vals: list, const: tuple, out=None):
    """One operation on arrays or tables (the same arithmetic for both)."""
    if fn in _FUNCS:
        return _FUNCS[fn](*vals, *const, out=out) if out is not None else _FUNCS[fn](*vals, *const)
    if fn == "pos":  # max(x, 0)
        return np.maximum(vals[0], 0.0, out=out) if out is not None else np.maximum(vals[0], 0.0)
    if fn == "clip01":
        return np.clip(vals[0], 0.0, 1.0, out=out) if out is not None else np.clip(vals[0], 0.0, 1.0)
    if fn == "where0":  # of where cond, else 0
        return np.where(vals[0], vals[1], 0.0)
    if fn == "if_mul":  # of × factor where cond, else of
        return np.where(vals[0], vals[1] * const[0], vals[1])
    raise AssertionError(fn)


def op(fn: str, *args: Expr, const: tuple = ()) -> Expr:
    """An operation, folded into a table when every operand depends only on categories."""
    if all(isinstance(a, Cat) for a in args):
        cats: list[Cat] = list(args)  # type: ignore[arg-type]
        dims = _union(cats)
        return Cat(dims, np.asarray(_apply(fn, [_align(c, dims) for c in cats], const)))
    return Op(fn, tuple(args), const)


def _merge(by: str, options: list[Expr]) -> Expr | None:
    """Options of one choice as a single expression over ``by`` (None when their shapes differ)."""
    if all(o.key() == options[0].key() for o in options):
        return options[0]
    if all(isinstance(o, Cat) for o in options):
        cats: list[Cat] = options  # type: ignore[assignment]
        dims = _union(cats)
        tables = [_align(c, dims) for c in cats]
        shape = np.broadcast_shapes(*(t.shape for t in tables))
        return Cat((by,) + dims, np.stack([np.broadcast_to(t, shape) for t in tables]))
    first = options[0]
    if all(
        isinstance(o, Op) and o.fn == first.fn and o.const == first.const and len(o.args) == len(first.args)  # type: ignore[union-attr]
        for o in options
    ):
        args = [_merge(by, [o.args[k] for o in options]) for k in range(len(first.args))]  # type: ignore[union-attr]
        if all(a is not None for a in args):
            return op(first.fn, *args, const=first.const)  # type: ignore[union-attr,arg-type]
    return None


class _Compiler:
    def __init__(self, categories: dict[str, list[str]], unit_cny: float, money_scale: dict[str, float]):
        self.categories, self.unit, self.money = categories, unit_cny, money_scale

    def param(self, p: Any, money: bool = False) -> Cat:
        scale = self.unit if money else 1.0
        if isinstance(p, F.ByInput):
            return Cat((p.by,), np.array([p.values[c] for c in self.categories[p.by]], dtype=float) * scale)
        return _scalar(float(p) * scale)

    def operand(self, base: "str | F.Node") -> Expr:
        return Inp(base) if isinstance(base, str) else self.expr(base)

    def condition(self, c: F.Condition) -> Expr:
        if c.is_in is not None:
            cats = self.categories[c.input]
            return Cat((c.input,), np.array([v in c.is_in for v in cats]))
        x: Expr = Inp(c.input)
        if c.input in self.money:
            x = Op("div", (x,), (self.money[c.input],))
        for name in ("lt", "le", "gt", "ge"):
            if getattr(c, name) is not None:
                return Op(name, (x,), (getattr(c, name),))
        raise AssertionError

    def expr(self, n: F.Node) -> Expr:  # noqa: C901 - one case per node kind
        if isinstance(n, F.Fixed):
            return self.param(n.amount, True)
        if isinstance(n, F.Tiered):
            return Cat((n.by,), np.array([n.amounts[c] for c in self.categories[n.by]], dtype=float) * self.unit)
        if isinstance(n, F.Rate):
            return op("mul", self.param(n.rate), self.operand(n.base))
        if isinstance(n, F.Excess):
            return op("mul", self.param(n.rate), op("pos", op("sub", Inp(n.base), self.param(n.threshold, True))))
        if isinstance(n, F.Cap):
            return op("min", self.expr(n.of), self.param(n.max, True))
        if isinstance(n, F.Floor):
            return op("max", self.expr(n.of), self.param(n.min, True))
        if isinstance(n, F.Match):
            return op("mul", self.param(n.ratio), op("pos", Inp(n.grant)))
        if isinstance(n, F.UpTo):
            return op("mul", op("clip01", Inp(n.share)), self.param(n.max, True))
        if isinstance(n, F.Uplift):
            cond = self.condition(n.when)
            if isinstance(cond, Cat):  # × factor where it holds, × 1 elsewhere: the same products
                return op("mul", self.expr(n.of), Cat(cond.dims, np.where(cond.table, n.factor, 1.0)))
            return op("if_mul", cond, self.expr(n.of), const=(n.factor,))
        if isinstance(n, F.When):
            return op("where0", self.condition(n.when), self.expr(n.of))
        if isinstance(n, (F.Sum, F.Highest)):
            fn = "add" if isinstance(n, F.Sum) else "max"
            out = self.expr(n.terms[0])
            for t in n.terms[1:]:  # left to right, as numpy reduces a stack along its first axis
                out = op(fn, out, self.expr(t))
            return out
        if isinstance(n, F.Choice):
            opts = [self.expr(n.options[c]) for c in self.categories[n.by]]
            merged = _merge(n.by, opts)
            return merged if merged is not None else Pick(n.by, tuple(opts))
        raise TypeError(f"no compiler for formula kind {type(n).__name__}")


# ── plan (run time) ───────────────────────────────────────────────────────────

Step = tuple
"""``(kind, out_register, …)``: see :meth:`CompiledFormula.__call__`."""


@dataclass
class CompiledFormula:
    """A compiled formula: steps over registers; plain data, so it pickles."""

    steps: list[Step]
    result: int | float
    """register holding the result, or the award itself when it is the same for everyone"""
    n_regs: int
    shapes: dict[str, int]
    """number of categories of each category input"""

    def __call__(self, inputs: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Each applicant's value (float64, length ``n``)."""
        if isinstance(self.result, float):
            return np.full(n, self.result)
        r: list[Any] = [None] * self.n_regs
        for s in self.steps:
            kind = s[0]
            if kind == "input":  # out, name
                r[s[1]] = inputs[s[2]]
            elif kind == "index":  # out, dims: flat index into a table over several category inputs
                dims = s[2]
                idx = np.multiply(inputs[dims[0]], self.shapes[dims[1]], dtype=np.intp)
                idx += inputs[dims[1]]
                for d in dims[2:]:
                    idx *= self.shapes[d]
                    idx += inputs[d]
                r[s[1]] = idx
            elif kind == "gather":  # out, table (flat), index register
                r[s[1]] = np.take(s[2], r[s[3]])
            elif kind == "op":  # out, fn, operand registers or scalars, const, in-place target or -1
                vals = [r[a] if isinstance(a, int) else a for a in s[3]]
                r[s[1]] = _apply(s[2], vals, s[4], out=r[s[5]] if s[5] >= 0 else None)
            elif kind == "pick":  # out, code register, option registers or scalars
                codes, out = r[s[2]], np.zeros(n)
                for i, o in enumerate(s[3]):
                    if o is not None:
                        np.copyto(out, r[o] if isinstance(o, int) else o, where=codes == i)
                r[s[1]] = out
            elif kind == "free":
                r[s[1]] = None
        out = r[self.result]
        return out if out.dtype == np.float64 and out.shape == (n,) else np.broadcast_to(out, (n,)).astype(np.float64)


class _Linker:
    """Expressions → steps, with common sub-expressions evaluated once and temporaries reused."""

    def __init__(self, shapes: dict[str, int]):
        self.shapes = shapes
        self.steps: list[list] = []
        self.regs: dict[tuple, int] = {}
        self.owned: set[int] = set()  # registers holding temporaries a step may overwrite
        self.uses: dict[int, int] = {}

    def reg(self, key: tuple, step: list, owned: bool) -> int:
        r = len(self.regs)
        self.regs[key] = r
        step.insert(1, r)
        self.steps.append(step)
        if owned:
            self.owned.add(r)
        return r

    def code(self, dims: tuple[str, ...]) -> int:
        key = ("index",) + dims
        if key in self.regs:
            return self.regs[key]
        if len(dims) == 1:
            return self.reg(key, ["input", dims[0]], False)
        return self.reg(key, ["index", dims], False)

    def operand(self, e: Expr) -> int | float:
        if isinstance(e, Cat) and not e.dims:
            return float(e.table)
        return self.link(e)

    def link(self, e: Expr) -> int:
        k = e.key()
        if k in self.regs:
            return self.regs[k]
        if isinstance(e, Inp):
            return self.reg(k, ["input", e.name], False)
        if isinstance(e, Cat):
            if not e.dims:
                raise AssertionError("scalars are operands")
            return self.reg(k, ["gather", np.ascontiguousarray(e.table).reshape(-1), self.code(e.dims)], True)
        if isinstance(e, Pick):
            opts = [self.operand(o) for o in e.options]
            return self.reg(k, ["pick", self.code((e.by,)), opts], True)
        args = [self.operand(a) for a in e.args]
        return self.reg(k, ["op", e.fn, args, e.const, -1], e.fn not in ("lt", "le", "gt", "ge"))

    def finish(self, result: int) -> list[Step]:
        """Reuse a temporary as a step's output when that step is its last reader."""
        last: dict[int, int] = {}
        for i, s in enumerate(self.steps):
            refs = s[3] if s[0] in ("op", "pick") else []
            for a in refs:
                if isinstance(a, int):
                    last[a] = i
            if s[0] in ("gather",):
                last[s[3]] = i
            if s[0] == "pick":
                last[s[2]] = i
        last[result] = len(self.steps)
        for i, s in enumerate(self.steps):
            if s[0] == "op" and (s[2] in _FUNCS or s[2] in ("pos", "clip01")):
                first = s[3][0]
                if isinstance(first, int) and first in self.owned and last.get(first) == i:
                    s[5] = first
        return [tuple(s) for s in self.steps]


def compile_formula(
    formula: F.Node, categories: dict[str, list[str]], unit_cny: float, money_scale: dict[str, float] | None = None
) -> CompiledFormula:
    """Compile ``formula`` for a program's categories and unit (see the module docstring)."""
    e = _Compiler(categories, unit_cny, money_scale or {}).expr(formula)
    shapes = {k: len(v) for k, v in categories.items()}
    if isinstance(e, Cat) and not e.dims:
        return CompiledFormula([], float(e.table), 0, shapes)
    ln = _Linker(shapes)
    r = ln.link(e)
    return CompiledFormula(ln.finish(r), r, len(ln.regs), shapes)
