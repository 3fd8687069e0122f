"""Aggregate caps over groups of awards, vectorised with sort/group operations.

An aggregate cap limits the *sum* of awards in a group: per entity per year
("每家每年累计不超过100万元"), per person per year, or per entity over its
lifetime ("累计不超过300万元"). Two documented ways to cut an over-cap total:

``proportional``
    every award of the group is scaled by ``cap / group_total`` (no award is
    favoured; used when the document gives no order).
``in_order``
    awards are served in ``order`` (e.g. award date); each gets what is left of
    the cap after the earlier ones, so later awards are cut first. Ties in
    ``order`` keep input order (stable sort).

Both return an array aligned with the input, never above the uncapped awards,
and with every group's total ``<= cap`` (up to float rounding).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Method = Literal["proportional", "in_order"]


def group_totals(amounts: ArrayLike, groups: ArrayLike) -> tuple[NDArray[Any], NDArray[Any]]:
    """Return ``(inverse, totals)``: each row's group index and each group's sum."""
    amounts = np.asarray(amounts, dtype=np.float64)
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, np.bincount(inverse, weights=amounts, minlength=inverse.max() + 1 if inverse.size else 0)


def cap_by_group(
    amounts: ArrayLike,
    groups: ArrayLike,
    cap: ArrayLike,
    method: Method = "proportional",
    order: ArrayLike | None = None,
    already_used: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Cap the sum of ``amounts`` within each group at ``cap``.

    ``groups`` is any array of group keys (ints, or a structured key made with
    :func:`group_key`). ``cap`` is a scalar or one value per row (constant
    within a group). ``already_used`` (per row, constant within a group) is
    the part of the cap consumed before these awards (e.g. earlier years of a
    lifetime cap).
    """
    amounts = np.asarray(amounts, dtype=np.float64)
    n = amounts.shape[0]
    if n == 0:
        return amounts.copy()
    cap_row = np.broadcast_to(np.asarray(cap, dtype=np.float64), (n,))
    used = np.zeros(n) if already_used is None else np.broadcast_to(np.asarray(already_used, float), (n,))
    room = np.maximum(cap_row - used, 0.0)
    if method == "proportional":
        inverse, totals = group_totals(amounts, groups)
        total_row = totals[inverse]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # unused where total <= room
            scale = np.where(total_row > room, room / total_row, 1.0)
        return amounts * scale
    if method == "in_order":
        keys = np.asarray(groups)
        sort_keys = (np.arange(n),) if order is None else (np.asarray(order),)
        idx = np.lexsort(sort_keys + (keys,))  # by group, then order, stable
        a = amounts[idx]
        g = keys[idx]
        starts = np.r_[True, g[1:] != g[:-1]]
        csum = np.cumsum(a)
        group_start_csum = np.maximum.accumulate(np.where(starts, csum - a, 0.0))
        before = csum - a - group_start_csum  # sum of earlier awards in the same group
        granted = np.clip(room[idx] - before, 0.0, a)
        out = np.empty(n)
        out[idx] = granted
        return out
    raise ValueError(f"unknown aggregate-cap method {method!r} (use 'proportional' or 'in_order')")


def group_key(*columns: ArrayLike) -> NDArray[np.int64]:
    """Combine several non-negative integer columns into one int64 group key."""
    key = np.zeros(np.asarray(columns[0]).shape, dtype=np.int64)
    for col in columns:
        col = np.asarray(col, dtype=np.int64)
        width = int(col.max()) + 1 if col.size else 1
        key = key * width + col
    return key
