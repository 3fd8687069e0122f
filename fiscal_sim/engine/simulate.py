"""Draws → awards → schedules → ledger, for one chunk of draws, all draws at once.

For each program: draw counts per (draw, jurisdiction, year); evaluate the
formula per applicant (or, when every applicant gets the same amount, as
count × amount); apply aggregate caps by group; turn awards into cash by year
with the schedule and attrition. The result is the program's ledger in yuan:
commitments made, cash paid and commitments cancelled by attrition, per
(draw, jurisdiction, fiscal year). Outstanding commitments and the payer split
are derived from it (:mod:`fiscal_sim.engine.ledger`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fiscal_sim.rules.aggregate import cap_by_group
from fiscal_sim.scenario import Scenario, SimProgram
from fiscal_sim.uptake.random import shared_shock, stream
from fiscal_sim.uptake.sample import (Applicants, category_probs, count_factors, input_scale, sample_applicants,
                                      sample_counts)

MEASURES = ("committed", "cash", "cancelled")


@dataclass
class ProgramLedger:
    """Ledger of one program for a chunk: arrays (n_draws × J_p × Y) in yuan, plus applicant counts."""

    committed: np.ndarray
    cash: np.ndarray
    cancelled: np.ndarray
    applicants: np.ndarray
    awards: "Awards | None" = None

    @property
    def outstanding(self) -> np.ndarray:
        """Awarded but not yet paid (nor cancelled) at each year end."""
        return np.cumsum(self.committed - self.cash - self.cancelled, axis=2)


@dataclass
class Awards:
    """Per-applicant awards (kept for the simpy pipeline): draw, place, year, amount and cash by offset."""

    draw: np.ndarray
    jur: np.ndarray
    year: np.ndarray
    amount_cny: np.ndarray
    cash_by_offset_cny: np.ndarray


def blocks_of(scen: Scenario, start: int, stop: int) -> list[tuple[int, int, int]]:
    """``(block, first_draw, n_draws)`` for the blocks covering draws ``[start, stop)``."""
    B, N = scen.spec.block_size, scen.spec.draws
    assert start % B == 0, "chunks start on block boundaries"
    return [(b, b * B, min(B, N - b * B)) for b in range(start // B, -(-min(stop, N) // B))]


def needs_applicants(sp: SimProgram) -> bool:
    """Per-applicant work is needed for continuous inputs or group caps; categories alone are done by counts."""
    up = sp.prog.spec.uptake
    if sp.prog.spec.caps:
        return True
    for name, spec in sp.prog.spec.inputs.items():
        dist = up.inputs.get(name) if up else None
        if dist is not None and dist.dist not in ("fixed", "categorical"):
            return True
    return False


def _accumulate(target: np.ndarray, base: np.ndarray, by_offset: np.ndarray, pad: int) -> None:
    """Add per-applicant amounts by year offset into ``target`` (n × J × Y), dropping years past the horizon.

    ``base`` is each applicant's flat cell in an (n × J × (Y + pad)) layout, so no masking is needed.
    """
    n, J, Y = target.shape
    padded = np.zeros(n * J * (Y + pad))
    for t in range(by_offset.shape[1]):
        col = by_offset[:, t]
        if col.any():
            padded += np.bincount(base + t, weights=col, minlength=padded.size)
    target += padded.reshape(n, J, Y + pad)[:, :, :Y]


def simulate_program(scen: Scenario, sp: SimProgram, start: int, stop: int, shocks: dict[int, np.ndarray],
                     keep_awards: bool = False) -> ProgramLedger:
    """Simulate one program for draws ``[start, stop)`` (whole blocks)."""
    spec = scen.spec
    prog = sp.prog
    Y = len(scen.years)
    J = len(sp.jur)
    counts_parts, app_parts = [], []
    per_applicant = needs_applicants(sp) or keep_awards
    for b, first, nb in blocks_of(scen, start, stop):
        rng = stream(spec.seed, b, prog.id)
        f = count_factors(rng, prog, nb, shocks[b], spec.shock.sigma, spec.shock.correlation)
        counts = sample_counts(rng, prog, sp.lam, f)
        counts_parts.append(counts)
        if per_applicant:
            app_parts.append(sample_applicants(rng, prog, counts, first - start, bool(prog.spec.caps)))
        else:
            app_parts.append((rng, counts))  # the category split and attrition use the same stream
    counts = np.concatenate(counts_parts)
    n = counts.shape[0]
    committed = np.zeros((n, J, Y))
    cash = np.zeros((n, J, Y))
    cancelled = np.zeros((n, J, Y))
    awards = None
    if per_applicant:
        apps = Applicants.concat(app_parts)
        ctx = prog.context(apps.inputs, apps.draw.size)
        amount = prog.award_cny(ctx)
        amount = apply_group_caps(sp, apps, amount)
        width = prog.spec.schedule.max_len()
        F, K = prog.spec.schedule.matrices(ctx, width)
        due = amount[:, None] * F
        paid = due if apps.stay is None else np.where(K < apps.stay[:, None], due, 0.0)
        base = (apps.draw * J + apps.jur) * (Y + width) + apps.year
        _accumulate(committed, base, due.sum(axis=1)[:, None], width)
        _accumulate(cash, base, paid, width)
        if apps.stay is not None:
            # a leaver's remaining payments lapse in the year of the first missed payment
            first_missed = np.argmax(K == apps.stay[:, None], axis=1)
            lapse = np.zeros_like(due)
            lapse[np.arange(due.shape[0]), first_missed] = due.sum(axis=1) - paid.sum(axis=1)
            _accumulate(cancelled, base, lapse, width)
        if keep_awards:
            awards = Awards(apps.draw + start, sp.jur[apps.jur], apps.year, amount, paid)
    else:
        grid_ledger(sp, app_parts, committed, cash, cancelled)
    return ProgramLedger(committed, cash, cancelled, counts, awards)


def category_grid(sp: SimProgram) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every combination of the program's category inputs (fixed inputs at their value): names and inputs."""
    prog = sp.prog
    up = prog.spec.uptake
    cats = [n for n, spec in prog.spec.inputs.items() if spec.type == "category" and up.inputs.get(n) is not None
            and up.inputs[n].dist == "categorical"]  # type: ignore[union-attr]
    sizes = [len(prog.spec.inputs[n].values) for n in cats]  # type: ignore[arg-type]
    codes = np.indices(sizes).reshape(len(sizes), -1) if sizes else np.zeros((0, 1), dtype=int)
    C = codes.shape[1]
    inputs: dict[str, np.ndarray] = {n: codes[i] for i, n in enumerate(cats)}
    for name, spec in prog.spec.inputs.items():
        if name in inputs:
            continue
        dist = up.inputs.get(name)  # type: ignore[union-attr]
        value = dist.value if dist is not None else spec.default  # type: ignore[union-attr]
        inputs[name] = (np.full(C, spec.values.index(str(value))) if spec.type == "category"  # type: ignore[union-attr]
                        else np.full(C, float(value) * input_scale(prog, name, dist)))  # type: ignore[arg-type]
    return cats, inputs


