"""Every program cites a verbatim quote that occurs in its seed document."""

from __future__ import annotations

import re


from tests.conftest import SEEDS, need_shared


def _norm(text: str) -> str:
    # the seeds mix full-width and ASCII punctuation and break lines mid-sentence
    table = str.maketrans({"，": ",", "（": "(", "）": ")", "：": ":", "；": ";", "“": '"', "”": '"', "〔": "[", "〕": "]",
                           "～": "~", "、": "、", "—": "-", "–": "-"})
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
