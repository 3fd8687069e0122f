"""The compiled-catalogue cache: reused while the files are unchanged, never stale after an edit."""

from __future__ import annotations

import shutil
from pathlib import Path

from fiscal_sim.catalogue.cache import cached_catalogue

SCEN = Path(__file__).resolve().parents[1] / "scenarios"


def test_cache_is_keyed_by_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FISCAL_SIM_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "scenarios"
    shutil.copytree(SCEN / "programs", root / "programs")
    shutil.copytree(SCEN / "catalogue", root / "catalogue")
    first = cached_catalogue(root)
    assert len(list((tmp_path / "cache").glob("catalogue-*.pickle"))) == 1
    again = cached_catalogue(root)
    assert again.programs.keys() == first.programs.keys()
    f = root / "programs" / "jiaweifa_2017_4.yaml"
    old = first.programs["jwf2017-4.talent-housing"].spec.title_en
    f.write_text(f.read_text(encoding="utf-8").replace(old, old + " (edited)", 1), encoding="utf-8")
    edited = cached_catalogue(root)
    assert edited.programs["jwf2017-4.talent-housing"].spec.title_en == old + " (edited)"
    assert len(list((tmp_path / "cache").glob("catalogue-*.pickle"))) == 2
    timeline = root / "catalogue" / "timeline.yaml"  # any catalogue file, not only programs and jurisdictions
    if timeline.exists():
        timeline.write_text(timeline.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
        cached_catalogue(root)
        assert len(list((tmp_path / "cache").glob("catalogue-*.pickle"))) == 3


def test_cache_off_loads_from_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("FISCAL_SIM_CACHE", "off")
    assert "jwf2017-4.talent-housing" in cached_catalogue(SCEN).programs
