"""What a calibration changes, in the bureau's words: awards a year and expected cash, prior → calibrated.

The calibrated programs alone (new awards only: the existing book is left out) are simulated twice in memory — under the scenario and under its calibration
overlay — with the same seed and draws (common random numbers), so the change is the calibration's, not noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fiscal_sim.calibrate.posterior import Calibration
from fiscal_sim.scenario import Scenario

DRAWS = 400
"""draws of the in-memory comparison (the printed cash carries its Monte Carlo error)"""


@dataclass
class Impact:
    program: str
    title_zh: str
    awards_before: float
    """expected awards a year under the prior (horizon average)"""
    awards_after: float
    cash_before_cny: float
    """expected grant cash of awards made in the horizon, all payers, yuan"""
    cash_after_cny: float


def _subset(scen: Scenario, ids: list[str], draws: int) -> Scenario:
    from fiscal_sim.analysis.common import spec_data, variant

    data = spec_data(scen) | {"programs": ids, "budgets": [], "draws": draws, "commitments": None, "extends": None}
    return variant(scen, data, f"{scen.spec.name} (calibrated programs only)")


def _per_program(scen: Scenario) -> dict[str, float]:
    """Mean horizon grant cash per program, all payers, vintage ALL (yuan), simulated in this process."""
    from fiscal_sim.orchestrate.executors import Executor
    from fiscal_sim.orchestrate.run import simulate, summary_table

    acc, lay, _ = simulate(scen, executor=Executor())
    rows = summary_table(scen, lay, acc).to_pylist()
    return {
        r["program"]: r["mean_cny"]
        for r in rows
        if r["payer"] == "ALL" and r["vintage"] == "ALL" and r["measure"] == "cash" and r["period"] == "horizon"
    }


def _awards_a_year(scen: Scenario, pid: str) -> float:
    """Expected awards a year over the horizon from the scenario's expected counts (all jurisdictions)."""
    sp = next(p for p in scen.programs if p.id == pid)
    return float(np.asarray(sp.lam).sum() / max(1, scen.spec.horizon.end - scen.spec.horizon.start + 1))


def impact(scen: Scenario, calibrated: Scenario, cals: list[Calibration], draws: int = DRAWS) -> list[Impact]:
    """Per calibrated program (those with history): awards a year and horizon cash, prior → calibrated."""
    ids = [c.program for c in cals if c.years]
    if not ids:
        return []
    before, after = _subset(scen, ids, draws), _subset(calibrated, ids, draws)
    cb, ca = _per_program(before), _per_program(after)
    titles = {p.id: p.spec.title_zh for p in (sp.prog for sp in before.programs)}
    return [
        Impact(
            pid,
            titles[pid],
            _awards_a_year(before, pid),
            _awards_a_year(after, pid),
            cb.get(pid, 0.0),
            ca.get(pid, 0.0),
        )
        for pid in ids
    ]


def lines(rows: list[Impact], draws: int) -> list[str]:
    """The plain-words summary printed before the statistics."""
    if not rows:
        return []
    out = [
        f"What the history changes (expected awards a year; grant cash of the horizon's new awards, all payers, "
        f"亿元; {draws} draws, same applicants before and after):"
    ]
    for r in sorted(rows, key=lambda r: -abs(r.cash_after_cny - r.cash_before_cny)):
        if not (r.awards_before or r.awards_after):
            out.append(f"  {r.title_zh} ({r.program}): not awarded in the horizon (lapsed or replaced): no change")
            continue
        out.append(
            f"  {r.title_zh} ({r.program}): {r.awards_before:,.1f} → {r.awards_after:,.1f} awards a year; "
            f"{r.cash_before_cny / 1e8:,.2f} → {r.cash_after_cny / 1e8:,.2f}亿元 "
            f"({(r.cash_after_cny - r.cash_before_cny) / 1e8:+,.2f}亿元)"
        )
    b, a = sum(r.cash_before_cny for r in rows), sum(r.cash_after_cny for r in rows)
    out.append(f"  together: {b / 1e8:,.2f} → {a / 1e8:,.2f}亿元 ({(a - b) / 1e8:+,.2f}亿元 over the horizon)")
    return out
