"""Amounts as the bureau writes them: 万元 for program lines, 亿元 for large totals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class Unit:
    label: str
    cny: float
    decimals: int

    def value(self, cny: float | None) -> float | None:
        return None if cny is None else cny / self.cny

    def fmt(self, cny: float | None, signed: bool = False) -> str:
        """``12,345`` (万元) or ``3.21`` (亿元); empty for a missing value."""
        if cny is None or (isinstance(cny, float) and np.isnan(cny)):
            return ""
        v = cny / self.cny
        if abs(v) < 0.5 * 10**-self.decimals:
            v = 0.0
        return f"{v:+,.{self.decimals}f}" if signed else f"{v:,.{self.decimals}f}"


WAN = Unit("万元", 1e4, 0)
WAN_1 = Unit("万元", 1e4, 1)
YI = Unit("亿元", 1e8, 2)


def unit_for(values_cny: Iterable[float | None]) -> Unit:
    """亿元 when the typical amount is 1亿元 or more, else 万元 (one decimal below 100万元)."""
    vals = np.array([abs(v) for v in values_cny if v is not None and np.isfinite(v) and v != 0], float)
    if vals.size == 0:
        return WAN
    typical = float(np.median(vals))
    if typical >= 1e8:
        return YI
    return WAN if typical >= 1e6 else WAN_1


def both(cny: float | None) -> str:
    """``123,456万元（12.35亿元）``: a headline figure in both units."""
    if cny is None:
        return ""
    return f"{WAN.fmt(cny)}万元（{YI.fmt(cny)}亿元）"


def pct(p: float | None, signed: bool = False) -> str:
    if p is None or (isinstance(p, float) and np.isnan(p)):
        return ""
    return f"{100 * p:+.1f}%" if signed else f"{100 * p:.1f}%"
