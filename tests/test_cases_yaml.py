"""Program test cases as data: every case in tests/cases/*.yaml must compute exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscal_sim.cases import load_cases, run_case
from fiscal_sim.catalogue.loader import load_catalogue

CASE_DIR = Path(__file__).parent / "cases"
_cat = load_catalogue()
CASES = [(f.name, c) for f in sorted(CASE_DIR.glob("*.yaml")) for c in load_cases(f, _cat)]


@pytest.mark.parametrize("case", [c for _, c in CASES], ids=[f"{f}::{c.name}" for f, c in CASES])
def test_case(case):
    _, mismatches = run_case(_cat, case)
    assert not mismatches, "\n".join(mismatches)


def test_every_priced_program_has_three_cases():
    counts = {pid: 0 for pid, p in _cat.programs.items() if p.priced}
    for _, c in CASES:
        for pid in c.ids:
            if pid in counts:
                counts[pid] += 1
    short = {pid: n for pid, n in counts.items() if n < 3}
    assert not short, f"priced programs with fewer than 3 hand-computed cases: {short}"
