"""Money units. Programs are written in their document's unit; the code works in yuan.

Every amount in code and output carries its unit in its name: ``*_cny`` is yuan
(元), ``*_wan`` is 万元 (10,000 yuan), ``*_yi`` is 亿元 (100,000,000 yuan).
"""

from __future__ import annotations

import math
import re
from typing import Literal

MoneyUnit = Literal["元", "万元", "亿元"]

CNY_PER_UNIT: dict[str, float] = {"元": 1.0, "万元": 1e4, "亿元": 1e8}
UNIT_ALIASES: dict[str, str] = {
    "元": "元",
    "yuan": "元",
    "cny": "元",
    "万元": "万元",
    "万": "万元",
    "wan": "万元",
    "亿元": "亿元",
    "亿": "亿元",
    "yi": "亿元",
}


BARE_YUAN_LOOKING_CNY = 1e9
"""a bare number that makes 10亿元 or more in a 万元 (or 亿元) input is taken for yuan typed without a unit and
refused with both readings (the largest single award in the documents is 1亿元)"""


def cny_per(unit: str) -> float:
    """Yuan in one ``unit`` (``"万元"`` → 10,000)."""
    try:
        return CNY_PER_UNIT[UNIT_ALIASES[unit]]
    except KeyError:
        raise ValueError(f"unknown unit {unit!r}; accepted units: {', '.join(UNIT_ALIASES)}") from None


def parse_number(text: str) -> float:
    """A finite number (``inf`` and ``nan`` are refused)."""
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite number")
    return v


_AMOUNT = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?|[-+]?(?:inf|infinity|nan))\s*(.*)", re.I)


def parse_money(text: str | float, default_unit: str) -> float:
    """Parse ``"35"``, ``"35万元"``, ``"350000元"`` or ``"1.2亿"`` into yuan (finite and not negative).

    Typed text (a ``str``) without a unit that would make 10亿元 or more in a 万元/亿元 input is refused as
    probably yuan; a number from a data file (``int``/``float``, its unit declared by the file) is not."""
    typed = isinstance(text, str)
    text = str(text)
    m = _AMOUNT.fullmatch(text.strip().replace(",", ""))
    form = f"write a number in {default_unit} or a number with a unit, e.g. 200, 200{default_unit}, 2000000元, 1.2亿"
    if not m:
        raise ValueError(f"{text!r} is not an amount: {form}")
    unit = m.group(2).strip()
    if unit and unit.lower() not in UNIT_ALIASES:
        raise ValueError(
            f"{text!r} is not an amount: unknown unit {unit!r} (accepted units: {', '.join(UNIT_ALIASES)}); {form}"
        )
    number = parse_number(m.group(1))
    v = number * cny_per(unit.lower() or default_unit)
    if typed and not unit and cny_per(default_unit) > 1 and v >= BARE_YUAN_LOOKING_CNY:
        raise ValueError(
            f"{text!r} has no unit: in {UNIT_ALIASES[default_unit]} it would be {fmt_wan(v)}, which looks "
            f"like an amount in yuan ({fmt_wan(number)}). Say which: write {m.group(1)}元 for "
            f"{fmt_wan(number)}, or {m.group(1)}{UNIT_ALIASES[default_unit]} if you mean {fmt_wan(v)}"
        )
    if v < 0:
        raise ValueError(f"{text!r} is negative: an amount of money is 0 or more")
    return v


def fmt_wan(cny: float) -> str:
    """Format yuan the way the bureau writes it: 万元, or 亿元 from 1亿 up."""
    if abs(cny) >= 1e8:
        return f"{cny / 1e8:,.4g}亿元"
    return f"{cny / 1e4:,.4f}".rstrip("0").rstrip(".") + "万元"
