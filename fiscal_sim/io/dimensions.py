"""Dimension tables: programs (with sources), payers, jurisdictions, cost shares."""

from __future__ import annotations

import pyarrow as pa

from fiscal_sim.scenario import Scenario


def programs_table(scen: Scenario) -> pa.Table:
    progs = [sp.prog for sp in scen.programs] + scen.unpriced
    overlap = {m: g.overlap for g in scen.groups for m in g.members}
    geo = scen.geography
    return pa.table({
        "program": [p.id for p in progs],
        "title_zh": [p.spec.title_zh for p in progs],
        "title_en": [p.spec.title_en for p in progs],
        "document_number": [p.document.number for p in progs],
        "document_title": [p.document.title for p in progs],
        "section": [p.spec.source.section for p in progs],
        "quote": [p.spec.source.quote for p in progs],
        "status": [p.spec.status for p in progs],
        "simulated": [i < len(scen.programs) for i in range(len(progs))],
        "unit": [p.spec.unit for p in progs],
        "in_force_from": pa.array([p.spec.in_force.from_ for p in progs], pa.date32()),
        "in_force_to": pa.array([p.spec.in_force.to for p in progs], pa.date32()),
        "jurisdictions": [",".join(p.jurisdictions) for p in progs],
        "cost_sharing": [p.spec.cost_sharing for p in progs],
        "exclusive_group": [p.spec.exclusive_group for p in progs],
        "overlap_share": pa.array([overlap.get(p.id) for p in progs], pa.float64()),
        "allocation": [(geo.weights_name(p.spec.uptake.allocation) or "table") if p.spec.uptake else None for p in progs],
        "uptake_basis": [p.spec.uptake.basis if p.spec.uptake else None for p in progs],
        "uptake_target_until": pa.array([p.spec.uptake.target_until if p.spec.uptake else None for p in progs], pa.int16()),
        "schedule": [p.spec.schedule.describe() for p in progs],
        "timeline": ["; ".join(p.timeline_notes) or None for p in progs],
        "file": [p.file.split("/scenarios/")[-1] for p in progs],
    })


def payers_table(scen: Scenario) -> pa.Table:
    geo = scen.geography
    payers = geo.payers
    return pa.table({
        "payer": payers,
        "name_zh": [geo.payer_name(p, "zh") for p in payers],
        "name_en": [geo.payer_name(p, "en") for p in payers],
        "kind": ["city" if p == "city" else "province" if p == "province" else "local" for p in payers],
    })


def jurisdictions_table(scen: Scenario) -> pa.Table:
    data = scen.geography.data.jurisdictions
    return pa.table({
        "jurisdiction": list(data),
        "name_zh": [j.name_zh for j in data.values()],
        "name_en": [j.name_en for j in data.values()],
        "fiscal_class": [j.fiscal_class for j in data.values()],
    })


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
