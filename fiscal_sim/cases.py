"""Program test cases as data (in the spirit of OpenFisca's YAML tests).

A case file holds ``cases:``, each with a program (or several, for a
non-cumulation group), a jurisdiction, an award date, inputs, and the
expected result in an explicit unit: ``*_wan`` (万元) or ``*_cny`` (元)::

    cases:
      - name: A-tier long-term, salary above the cap
        program: jwf2017-4.innovation-salary
        jurisdiction: nanhu
        date: 2025-03-01
        inputs: {tier: A, term: long, salary: 200}
        expected:
          award_wan: 100             # per year (annual schedule)
          total_wan: 500
          schedule_wan: [100, 100, 100, 100, 100]   # by year offset
          payers_wan: {city: 250, nanhu: 250}
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from fiscal_sim.calc import AWARD, CaseResult, calculate_many
from fiscal_sim.catalogue.loader import Catalogue
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.rules.formula import Strict
from fiscal_sim.units import cny_per
from fiscal_sim.yamlfile import YamlDoc

TOLERANCE_CNY = 0.01


class Expected(Strict):
    award_wan: float | None = None
    award_cny: float | None = None
    total_wan: float | None = None
    total_cny: float | None = None
    schedule_wan: list[float] | None = None
    paid_wan: float | None = None
    lapsed_wan: float | None = None
    payers_wan: dict[str, float] | None = None
    in_force: bool | None = None
    winner: str | None = None


class Case(Strict):
    name: str
    program: str | None = None
    programs: list[str] | None = None
    jurisdiction: str | None = None
    date: dt.date = dt.date(2025, 6, 30)
    inputs: dict[str, Any] = {}
    """a list value gives one claim per element (claims of one entity: aggregate caps apply across them)"""
    stay: int | None = Field(default=None, ge=0, description="years the recipient stays (multi-year schedules)")
    expected: Expected

    @model_validator(mode="after")
    def _one_kind(self):
        if (self.program is None) == (self.programs is None):
            raise ValueError("give exactly one of program or programs")
        return self

    @property
    def ids(self) -> list[str]:
        return [self.program] if self.program else list(self.programs or [])


class CaseFile(Strict):
    cases: list[Case] = Field(min_length=1)


def load_cases(path: Path | str, cat: Catalogue) -> list[Case]:
    """Parse a case file and check it against the catalogue (programs, inputs, categories)."""
    doc = YamlDoc(path)
    try:
        cf = CaseFile.model_validate(doc.data)
    except ValidationError as e:
        raise InputError(doc.problems_from(e, (), None, doc.data)) from None
    problems: list[Problem] = []
    for i, case in enumerate(cf.cases):
        for pid in case.ids:
            if pid not in cat.programs:
                problems.append(doc.problem(("cases", i, "program"), f"unknown program {pid!r}", pid))
                continue
            prog = cat.programs[pid]
            for key, value in case.inputs.items():
                spec = prog.spec.inputs.get(key)
                if spec is None:
                    if key.startswith("used_") or key == AWARD or len(case.ids) > 1:
                        continue  # checked by calc
                    problems.append(doc.problem(("cases", i, "inputs", key), f"{key!r} is not an input of {pid}", pid))
                elif spec.type == "category":
                    for v in value if isinstance(value, list) else [value]:
                        if str(v) not in spec.values:  # type: ignore[operator]
                            problems.append(
                                doc.problem(
                                    ("cases", i, "inputs", key),
                                    f"{key}={v!r} is not in the program's table (declared {spec.values})",
                                    pid,
                                )
                            )
    if problems:
        raise InputError(problems)
    return cf.cases


def run_case(cat: Catalogue, case: Case) -> tuple[list[CaseResult], list[str]]:
    """Compute a case; return the results and a list of mismatches (empty when it passes)."""
    # on the documents' own terms (formula, caps, in-force dates, schedule by offset from the award); the policy
    # timeline's switch dates, lag and tranches are calc's default, tested against the engine elsewhere
    results = calculate_many(
        cat, case.ids, case.inputs, jurisdiction=case.jurisdiction, award_date=case.date, stay=case.stay, timeline=False
    )
    exp = case.expected
    paid = [r for r in results if r.winner]
    res = paid[0] if len(results) == 1 else None
    bad: list[str] = []

    def cmp(label: str, got_cny: float, want: float | None, unit: str) -> None:
        if want is not None and abs(got_cny - want * cny_per(unit)) > TOLERANCE_CNY:
            bad.append(f"{label}: expected {want:g} {unit}, got {got_cny / cny_per(unit):g} {unit}")

    if exp.winner is not None:
        winners = [r.program for r in results if r.winner and r.exclusive_group]
        if exp.winner not in winners:
            bad.append(f"winner: expected {exp.winner}, got {winners}")
        res = next((r for r in results if r.program == exp.winner), res)
    if res is None:
        res = max(paid, key=lambda r: r.total_cny)
    cmp("award", res.award_cny, exp.award_wan, "万元")
    cmp("award", res.award_cny, exp.award_cny, "元")
    cmp("total", res.total_cny, exp.total_wan, "万元")
    cmp("total", res.total_cny, exp.total_cny, "元")
    cmp("paid", res.paid_cny, exp.paid_wan, "万元")
    cmp("lapsed", res.lapsed_cny, exp.lapsed_wan, "万元")
    if exp.in_force is not None and res.in_force != exp.in_force:
        bad.append(f"in_force: expected {exp.in_force}, got {res.in_force}")
    if exp.schedule_wan is not None:
        got = [0.0] * max(len(exp.schedule_wan), 1 + max((s["year_offset"] for s in res.schedule), default=0))
        for s in res.schedule:
            got[s["year_offset"]] = s["cash_cny"] / 1e4
        want = list(exp.schedule_wan) + [0.0] * (len(got) - len(exp.schedule_wan))
        if any(abs(a - b) > 1e-6 for a, b in zip(got, want)):
            bad.append(f"schedule: expected {exp.schedule_wan} 万元, got {got} 万元")
    if exp.payers_wan is not None:
        got_p = {k: v / 1e4 for k, v in res.payers.items() if abs(v) > TOLERANCE_CNY}
        want_p = {k: v for k, v in exp.payers_wan.items() if v}
        if set(got_p) != set(want_p) or any(abs(got_p[k] - want_p[k]) > 1e-6 for k in want_p):
            bad.append(f"payers: expected {want_p} 万元, got {got_p} 万元")
    return results, bad


def check_file(path: Path | str, cat: Catalogue) -> list[tuple[Case, list[str]]]:
    """Load and compute every case of a file: (case, mismatches) per case; a case whose computation fails
    (e.g. an input out of its range) is a mismatch that says why."""
    from fiscal_sim.errors import FiscalSimError

    out = []
    for case in load_cases(path, cat):
        try:
            _, bad = run_case(cat, case)
        except (FiscalSimError, ValueError) as e:
            bad = [f"cannot compute: {e}"]
        out.append((case, bad))
    return out


def case_files(paths: list[Path]) -> list[Path]:
    """YAML files under ``paths`` that hold ``cases:``."""
    from fiscal_sim.errors import InputError

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(x for x in p.rglob("*.yaml"))
        elif p.exists():
            files.append(p)
        else:
            raise InputError([Problem(str(p), None, "-", "no such file or folder")])
    return [f for f in files if isinstance(YamlDoc(f).data, dict) and "cases" in YamlDoc(f).data]
