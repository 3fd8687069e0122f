"""Non-cumulation inside the simulation: applicants eligible for several programs of a group get only the highest.

The members of a group (:class:`fiscal_sim.catalogue.groups.SimGroup`) are
simulated together, block by block, from their own streams (so each member's
applicants are the ones it would draw alone). Then, in every (draw,
jurisdiction, award year) cell, ``M ~ Binomial(min_p N_p, overlap)`` of the
applicants are the same persons or entities under every member: each such
*linked* applicant is one randomly chosen applicant of every member, and only
the member paying the highest total commitment pays (ties: the first member in
scenario order, as ``calc``); the others' awards become 0. Hence

    E[total] = Σ_p E[Σ awards_p] − E[Σ_linked (Σ_p total_p − max_p total_p)],

which for fixed awards a ≥ b of two members is ``a·E[N_a] + b·E[N_b] − b·overlap·E[min(N_a, N_b)]``.

The pairing uses the group's own stream (``spawn_key = (block, sha256("exclusive_group:" + name))``),
so programs outside groups draw exactly what they drew before.
"""

from __future__ import annotations

import numpy as np

from fiscal_sim.catalogue.groups import SimGroup
from fiscal_sim.engine.simulate import Block, ProgramLedger, ProgramRun
from fiscal_sim.rules.schedule import schedule_classes
from fiscal_sim.scenario import Scenario, SimProgram
from fiscal_sim.uptake.random import stream

STREAM_PREFIX = "exclusive_group:"


def simulate_groups(
    scen: Scenario,
    groups: list[SimGroup],
    start: int,
    stop: int,
    shocks: dict[int, np.ndarray],
    keep_awards: set[str] | frozenset = frozenset(),
) -> dict[str, ProgramLedger]:
    """Ledgers of the members of groups that share programs (one component,
    :func:`fiscal_sim.catalogue.groups.components`) for draws ``[start, stop)``: every member simulated once;
    each group links its own applicants and decides on the awards as drawn, and an award is paid only if it is
    the highest in every group where it is linked (the rule ``calc`` applies; independent of group order)."""
    members = {m for g in groups for m in g.members}
    runs = [ProgramRun(scen, sp, start, stop, sp.id in keep_awards) for sp in scen.programs if sp.id in members]
    assert all(r.per_applicant for r in runs), "group members are simulated per applicant"
    J = len(scen.geography.jurisdictions)
    for blocks in zip(*(r.blocks(shocks) for r in runs)):
        by_id = {r.sp.id: (r.sp, b) for r, b in zip(runs, blocks)}
        lose = {r.sp.id: np.zeros(b.amount.size, dtype=bool) for r, b in zip(runs, blocks)}
        for g in groups:
            rng = stream(scen.spec.seed, blocks[0].block, STREAM_PREFIX + g.name)
            sps, blks = zip(*(by_id[m] for m in g.members))
            for m, lost in zip(g.members, losers(rng, list(sps), list(blks), g.overlap, J)):
                lose[m] |= lost
        for r, b in zip(runs, blocks):
            b.amount = np.where(lose[r.sp.id], 0.0, b.amount)
            r.book(b)
    return {r.sp.id: r.finish() for r in runs}


def total_commitment(sp: SimProgram, blk: Block) -> np.ndarray:
    """Each applicant's nominal commitment: the award times the sum of its schedule's factors."""
    cls, F, _ = schedule_classes(sp.prog.spec.schedule, blk.ctx, sp.prog.spec.schedule.max_len())  # type: ignore[arg-type]
    return blk.amount * F.sum(axis=1)[cls]


def losers(
    rng: np.random.Generator, sps: list[SimProgram], blocks: list[Block], overlap: float, n_jur: int
) -> list[np.ndarray]:
    """Link ``Binomial(min_p N_p, overlap)`` applicants per cell across members; mark all but the highest award.

    Cells are (draw, jurisdiction of the geography, award year), so members
    with different jurisdiction lists link only where both apply. Returns, per
    member, which of its applicants lose (their award is not paid).
    """
    n, _, Y = blocks[0].apps.shape
    cells = n * n_jur * Y
    gcell, rank, counts = [], [], []
    for sp, blk in zip(sps, blocks):
        a = blk.apps
        g = (a.draw * n_jur + sp.jur[a.jur]) * Y + a.year
        c = np.bincount(g, minlength=cells)
        # a random order of the applicants within each cell: sort by (cell, random 32-bit tie-breaker)
        order = np.argsort((g.astype(np.int64) << 32) | rng.integers(0, 2**32, g.size, dtype=np.int64))
        r = np.empty(g.size, dtype=np.int64)
        r[order] = np.arange(g.size) - (np.cumsum(c) - c)[g[order]]
        gcell.append(g)
        rank.append(r)
        counts.append(c)
    m = rng.binomial(np.minimum.reduce(counts), overlap)
    slot0 = np.cumsum(m) - m
    totals = np.full((len(blocks), int(m.sum())), -np.inf)
    linked = []
    for p, (sp, blk) in enumerate(zip(sps, blocks)):
        idx = np.flatnonzero(rank[p] < m[gcell[p]])
        slot = slot0[gcell[p][idx]] + rank[p][idx]
        totals[p, slot] = total_commitment(sp, blk)[idx]
        linked.append((idx, slot))
    winner = np.argmax(totals, axis=0)
    out = []
    for p, (idx, slot) in enumerate(linked):
        lose = np.zeros(blocks[p].amount.size, dtype=bool)
        lose[idx[winner[slot] != p]] = True
        out.append(lose)
    return out