def grid_counts(rng: np.random.Generator, sp: SimProgram, cats: list[str], counts: np.ndarray) -> np.ndarray:
    """Split counts (n × J × Y) over the category grid (… × C) with each draw's mix (multinomial)."""
    n = counts.shape[0]
    up = sp.prog.spec.uptake
    probs = np.ones((n, 1))
    for name in cats:
        p = category_probs(rng, up.inputs[name], sp.prog.spec.inputs[name].values, n)  # type: ignore[union-attr,arg-type]
        probs = (probs[:, :, None] * p[:, None, :]).reshape(n, -1)
    if probs.shape[1] == 1:
        return counts[..., None]
    probs = probs / probs.sum(axis=1, keepdims=True)
    return rng.multinomial(counts, probs[:, None, None, :])


def grid_ledger(sp: SimProgram, parts: list[tuple[np.random.Generator, np.ndarray]], committed: np.ndarray,
                cash: np.ndarray, cancelled: np.ndarray) -> None:
    """Programs whose award depends only on categories: counts per category combination × amount.

    No per-applicant sampling: each draw's applicants are split over the
    combinations (multinomial), and attrition thins the survivors before each
    payment (S_0 = N, S_k ~ Binomial(S_{k-1}, 1 − a)).
    """
    prog = sp.prog
    cats, grid = category_grid(sp)
    ctx = prog.context(grid, next(iter(grid.values())).size if grid else 1)
    amount = prog.award_cny(ctx) if grid else np.full(1, prog.award_cny(ctx)[0])
    F, K = prog.spec.schedule.matrices(ctx, prog.spec.schedule.max_len())
    a = prog.spec.uptake.attrition  # type: ignore[union-attr]
    n_pay = int(K.max()) + 1
    per_k: list[list[np.ndarray]] = [[] for _ in range(n_pay)]
    for rng, counts in parts:
        S = grid_counts(rng, sp, cats, counts)
        per_k[0].append(S)
        for k in range(1, n_pay):
            S = rng.binomial(S, 1.0 - a) if a > 0 else S
            per_k[k].append(S)
    survivors = [np.concatenate(x) for x in per_k]  # each n × J × Y × C
    Y = cash.shape[2]
    committed += survivors[0] @ (amount * F.sum(axis=1))
    for t in range(min(F.shape[1], Y)):
        for k in np.unique(K[:, t][K[:, t] >= 0]):
            c = K[:, t] == k
            cash[:, :, t:] += (survivors[k][..., c] @ (amount[c] * F[c, t]))[:, :, : Y - t]
            if a > 0 and k > 0:
                remaining = np.where(K[c] >= k, F[c], 0.0).sum(axis=1) * amount[c]
                left = survivors[k - 1][..., c] - survivors[k][..., c]
                cancelled[:, :, t:] += (left @ remaining)[:, :, : Y - t]


def apply_group_caps(sp: SimProgram, apps: Applicants, amount: np.ndarray) -> np.ndarray:
    """Aggregate caps per entity-year, person-year or entity lifetime, within each draw and jurisdiction."""
    for c in sp.prog.spec.caps:
        cap_cny = c.max * sp.prog.unit_cny
        if c.per == "entity_lifetime":
            key = (apps.draw.astype(np.int64) * 64 + apps.jur) * (2**31) + apps.entity
            order = apps.year  # earlier years are served first
        else:
            key = ((apps.draw.astype(np.int64) * 64 + apps.jur) * 64 + apps.year) * (2**31) + apps.entity
            order = None
        amount = cap_by_group(amount, key, cap_cny, c.method, order=order)
    return amount


def simulate_chunk(scen: Scenario, start: int, stop: int, keep_awards: set[str] = frozenset()) -> dict[str, ProgramLedger]:
    """Every program of the scenario for draws ``[start, stop)``."""
    Y = len(scen.years)
    shocks = {b: shared_shock(scen.spec.seed, b, nb, Y) for b, _, nb in blocks_of(scen, start, stop)}
    return {sp.id: simulate_program(scen, sp, start, stop, shocks, sp.id in keep_awards) for sp in scen.programs}
