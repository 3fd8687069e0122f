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
from typing import Iterator

import numpy as np

from fiscal_sim.rules.aggregate import cap_by_group, group_key
from fiscal_sim.rules.schedule import schedule_classes
from fiscal_sim.scenario import Scenario, SimProgram
from fiscal_sim.uptake.random import stream
from fiscal_sim.uptake.sample import (
    Applicants,
    category_probs,
    count_factors,
    input_scale,
    sample_applicants,
    sample_counts,
)


@dataclass
class ProgramLedger:
    """Ledger of one program for a chunk: arrays (n_draws × J_p × Y) in yuan, plus applicant counts."""

    committed: np.ndarray
    cash: np.ndarray
    cancelled: np.ndarray
    applicants: np.ndarray
    rate_factor: np.ndarray | None = None
    """per draw: the uncertain uptake-rate factor (mean 1) — for sensitivity analysis"""
    count_factor: np.ndarray | None = None
    """per draw and year: rate factor × shared-shock exposure"""
    awards: "Awards | None" = None
    opening: np.ndarray | None = None
    """outstanding at the start of the horizon (n_draws × J_p): the existing book's remaining payments"""
    existing: "ProgramLedger | None" = None
    """the run-off of awards made before the horizon (vintage ``existing``); this ledger is vintage ``new``"""

    @property
    def outstanding(self) -> np.ndarray:
        """Awarded but not yet paid (nor cancelled) at each year end."""
        out = np.cumsum(self.committed - self.cash - self.cancelled, axis=2)
        return out if self.opening is None else out + self.opening[:, :, None]

    def plus(self, other: "ProgramLedger") -> "ProgramLedger":
        """Two existing books of one program side by side (the register's cohorts and the estimated ones)."""
        opening = [o for o in (self.opening, other.opening) if o is not None]
        return ProgramLedger(
            self.committed + other.committed,
            self.cash + other.cash,
            self.cancelled + other.cancelled,
            self.applicants + other.applicants,
            opening=sum(opening[1:], opening[0]) if opening else None,
        )


@dataclass
class Awards:
    """Per-applicant awards (kept for the simpy pipeline): draw, place, year, amount and cash by offset."""

    draw: np.ndarray
    jur: np.ndarray
    year: np.ndarray
    amount_cny: np.ndarray
    cash_by_offset_cny: np.ndarray

    @staticmethod
    def concat(parts: list["Awards"]) -> "Awards":
        return Awards(
            *(
                np.concatenate([getattr(p, f) for p in parts])
                for f in ("draw", "jur", "year", "amount_cny", "cash_by_offset_cny")
            )
        )


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
    for name in sp.prog.spec.inputs:
        dist = up.inputs.get(name) if up else None
        if dist is not None and dist.dist not in ("fixed", "categorical"):
            return True
    return False


@dataclass
class Block:
    """One block's per-applicant draws of one program: applicants, their context and awards (after caps)."""

    block: int
    first: int
    apps: Applicants
    ctx: object
    amount: np.ndarray


