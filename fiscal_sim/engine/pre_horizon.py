"""Estimated pre-horizon cohorts: what awards decided before the horizon still pay inside it.

For a program the commitment register does not cover, the awards decided in
``from`` … horizon start − 1 are simulated exactly as new awards are — the same
uptake priors (growth from the horizon's base year), in-force dates, policy
timeline and payment timing, on the documents' terms (a scenario's overrides
are reforms of future awards) — over an extended year axis. Attrition therefore
runs from each award year: a recipient who left before the horizon receives
nothing in it. Of each cohort only the payments falling in horizon years are
kept (earlier ones were paid); lapses before the horizon are dropped, and what
is still owed at the start of the horizon is the cohort's opening balance.
The result is the program's ``existing`` vintage — an assumption, labelled in
the manifest, where the bureau has no register.

Randomness: each program draws from its own stream ``"pre-horizon:<program>"``
and the shared shock of a pre-horizon year from ``(SHOCK, year)``, so estimated
cohorts never change the draws of in-horizon awards (``compare`` and
reproducibility hold with and without the setting), and the same seed gives the
same cohorts whatever the chunks or workers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from fiscal_sim.engine.simulate import ProgramLedger, blocks_of, simulate_program
from fiscal_sim.errors import InputError
from fiscal_sim.scenario import Horizon, Scenario, SimProgram, expected_counts
from fiscal_sim.uptake.random import SHOCK, stream

KEY = "pre-horizon:"


@dataclass(frozen=True)
class PreHorizon:
    """One program's estimated cohorts: award years ``first`` … ``start − 1``, paying up to ``last``."""

    first: int
    last: int
    """last year with a payment from a pre-horizon cohort (capped at the horizon end)"""
    skip: frozenset[int] = frozenset()
    """award years in ``first`` … start − 1 that the register covers (not estimated)"""


def cohort_years(prog, start: int, end: int, from_: int) -> PreHorizon | None:
    """Award years of ``prog`` whose payments can reach the horizon (None if none can, or if the documents leave
    it unpriced: a scenario that prices it prices its future awards only)."""
    reach = prog.spec.schedule.max_len()  # payments fall at offsets 0 … reach − 1 from the award year
    first = max(from_, prog.spec.in_force.from_.year, start - reach + 1)
    if first >= start or prog.spec.uptake is None or not prog.priced:
        return None
    return PreHorizon(first, min(end, start + reach - 2))


def estimated_programs(scen: Scenario, est, doc) -> dict[str, PreHorizon]:
    """Programs to estimate under ``commitments.estimate_before``: simulated, with cohort years the register does
    not cover (coverage is per program and award year, see :mod:`fiscal_sim.register`)."""
    start, end = scen.spec.horizon.start, scen.spec.horizon.end
    reg = scen.register
    sims = {sp.id: sp for sp in scen.programs}

    def skipped(pid: str) -> frozenset[int]:
        return frozenset(y for y in range(est.from_, start) if reg is not None and reg.covers(pid, y))

    covered = {pid for pid in sims if est.from_ < start and len(skipped(pid)) == start - est.from_}
    problems = []
    if est.from_ >= start:
        problems.append(doc.problem(("scenario", "commitments", "estimate_before", "from"),
                                    f"{est.from_} is not before the horizon start {start}"))
    if est.programs == "uncovered":
        ids = [pid for pid in sims if pid not in covered]
    else:
        ids = list(est.programs)
        for i, pid in enumerate(ids):
            where = ("scenario", "commitments", "estimate_before", "programs", i)
            if pid not in sims:
                problems.append(doc.problem(where, "not simulated in this scenario", pid))
            elif pid in covered:
                problems.append(doc.problem(where, "the register covers every cohort year of this program: its "
                                                   "pre-horizon awards are the register's (estimating them too would "
                                                   "count them twice)", pid))
    if problems:
        raise InputError(problems)
    out = {pid: cohort_years(scen.documented.get(pid, sims[pid].prog), start, end, est.from_) for pid in ids}
    out = {pid: dataclasses.replace(c, skip=frozenset(y for y in skipped(pid) if y >= c.first))
           for pid, c in out.items() if c is not None}
    return {pid: c for pid, c in out.items() if len(c.skip) < start - c.first}


def pre_horizon_shock(seed: int, block: int, n: int, years: list[int], start: int) -> np.ndarray:
    """The shared shock of each pre-horizon year (n × years); zero from the horizon on (no cohorts there)."""
    z = np.zeros((n, len(years)))
    for t, y in enumerate(years):
        if y < start:
            z[:, t] = stream(seed, block, SHOCK, purpose=y).standard_normal(n)
    return z


def estimated_cohorts(scen: Scenario, sp: SimProgram, ph: PreHorizon, start: int, stop: int) -> ProgramLedger:
    """The program's estimated pre-horizon ledger for draws ``[start, stop)`` (arrays n × J_p × Y, yuan)."""
    y0 = scen.spec.horizon.start
    view = dataclasses.replace(scen, spec=scen.spec.model_copy(
        update={"horizon": Horizon.model_construct(start=ph.first, end=ph.last)}), register=None, estimated={})
    years = view.years
    prog = scen.documented.get(sp.id, sp.prog)  # awarded on the documents' terms, not a reform's
    lam = expected_counts(prog, scen.geography, years, base_year=y0)
    lam[:, np.array(years) >= y0] = 0.0  # awards from the horizon on are the simulation's own
    lam[:, np.isin(years, sorted(ph.skip))] = 0.0  # cohorts the register covers
    shocks = {b: pre_horizon_shock(scen.spec.seed, b, nb, years, y0) for b, _, nb in blocks_of(scen, start, stop)}
    L = simulate_program(view, dataclasses.replace(sp, prog=prog, lam=lam), start, stop, shocks, key=KEY + sp.id)
    P, Y = y0 - ph.first, len(scen.years)
    n, J, _ = L.cash.shape
    cash, cancelled = np.zeros((n, J, Y)), np.zeros((n, J, Y))
    cash[:, :, : len(years) - P] = L.cash[:, :, P:]
    cancelled[:, :, : len(years) - P] = L.cancelled[:, :, P:]
    opening = (L.committed - L.cash - L.cancelled)[:, :, :P].sum(axis=2)
    return ProgramLedger(np.zeros((n, J, Y)), cash, cancelled, np.zeros((n, J, Y), dtype=np.int64), opening=opening)
