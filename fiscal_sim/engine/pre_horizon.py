"""Estimated pre-horizon cohorts simulated: what awards decided before the horizon still pay inside it.

Which cohorts to estimate is planned when the scenario compiles (:mod:`fiscal_sim.cohorts`); this module
simulates them.

For every cohort year the commitment register does not cover (a program's award
year with no register row, before the register's ``complete_from``), the awards decided in
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

import numpy as np

from fiscal_sim.cohorts import PreHorizon
from fiscal_sim.engine.simulate import ProgramLedger, blocks_of, simulate_program
from fiscal_sim.scenario import Horizon, Scenario, SimProgram, expected_counts
from fiscal_sim.uptake.random import SHOCK, stream

KEY = "pre-horizon:"


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
    view = dataclasses.replace(
        scen,
        spec=scen.spec.model_copy(update={"horizon": Horizon.model_construct(start=ph.first, end=ph.last)}),
        register=None,
        estimated={},
    )
    years = view.years
    prog = scen.documented.get(sp.id, sp.prog)  # awarded on the documents' terms, not a reform's
    lam = expected_counts(prog, scen.geography, years, base_year=y0)
    lam[:, np.array(years) >= y0] = 0.0  # awards from the horizon on are the simulation's own
    lam[:, np.isin(years, list(ph.skip))] = 0.0  # cohorts the register covers are the register's
    shocks = {b: pre_horizon_shock(scen.spec.seed, b, nb, years, y0) for b, _, nb in blocks_of(scen, start, stop)}
    L = simulate_program(view, dataclasses.replace(sp, prog=prog, lam=lam), start, stop, shocks, key=KEY + sp.id)
    P, Y = y0 - ph.first, len(scen.years)
    n, J, _ = L.cash.shape
    cash, cancelled = np.zeros((n, J, Y)), np.zeros((n, J, Y))
    cash[:, :, : len(years) - P] = L.cash[:, :, P:]
    cancelled[:, :, : len(years) - P] = L.cancelled[:, :, P:]
    opening = (L.committed - L.cash - L.cancelled)[:, :, :P].sum(axis=2)
    return ProgramLedger(np.zeros((n, J, Y)), cash, cancelled, np.zeros((n, J, Y), dtype=np.int64), opening=opening)