class ProgramRun:
    """Simulate one program for draws ``[start, stop)`` (whole blocks): :meth:`blocks`, then :meth:`book` each.

    Per-applicant programs are evaluated block by block: every array stays a
    few MB, which keeps memory flat and avoids fresh page faults per chunk.
    :meth:`blocks` yields each block's awards before they are booked, so a
    caller can adjust them first (non-cumulation across programs,
    :mod:`fiscal_sim.engine.overlap`).
    """

    def __init__(
        self, scen: Scenario, sp: SimProgram, start: int, stop: int, keep_awards: bool = False, key: str | None = None
    ):
        Y, J, n = len(scen.years), len(sp.jur), stop - start
        self.scen, self.sp, self.start, self.stop, self.keep_awards = scen, sp, start, stop, keep_awards
        self.key = key or sp.prog.id  # names the program's random stream
        self.ledger = ProgramLedger(
            np.zeros((n, J, Y)),
            np.zeros((n, J, Y)),
            np.zeros((n, J, Y)),
            np.zeros((n, J, Y), dtype=np.int64),
            np.ones(n),
            np.ones((n, Y)),
        )
        self.per_applicant = needs_applicants(sp) or sp.per_applicant or keep_awards
        self.grid_parts: list = []
        self.kept: list[Awards] = []

    def blocks(self, shocks: dict[int, np.ndarray]) -> Iterator[Block]:
        spec, prog, L = self.scen.spec, self.sp.prog, self.ledger
        for b, first, nb in blocks_of(self.scen, self.start, self.stop):
            rng = stream(spec.seed, b, self.key)
            rows = slice(first - self.start, first - self.start + nb)
            L.rate_factor[rows], f = count_factors(rng, prog, nb, shocks[b], spec.shock.sigma, spec.shock.correlation)  # type: ignore[index]
            L.count_factor[rows] = f  # type: ignore[index]
            L.applicants[rows] = sample_counts(rng, prog, self.sp.lam, f)
            if self.per_applicant:
                apps = sample_applicants(rng, prog, L.applicants[rows], bool(prog.spec.caps))
                ctx = prog.context(apps.inputs, apps.cell.size)
                yield Block(b, first, apps, ctx, apply_group_caps(self.sp, apps, prog.award_cny(ctx)))
            else:
                self.grid_parts.append(
                    (rng, L.applicants[rows])
                )  # the category split and attrition use the same stream

    def book(self, blk: Block) -> None:
        """Add a block's awards into the ledger (cash by year, attrition, lapses)."""
        rows = slice(blk.first - self.start, blk.first - self.start + blk.apps.shape[0])
        L = self.ledger
        aw = applicant_ledger(
            self.sp.prog,
            blk.apps,
            blk.amount,
            blk.ctx,
            L.committed[rows],
            L.cash[rows],
            L.cancelled[rows],
            self.keep_awards,
        )
        if aw is not None:
            aw.draw = aw.draw + blk.first
            aw.jur = self.sp.jur[aw.jur]
            self.kept.append(aw)

    def finish(self) -> ProgramLedger:
        L = self.ledger
        if self.grid_parts:
            grid_ledger(self.sp, self.grid_parts, L.committed, L.cash, L.cancelled)
        L.awards = Awards.concat(self.kept) if self.keep_awards else None
        return L


def simulate_program(
    scen: Scenario,
    sp: SimProgram,
    start: int,
    stop: int,
    shocks: dict[int, np.ndarray],
    keep_awards: bool = False,
    key: str | None = None,
) -> ProgramLedger:
    """Simulate one program for draws ``[start, stop)`` (whole blocks); ``key`` names its stream (default: its id)."""
    run = ProgramRun(scen, sp, start, stop, keep_awards, key)
    for blk in run.blocks(shocks):
        run.book(blk)
    return run.finish()


