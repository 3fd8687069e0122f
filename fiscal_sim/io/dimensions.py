"""Dimension tables: programs (with sources), payers, jurisdictions, cost shares."""

from __future__ import annotations

import pyarrow as pa

from fiscal_sim.scenario import Scenario, count_basis
from fiscal_sim.catalogue.schema import group_names


# the total members of the program and payer dimensions: a BI join on them never drops or doubles a summary row
PROGRAM_TOTALS = {
    "ALL": ("全部资助项目合计", "All grant programs (total)"),
    "ALL_EQUITY": ("全部股权出资合计", "All fund capital, equity (total)"),
}
PAYER_TOTAL = ("ALL", "全部财政合计", "All payers (total)")


def programs_table(scen: Scenario) -> pa.Table:
    """One row per program (simulated first, then listed), then the ``ALL`` / ``ALL_EQUITY`` totals."""
    progs = [sp.prog for sp in scen.programs] + scen.unpriced
    overlap = {m: g.overlap for g in scen.groups for m in g.members}
    geo = scen.geography
    n, t = len(progs), len(PROGRAM_TOTALS)
    none = [None] * t
    return pa.table(
        {
            "program": [p.id for p in progs] + list(PROGRAM_TOTALS),
            "title_zh": [p.spec.title_zh for p in progs] + [v[0] for v in PROGRAM_TOTALS.values()],
            "title_en": [p.spec.title_en for p in progs] + [v[1] for v in PROGRAM_TOTALS.values()],
            "is_total": [False] * n + [True] * t,
            "sort_order": pa.array(list(range(1, n + 1)) + [0, n + 1], pa.int32()),  # ALL first, equity last
            "document_number": [p.document.number for p in progs] + none,
            "document_title": [p.document.title for p in progs] + none,
            "section": [p.spec.source.section for p in progs] + none,
            "quote": [p.spec.source.quote for p in progs] + none,
            "status": [p.spec.status for p in progs] + ["total", "total"],
            "simulated": [i < len(scen.programs) for i in range(n)] + none,
            "unit": [p.spec.unit for p in progs] + none,
            "in_force_from": pa.array([p.spec.in_force.from_ for p in progs] + none, pa.date32()),
            "in_force_to": pa.array([p.spec.in_force.to for p in progs] + none, pa.date32()),
            "jurisdictions": [",".join(p.jurisdictions) for p in progs] + none,
            "cost_sharing": [p.spec.cost_sharing for p in progs] + none,
            "exclusive_group": [", ".join(group_names(p.spec.exclusive_group)) or None for p in progs] + none,
            "overlap_share": pa.array([overlap.get(p.id) for p in progs] + none, pa.float64()),
            "allocation": [
                (geo.weights_name(p.spec.uptake.allocation) or "table") if p.spec.uptake else None for p in progs
            ]
            + none,
            "uptake_basis": [p.spec.uptake.basis if p.spec.uptake else None for p in progs] + none,
            "uptake_target_until": pa.array(
                [p.spec.uptake.target_until if p.spec.uptake else None for p in progs] + none, pa.int16()
            ),
            "count_basis": [count_basis(p.spec.uptake, scen.spec.horizon) if p.spec.uptake else None for p in progs]
            + none,
            "schedule": [p.spec.schedule.describe() for p in progs] + none,
            "timeline": ["; ".join(p.timeline_notes) or None for p in progs] + none,
            "existing_source": [existing_source(scen, p.id) for p in progs] + none,
            "synthetic_rows": [synthetic_rows(scen, p.id) for p in progs] + none,
            "file": [p.file.split("/scenarios/")[-1] for p in progs] + none,
        }
    )


def spans(years: list[int]) -> str:
    """Years as runs: ``[2020, 2021, 2022, 2024]`` → ``2020–2022, 2024``."""
    runs: list[list[int]] = []
    for y in years:
        if runs and y == runs[-1][-1] + 1:
            runs[-1].append(y)
        else:
            runs.append([y])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def existing_source(scen: Scenario, pid: str) -> str | None:
    """Where a program's ``existing`` vintage comes from: the register (``register (SYNTHETIC)`` when the file says
    its rows are synthetic), an estimate of the pre-horizon cohorts it does not cover, both, or none."""
    parts = []
    reg = scen.register
    if reg is not None and pid in reg.covered:
        parts.append("register (SYNTHETIC)" if reg.synthetic else "register")
    ph = scen.estimated.get(pid)
    if ph is not None:
        parts.append(f"estimated {spans(ph.years(scen.spec.horizon.start))}")
    return " + ".join(parts) or None


def synthetic_rows(scen: Scenario, pid: str) -> bool:
    """Does the program's ``existing`` vintage rest on rows of a register declared synthetic?"""
    return scen.register is not None and scen.register.synthetic and pid in scen.register.books


def payers_table(scen: Scenario) -> pa.Table:
    """One row per payer (city, province, then places, in the catalogue's order), then the ``ALL`` total."""
    geo = scen.geography
    payers = geo.payers
    return pa.table(
        {
            "payer": payers + [PAYER_TOTAL[0]],
            "name_zh": [geo.payer_name(p, "zh") for p in payers] + [PAYER_TOTAL[1]],
            "name_en": [geo.payer_name(p, "en") for p in payers] + [PAYER_TOTAL[2]],
            "kind": ["city" if p == "city" else "province" if p == "province" else "local" for p in payers] + ["total"],
            "is_total": [False] * len(payers) + [True],
            "sort_order": pa.array(list(range(1, len(payers) + 1)) + [0], pa.int32()),
        }
    )


def jurisdictions_table(scen: Scenario) -> pa.Table:
    data = scen.geography.data.jurisdictions
    return pa.table(
        {
            "jurisdiction": list(data),
            "name_zh": [j.name_zh for j in data.values()],
            "name_en": [j.name_en for j in data.values()],
            "fiscal_class": [j.fiscal_class for j in data.values()],
        }
    )


def cost_shares_table(scen: Scenario) -> pa.Table:
    geo = scen.geography
    rows: dict[str, list] = {"program": [], "jurisdiction": [], "payer": [], "share": []}
    for sp in scen.programs:
        for i, j in enumerate(sp.jur):
            for k, s in enumerate(sp.shares[i]):
                if s:
                    for key, v in zip(rows, (sp.id, geo.jurisdictions[j], geo.payers[k], float(s))):
                        rows[key].append(v)
    return pa.table(rows)
