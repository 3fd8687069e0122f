"""One chunk of draws composed, in order: non-cumulation groups, then the other programs, then the register's
run-off and the estimated pre-horizon cohorts as each program's existing book.

This is the engine's one entry; the pieces it composes (:mod:`.simulate`, :mod:`.overlap`, :mod:`.runoff`,
:mod:`.pre_horizon`) never import it.
"""

from __future__ import annotations

from fiscal_sim.catalogue.groups import components
from fiscal_sim.engine.overlap import simulate_groups
from fiscal_sim.engine.pre_horizon import estimated_cohorts
from fiscal_sim.engine.runoff import runoff
from fiscal_sim.engine.simulate import ProgramLedger, blocks_of, simulate_program
from fiscal_sim.scenario import Scenario
from fiscal_sim.uptake.random import shared_shock


def simulate_chunk(
    scen: Scenario, start: int, stop: int, keep_awards: frozenset[str] | set[str] = frozenset()
) -> dict[str, ProgramLedger]:
    """Every program of the scenario for draws ``[start, stop)``; non-cumulation groups together."""
    Y = len(scen.years)
    shocks = {b: shared_shock(scen.spec.seed, b, nb, Y) for b, _, nb in blocks_of(scen, start, stop)}
    out: dict[str, ProgramLedger] = {}
    for comp in components(scen.groups):
        out |= simulate_groups(scen, comp, start, stop, shocks, keep_awards)
    out = {
        sp.id: out[sp.id] if sp.id in out else simulate_program(scen, sp, start, stop, shocks, sp.id in keep_awards)
        for sp in scen.programs
    }
    if scen.register is not None:  # the existing commitment book, run off beside the new awards
        for sp in scen.programs:
            if sp.id in scen.register.books:
                out[sp.id].existing = runoff(scen, sp, scen.register.books[sp.id], start, stop)
    if scen.estimated:  # estimated pre-horizon cohorts: the cohort years the register does not cover
        for sp in scen.programs:
            if sp.id in scen.estimated:
                est = estimated_cohorts(scen, sp, scen.estimated[sp.id], start, stop)
                L = out[sp.id]
                L.existing = est if L.existing is None else L.existing.plus(est)
    return out