def applicant_ledger(
    prog,
    apps: Applicants,
    amount: np.ndarray,
    ctx,
    committed: np.ndarray,
    cash: np.ndarray,
    cancelled: np.ndarray,
    keep_awards: bool = False,
) -> "Awards | None":
    """Per-applicant awards → commitments, cash by year (attrition applied) and lapses, added into the ledger.

    One ``bincount`` does the per-applicant work: awards are summed by (cell,
    schedule class, payments received q). Cash at offset t of class c is then
    ``F[c, t] × Σ_{q > K[c, t]} amounts``, and an applicant who received q of
    its payments lapses the rest in the year of payment q — small array
    arithmetic per cell, not per applicant.
    """
    n, J, Y = cash.shape
    width = prog.spec.schedule.max_len()
    cls, F, K = schedule_classes(prog.spec.schedule, ctx, width)
    C = F.shape[0]
    n_pay = (K >= 0).sum(axis=1)  # payments per class
    Q = int(n_pay.max())
    q = n_pay[cls] if apps.stay is None else np.minimum(apps.stay, n_pay[cls])  # payments each applicant receives
    cells = n * J * Y
    key = (apps.cell * C + cls) * (Q + 1) + q if C > 1 else apps.cell * (Q + 1) + q
    by_q = np.bincount(key, weights=amount, minlength=cells * C * (Q + 1)).reshape(n, J, Y, C, Q + 1)
    # received[..., c, k]: amounts of applicants who got payment k (q > k)
    received = np.cumsum(by_q[..., ::-1], axis=-1)[..., ::-1][..., 1:]  # n × J × Y × C × Q
    pad = np.zeros((n, J, Y + width))
    lapse = np.zeros((n, J, Y + width))
    for c in range(C):
        for t in np.flatnonzero(F[c] > 0):
            k = K[c, t]
            pad[:, :, t : t + Y] += F[c, t] * received[:, :, :, c, k]
            if apps.stay is not None and k > 0:
                # applicants who received exactly k payments lose the rest from payment k on
                pad_lapse = by_q[:, :, :, c, k] * F[c][K[c] >= k].sum()
                lapse[:, :, t : t + Y] += pad_lapse
    committed += (by_q.sum(axis=-1) * F.sum(axis=1)).sum(axis=-1)
    cash += pad[:, :, :Y]
    if apps.stay is not None:
        cancelled += lapse[:, :, :Y]
    if not keep_awards:
        return None
    paid = amount[:, None] * F[cls] * (K[cls] < q[:, None])
    return Awards(apps.draw, apps.jur, apps.year, amount, paid)


def category_grid(sp: SimProgram) -> tuple[list[str], dict[str, np.ndarray]]:
    """Every combination of the program's category inputs (fixed inputs at their value): names and inputs."""
    prog = sp.prog
    up = prog.spec.uptake
    assert up is not None, f"{prog.id}: a simulated program has an uptake block"
    cats = [
        n
        for n, spec in prog.spec.inputs.items()
        if spec.type == "category" and up.inputs.get(n) is not None and up.inputs[n].dist == "categorical"
    ]
    sizes = [len(prog.spec.inputs[n].values) for n in cats]  # type: ignore[arg-type]
    codes = np.indices(sizes).reshape(len(sizes), -1) if sizes else np.zeros((0, 1), dtype=int)
    C = codes.shape[1]
    inputs: dict[str, np.ndarray] = {n: codes[i] for i, n in enumerate(cats)}
    for name, spec in prog.spec.inputs.items():
        if name in inputs:
            continue
        dist = up.inputs.get(name)  # type: ignore[union-attr]
        value = dist.value if dist is not None else spec.default  # type: ignore[union-attr]
        inputs[name] = (
            np.full(C, spec.values.index(str(value)))
            if spec.type == "category"  # type: ignore[union-attr]
            else np.full(C, float(value) * input_scale(prog, name, dist))
        )  # type: ignore[arg-type]
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


def grid_ledger(
    sp: SimProgram,
    parts: list[tuple[np.random.Generator, np.ndarray]],
    committed: np.ndarray,
    cash: np.ndarray,
    cancelled: np.ndarray,
) -> None:
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
    entity = apps.entity
    if sp.prog.spec.caps and entity is None:
        raise AssertionError(f"{sp.id}: aggregate caps need the applicants' entities")
    for c in sp.prog.spec.caps:
        assert entity is not None
        cap_cny = c.max * sp.prog.unit_cny
        if c.per == "entity_lifetime":  # (draw, jurisdiction, entity); earlier years are served first
            key, order = group_key(apps.cell // apps.shape[2], entity), apps.year
        else:  # (draw, jurisdiction, year, entity)
            key, order = group_key(apps.cell, entity), None
        amount = cap_by_group(amount, key, cap_cny, c.method, order=order)
    return amount
