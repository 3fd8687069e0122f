"""The catalogue is a complete, cited inventory: every provision of the reference extraction is accounted for."""

from __future__ import annotations

import re
from fiscal_sim.catalogue.provisions import load_all
from tests.conftest import REFERENCE, REPO, need_shared

MAP_DIR = REPO / "scenarios" / "catalogue" / "provision_map"
ROW_ID = re.compile(r"^\|\s*(S\d{3}-\d+[a-z]?)\s*\|", re.M)


def reference_ids() -> set[str]:
    return {m for f in REFERENCE.glob("*.md") for m in ROW_ID.findall(f.read_text(encoding="utf-8"))}


def test_every_reference_provision_is_mapped_or_explained(catalogue):
    need_shared(REFERENCE)
    mapped = load_all(MAP_DIR, catalogue)
    missing = sorted(reference_ids() - set(mapped))
    assert not missing, f"reference provisions with neither a program nor a reason: {missing}"


def test_map_has_no_ids_unknown_to_the_reference(catalogue):
    need_shared(REFERENCE)
    extra = sorted(set(load_all(MAP_DIR, catalogue)) - reference_ids())
    assert not extra, f"provision ids in the map that the reference does not have: {extra}"


def test_every_program_is_reached_from_the_map(catalogue):
    mapped = load_all(MAP_DIR, catalogue)
    reached = {p for e in mapped.values() for p in e.programs}
    orphans = sorted(set(catalogue.programs) - reached)
    assert not orphans, f"programs no provision maps to: {orphans}"


def test_every_program_cites_a_provision_it_is_mapped_from(catalogue):
    mapped = load_all(MAP_DIR, catalogue)
    by_program: dict[str, set[str]] = {}
    for pid, e in mapped.items():
        for p in e.programs:
            by_program.setdefault(p, set()).add(pid)
    bad = {
        p.id: (p.spec.source.provisions, sorted(by_program.get(p.id, ())))
        for p in catalogue.programs.values()
        if not set(p.spec.source.provisions) & by_program.get(p.id, set())
    }
    assert not bad, f"programs whose source.provisions disagree with the map: {bad}"


def test_catalogue_counts(catalogue):
    status = [p.spec.status for p in catalogue.programs.values()]
    assert status.count("priced") >= 40 and status.count("unpriced") >= 20 and status.count("equity") >= 1
    docs = {p.document.number for p in catalogue.programs.values()}
    for number in (
        "嘉委发〔2017〕4号",
        "嘉政发〔2017〕3号",
        "嘉政发〔2017〕4号",
        "嘉政办发〔2024〕6号",
        "嘉政办发〔2024〕7号",
    ):
        assert number in docs, number


def test_city_proper_only_document_says_so(catalogue):
    p = catalogue.programs["jwf2017-4.innovation-salary"]
    assert set(p.jurisdictions) == {"nanhu", "xiuzhou", "jetz"}


def test_in_force_dates_of_the_2024_documents(catalogue):
    import datetime as dt

    six = [p for p in catalogue.programs.values() if p.document.number == "嘉政办发〔2024〕6号"]
    seven = [p for p in catalogue.programs.values() if p.document.number == "嘉政办发〔2024〕7号"]
    assert six and seven
    assert all(
        p.spec.in_force.from_ == dt.date(2024, 4, 1) and p.spec.in_force.to == dt.date(2028, 12, 31) for p in six
    )
    assert all(p.spec.in_force.to == dt.date(2026, 12, 31) for p in seven)
    assert all(p.spec.cost_sharing == "city_district_50_50" for p in six)
