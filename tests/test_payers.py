"""Payers as the documents have them: allocation weights, no provincial share, the 6号 reward priced by a scenario."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fiscal_sim.catalogue.geography import load_geography
from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import InputError
from fiscal_sim.scenario import load_scenario

REPO = Path(__file__).resolve().parents[1]
NRI = "jzbf2024-6.nri-performance-reward"
WAN = 1e4


@pytest.fixture(scope="module")
def baseline():
    return load_scenario(REPO / "scenarios" / "baseline.yaml")


def test_named_weights_allocate_by_the_cited_counts(baseline):
    # 嘉政发〔2017〕4号 附件, 在孵企业数 2018: 南湖 765 of 3000, 嘉兴港区 130 of 3000
    sp = next(p for p in baseline.programs if p.id == "jzbf2024-7.hnte-first-certification")
    geo = baseline.geography
    share = sp.lam[:, 0] / sp.lam[:, 0].sum()
    assert share[list(sp.prog.jurisdictions).index("nanhu")] == pytest.approx(765 / 3000)
    assert share[list(sp.prog.jurisdictions).index("port")] == pytest.approx(130 / 3000)
    # a program applying only in the city proper renormalises the weights over its places: 765 / (765 + 560 + 435)
    assert geo.allocation("incubated_firms_2018", ["nanhu", "xiuzhou", "jetz"]) == pytest.approx(
        np.array([765, 560, 435]) / 1760
    )
    # no weights named: the default (equal, a labelled assumption)
    assert geo.data.default_allocation == "equal" and geo.data.allocation_weights["equal"].basis == "assumption"
    assert geo.allocation(None, ["nanhu", "haining"]) == pytest.approx([0.5, 0.5])


def test_every_document_weight_cites_its_table(catalogue):
    for name, w in catalogue.geography.data.allocation_weights.items():
        assert w.basis == "assumption" or (w.document and w.source and w.quote), name
    incubators = catalogue.geography.data.allocation_weights["incubators_2018"].weights
    assert sum(incubators.values()) == 40  # 全市合计 40 incubators in 2018
    assert sum(catalogue.geography.data.allocation_weights["incubated_firms_2018"].weights.values()) == 3000


def test_the_province_carries_nothing(baseline):
    col = baseline.geography.payers.index("province")
    assert all(sp.shares[:, col].sum() == 0 for sp in baseline.programs)


def test_a_provincial_share_needs_a_document(tmp_path):
    text = (REPO / "scenarios/catalogue/jurisdictions.yaml").read_text(encoding="utf-8")
    text = text.replace("      county: {city: 1.0}\n", "      county: {city: 0.5, province: 0.5}\n")
    f = tmp_path / "jurisdictions.yaml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_geography(f)
    assert "cost_sharing.city_only" in str(e.value) and "a province share needs a document" in str(e.value)


def test_unknown_weights_name_is_an_error(tmp_path):
    root = tmp_path / "cat"
    (root / "catalogue").mkdir(parents=True)
    (root / "programs").mkdir()
    (root / "catalogue/jurisdictions.yaml").write_text((REPO / "scenarios/catalogue/jurisdictions.yaml").read_text())
    prog = (REPO / "tests/fixtures/engine/programs/test_programs.yaml").read_text()
    (root / "programs/p.yaml").write_text(
        prog.replace(
            "      count: {dist: poisson, mean: 500, shock: false}",
            "      count: {dist: poisson, mean: 500, shock: false}\n      allocation: firms_2030",
            1,
        )
    )
    with pytest.raises(InputError) as e:
        load_catalogue(root)
    assert (
        "t.hnte" in str(e.value)
        and "uptake.allocation" in str(e.value)
        and "unknown allocation weights 'firms_2030'" in str(e.value)
    )


def nri_scenario(tmp_path: Path, price: str) -> Path:
    f = tmp_path / "nri.yaml"
    f.write_text(
        f"""scenario:
  name: nri
  programs: [{NRI}]
  horizon: {{start: 2025, end: 2029}}
  draws: 3000
  seed: 3
  price:
    {NRI}:
{price}""",
        encoding="utf-8",
    )
    return f


def test_priced_6hao_reward_is_split_50_50_in_a_district_and_100_local_in_a_county(tmp_path):
    """Grades 100/50/20万元 in shares 0.2/0.3/0.5: mean 45万元; 8 awards expected in 2025, equal over 9 places.

    E[committed 2025] = 8 × 45 = 360万元: 南湖 40 (city 20 + district 20), 海宁 40 (all local), 嘉兴港区 40 (all local);
    nothing in 2029, after the opinions expire (2028-12-31)."""
    f = nri_scenario(
        tmp_path,
        "      amounts: {A: 100, B: 50, C: 20}\n      shares: {A: 0.2, B: 0.3, C: 0.5}\n      note: test amounts\n",
    )
    s = load_scenario(f)
    sp = s.programs[0]
    assert sp.prog.spec.status == "priced" and sp.prog.spec.cost_sharing == "city_district_50_50"
    L = simulate_chunk(s, 0, s.spec.draws)[NRI]
    jur = list(sp.prog.jurisdictions)
    payers = s.geography.payers
    by_payer = np.einsum("njy,jp->npy", L.committed, sp.shares) / WAN  # draws × payers × years

    def close(x: np.ndarray, want: float) -> None:
        assert abs(x.mean() - want) < 4 * x.std(ddof=1) / np.sqrt(x.size), (x.mean(), want)

    close(L.committed[:, :, 0].sum(axis=1) / WAN, 360)
    close(L.committed[:, jur.index("nanhu"), 0] / WAN, 40)
    close(by_payer[:, payers.index("nanhu"), 0], 20)
    close(by_payer[:, payers.index("haining"), 0], 40)
    close(by_payer[:, payers.index("port"), 0], 40)
    # the city pays half of 南湖, 秀洲 and 经开区 (3 × 20) and nothing of the counties and the port zone
    close(by_payer[:, payers.index("city"), 0], 60)
    assert np.all(L.committed[:, :, 4] == 0)
    np.testing.assert_array_equal(by_payer[:, payers.index("haining")], L.committed[:, jur.index("haining")] / WAN)


@pytest.mark.parametrize(
    "price, says",
    [
        (
            "      amounts: {A: 100, B: 50}\n      shares: {A: 0.2, C: 0.8}\n      note: test\n",
            "shares are for grades ['A', 'C'], amounts for ['A', 'B']",
        ),
        (
            "      amounts: {A: 100, B: 50}\n      shares: {A: 0.2, B: 0.3}\n      note: test\n",
            "shares sum to 0.5, not 1",
        ),
        ("      amounts: 100\n", "scenario.price.jzbf2024-6.nri-performance-reward.note"),
    ],
)
def test_bad_price_tables_are_named(tmp_path, price, says):
    with pytest.raises(InputError) as e:
        load_scenario(nri_scenario(tmp_path, price))
    assert says in str(e.value)


def test_pricing_a_priced_program_is_an_error(tmp_path):
    f = nri_scenario(tmp_path, "      amounts: 100\n      note: test\n")
    f.write_text(f.read_text().replace(NRI, "jzbf2024-7.hnte-first-certification"))
    with pytest.raises(InputError) as e:
        load_scenario(f)
    assert "scenario.price.jzbf2024-7.hnte-first-certification" in str(e.value) and "priced already" in str(e.value)
