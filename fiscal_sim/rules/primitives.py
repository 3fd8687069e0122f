"""Formula primitives: pure, vectorised numpy functions.

Every function takes arrays (or scalars that broadcast) and returns a float64
array. Money is in whatever unit the caller passes in; the program layer always
passes yuan (``*_cny``). No function here draws random numbers or does I/O.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

Array = NDArray[np.float64]


def _f(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


def fixed(amount: ArrayLike, n: int) -> Array:
    """A fixed amount for each of ``n`` applicants (``amount`` may be per-applicant)."""
    return np.broadcast_to(_f(amount), (n,)).copy()


def by_tier(codes: ArrayLike, table: ArrayLike) -> Array:
    """Look up ``table[code]`` for each applicant's integer tier code."""
    codes = np.asarray(codes, dtype=np.intp)
    return _f(table)[codes]


def rate_of(base: ArrayLike, rate: ArrayLike) -> Array:
    """``rate × base`` (e.g. 10% of the investment)."""
    return _f(rate) * _f(base)


def excess_over(base: ArrayLike, threshold: ArrayLike, rate: ArrayLike) -> Array:
    """``rate × max(base − threshold, 0)``: the part of the base above a threshold."""
    return _f(rate) * np.maximum(_f(base) - _f(threshold), 0.0)


def cap(amount: ArrayLike, maximum: ArrayLike) -> Array:
    """Per-award cap ("最高不超过"): ``min(amount, maximum)``."""
    return np.minimum(_f(amount), _f(maximum))


def floor(amount: ArrayLike, minimum: ArrayLike) -> Array:
    """Per-award floor ("不低于"): ``max(amount, minimum)``."""
    return np.maximum(_f(amount), _f(minimum))


def match(grant: ArrayLike, ratio: ArrayLike = 1.0) -> Array:
    """Matching of an external (national/provincial) grant: ``ratio × grant`` (1:1 → 1.0)."""
    return _f(ratio) * np.maximum(_f(grant), 0.0)


def choose(option_codes: ArrayLike, options: list[ArrayLike]) -> Array:
    """Per applicant, the value of the option it chose (``options[code][i]``)."""
    codes = np.asarray(option_codes, dtype=np.intp)
    stacked = (
        np.stack([np.broadcast_to(_f(o), codes.shape) for o in options]) if options else np.zeros((0,) + codes.shape)
    )
    return np.take_along_axis(stacked, codes[None, :], axis=0)[0] if codes.size else np.zeros(0)


def multiply_if(amount: ArrayLike, condition: ArrayLike, factor: ArrayLike) -> Array:
    """Multiply by ``factor`` where ``condition`` holds (e.g. +5% under age 35 → 1.05)."""
    return np.where(np.asarray(condition, dtype=bool), _f(amount) * _f(factor), _f(amount))


def up_to(maximum: ArrayLike, share: ArrayLike) -> Array:
    """An "up to" award ("最高…万元"): ``clip(share, 0, 1) × maximum``.

    The share granted is an input (sampled by the uptake model), so the rule
    itself stays deterministic.
    """
    return np.clip(_f(share), 0.0, 1.0) * _f(maximum)
