"""Every program cites a verbatim quote that occurs in its seed document."""

from __future__ import annotations

import re


from tests.conftest import SEEDS, need_shared


def _norm(text: str) -> str:
    # the seeds mix full-width and ASCII punctuation and break lines mid-sentence
    table = str.maketrans(
        {
            "，": ",",
            "（": "(",
            "）": ")",
            "：": ":",
            "；": ";",
            "“": '"',
            "”": '"',
            "〔": "[",
            "〕": "]",
            "～": "~",
            "、": "、",
            "—": "-",
            "–": "-",
        }
    )
    return re.sub(r"\s+", "", text.translate(table))


def test_quotes_occur_in_seed_text(catalogue):
    need_shared(SEEDS)
    seeds = {p.name: _norm(p.read_text(encoding="utf-8")) for p in SEEDS.glob("*.txt")}
    missing = []
    for p in catalogue.programs.values():
        seed = p.document.seed_file
        assert seed in seeds, f"{p.id}: document.seed_file {seed!r} is not a file in {SEEDS}"
        if _norm(p.spec.source.quote) not in seeds[seed]:
            missing.append(f"{p.id} ({p.file}): 「{p.spec.source.quote}」")
    assert not missing, "quotes not found verbatim in the seed text:\n" + "\n".join(missing)


def test_every_program_names_its_source(catalogue):
    for p in catalogue.programs.values():
        assert p.document.number and p.spec.source.section and p.spec.source.quote, p.id


def _numbers(program) -> list[tuple[str, float]]:
    """Every money amount and rate a program's formula and caps use, as written (program unit)."""
    from fiscal_sim.rules.formula import ByInput

    out = []
    for _, node in program.spec.formula.walk():
        for field, par, money in node.params():
            for v in par.values.values() if isinstance(par, ByInput) else [par]:
                if money or field == "rate":
                    out.append(("money" if money else "rate", float(v)))
    out += [("money", c.max) for c in program.spec.caps]
    return [(k, v) for k, v in out if v not in (0.0, 1.0)]


def test_formula_numbers_come_from_the_text(catalogue):
    """Each amount or rate is written in the quote or a clause of the document, or derived in an assumption."""
    missing = []
    for p in catalogue.programs.values():
        if p.spec.formula is None:
            continue
        text = _norm(
            p.spec.source.quote
            + "".join(n.clause or "" for _, n in p.spec.formula.walk())
            + "".join(c.clause or "" for c in p.spec.caps)
        )
        derived = _norm(" ".join(a for a in p.spec.assumptions if "derived" in a.lower()))
        for kind, v in _numbers(p):
            forms = [f"{v:g}"] + ([f"{v / 10000:g}亿"] if v >= 10000 else []) if kind == "money" else [f"{v * 100:g}%"]
            if not any(f in text for f in forms) and not any(f in derived for f in forms):
                missing.append(f"{p.id}: {kind} {v:g} is not in its quote, clauses or a derivation")
    assert not missing, "\n".join(missing)


def test_group_and_weight_quotes_occur_in_their_documents(catalogue):
    """Non-cumulation groups and allocation weights quote their document verbatim too."""
    need_shared(SEEDS)
    seed_of = {p.document.number: p.document.seed_file for p in catalogue.programs.values()}
    seeds = {p.name: _norm(p.read_text(encoding="utf-8")) for p in SEEDS.glob("*.txt")}
    cited = [(f"group {n}", g.document, g.quote) for n, g in catalogue.groups.items()]
    cited += [
        (f"weights {n}", w.document, w.quote)
        for n, w in catalogue.geography.data.allocation_weights.items()
        if w.basis == "document"
    ]
    missing = [
        f"{what}: {quote!r} not in {doc}"
        for what, doc, quote in cited
        if doc not in seed_of or _norm(quote) not in seeds[seed_of[doc]]
    ]
    assert not missing, "\n".join(missing)
