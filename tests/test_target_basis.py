"""The target-basis rule: a count is ``basis: target`` only where an in-date document gives a target for it.

For every ``basis: target`` count of the catalogue: the quote is in the seed texts (whitespace ignored), states a
number, and the years it covers are bounded and in date — ``target_until`` is set (a target is never carried
forward for ever: later years are an assumption), not before the program's first day, not after its in-force end,
and not after a year the quote itself names (到2027年 covers to 2027)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fiscal_sim.catalogue.loader import load_catalogue
from tests.conftest import SEEDS, need_shared
from tests.test_sources import _norm as squash

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = load_catalogue(ROOT / "scenarios")
TARGETS = sorted(pid for pid, p in CATALOGUE.programs.items() if p.spec.uptake and p.spec.uptake.basis == "target")


def problems(prog, seeds: str | None) -> list[str]:
    """What breaks the rule for one program (empty: it holds)."""
    up, when = prog.spec.uptake, prog.spec.in_force
    out = []
    if seeds is not None and squash(up.quote) not in seeds:
        out.append("quote not in the seed texts")
    if not re.search(r"[0-9０-９]|[一二三四五六七八九十百千万]|表$", up.quote):  # a number, or the target table
        out.append("quote states no number")
    if up.target_until is None:
        out.append("no target_until: a target carried forward for ever")
        return out
    if up.target_until < when.from_.year:
        out.append("target ends before the program starts")
    if when.to is not None and up.target_until > when.to.year:
        out.append(f"target_until {up.target_until} after the in-force end {when.to}")
    years = [int(y) for y in re.findall(r"(20\d\d)年", up.quote)]
    if years and up.target_until > max(years):
        out.append(f"target_until {up.target_until} after the quote's year {max(years)}")
    return out


@pytest.mark.parametrize("pid", TARGETS)
def test_every_target_count_has_an_in_date_quoted_target(pid):
    need_shared(SEEDS)
    seeds = squash("".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))))
    assert problems(CATALOGUE.programs[pid], seeds) == []


def test_the_rule_catches_each_breach():
    """Hand cases: the rule fails a target carried for ever, one beyond the quote's year or the in-force end."""
    base = CATALOGUE.programs["jzbf2024-7.municipal-st-project"]  # 每年实施重点研发项目 50 个, to 2026

    def variant(**up):
        spec = base.spec.model_copy(update={"uptake": base.spec.uptake.model_copy(update=up)})
        return type(base)(spec, base.document, base.file, base.jurisdictions)

    assert problems(base, None) == []
    assert problems(variant(target_until=None), None) == ["no target_until: a target carried forward for ever"]
    assert problems(variant(target_until=2030), None) == ["target_until 2030 after the in-force end 2026-12-31"]
    assert problems(variant(quote="到2025年培育50个"), None) == ["target_until 2026 after the quote's year 2025"]
    assert problems(variant(quote="培育若干"), None) == ["quote states no number"]
    assert problems(variant(quote="每年实施重点研发项目 99 个"), squash("每年实施重点研发项目 50 个")) == [
        "quote not in the seed texts"
    ]


def test_re_derived_counts_are_labelled_assumptions():
    for pid in ("jzf2017-3.major-conversion", "jwf2017-4.shortage-talent-social-insurance"):
        up = CATALOGUE.programs[pid].spec.uptake
        assert up.basis == "assumption" and "ASSUMPTION" in up.note, pid
    assert CATALOGUE.programs["jzf2017-3.major-conversion"].spec.uptake.count.mean == 3
