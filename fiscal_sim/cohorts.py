"""Planning the estimated pre-horizon cohorts, part of compiling a scenario (the engine simulates them:
:mod:`fiscal_sim.engine.pre_horizon`).

For every program under ``commitments.estimate_before``, the award years whose payments can still reach the
horizon, less the cohort years the commitment register covers (rows of that program and year, or every year
from the register's ``complete_from``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fiscal_sim.errors import InputError

if TYPE_CHECKING:
    from fiscal_sim.scenario import Scenario


@dataclass(frozen=True)
class PreHorizon:
    """One program's estimated cohorts: award years ``first`` … ``start − 1``, paying up to ``last``."""

    first: int
    last: int
    """last year with a payment from a pre-horizon cohort (capped at the horizon end)"""
    skip: frozenset[int] = frozenset()
    """award years the register covers: those cohorts are the register's, not estimated"""

    def years(self, start: int) -> list[int]:
        """The estimated award years (``first`` … ``start − 1`` less the register's)."""
        return [y for y in range(self.first, start) if y not in self.skip]


def cohort_years(prog: Any, start: int, end: int, from_: int) -> PreHorizon | None:
    """Award years of ``prog`` whose payments can reach the horizon (None if none can, or if the documents leave
    it unpriced: a scenario that prices it prices its future awards only)."""
    reach = prog.spec.schedule.max_len()  # payments fall at offsets 0 … reach − 1 from the award year
    first = max(from_, prog.spec.in_force.from_.year, start - reach + 1)
    if first >= start or prog.spec.uptake is None or not prog.priced:
        return None
    return PreHorizon(first, min(end, start + reach - 2))


def estimated_programs(scen: Scenario, est: Any, doc: Any) -> dict[str, PreHorizon]:
    """Programs to estimate under ``commitments.estimate_before``, per cohort year: the award years the register
    covers (rows of that program and year, or every year from its ``complete_from``) are the register's."""
    start, end = scen.spec.horizon.start, scen.spec.horizon.end
    reg = scen.register
    sims = {sp.id: sp for sp in scen.programs}
    problems = []
    if est.from_ >= start:
        problems.append(
            doc.problem(
                ("scenario", "commitments", "estimate_before", "from"),
                f"{est.from_} is not before the horizon start {start}",
            )
        )
    ids = list(sims) if est.programs == "uncovered" else list(est.programs)
    out: dict[str, PreHorizon] = {}
    for i, pid in enumerate(ids):
        where = ("scenario", "commitments", "estimate_before", "programs", i)
        if pid not in sims:
            problems.append(doc.problem(where, "not simulated in this scenario", pid))
            continue
        ph = cohort_years(scen.documented.get(pid, sims[pid].prog), start, end, est.from_)
        if ph is None:
            continue
        skip = frozenset(y for y in range(ph.first, start) if reg is not None and reg.covers(pid, y))
        if len(skip) == start - ph.first:
            if est.programs != "uncovered":
                problems.append(
                    doc.problem(
                        where,
                        "the register covers every cohort year of this program: its "
                        "pre-horizon awards are the register's (estimating them too would "
                        "count them twice)",
                        pid,
                    )
                )
            continue
        out[pid] = dataclasses.replace(ph, skip=skip)
    if problems:
        raise InputError(problems)
    return out
