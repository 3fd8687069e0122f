"""Sensitivity: the assumption that dominates by construction ranks first; ρ is Spearman's."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr
from typer.testing import CliRunner

from fiscal_sim.analysis.common import spec_data, variant
from fiscal_sim.analysis.sensitivity import collect, sensitivity, top
from fiscal_sim.cli import app
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.scenario import load_scenario

DOMINANT = Path(__file__).parent / "scenarios" / "sens_dominant.yaml"
HOUSING = "jwf2017-4.talent-housing"


@pytest.fixture(scope="module")
def scen():
    return load_scenario(DOMINANT)


@pytest.fixture(scope="module")
def result(scen, tmp_path_factory):
    return sensitivity(scen, tmp_path_factory.mktemp("sens"))


def test_the_dominant_assumption_ranks_first(result):
    """Talent housing's uptake rate (CV 1.0, the largest program) drives total cash of every payer it touches."""
    for payer in ("ALL", "city", "nanhu"):
        best = top(result.table, payer, "horizon", k=3)
        assert best[0]["factor"] == f"rate_factor:{HOUSING}", payer
        assert best[0]["rank"] == 1 and best[0]["spearman_rho"] > 0.8
        assert best[0]["rho_sq"] > 5 * best[1]["rho_sq"]
        assert best[0]["first_order_index"] > 0.5
    for year in range(2025, 2030):
        assert top(result.table, "ALL", "year", year, k=1)[0]["factor"] == f"rate_factor:{HOUSING}"


def test_file_and_columns(result):
    t = pq.read_table(result.path)
    assert result.path.name == "sensitivity.parquet"
    kinds = set(t["factor_kind"].to_pylist())
    assert kinds == {"rate_factor", "shared_shock"}
    assert set(t["period"].to_pylist()) == {"year", "horizon"}
    assert 0.7 < min(r["target_rank_r2"] for r in t.to_pylist() if r["payer"] == "ALL") <= 1.0


def test_rho_is_spearman_of_the_per_draw_values(scen):
    factors, keys, X, T = collect(scen)
    names = [f.name for f in factors]
    i, j = names.index(f"rate_factor:{HOUSING}"), keys.index(("ALL", "horizon", None))
    from fiscal_sim.analysis.sensitivity import rank_table

    table = rank_table(scen, factors, keys, X, T)
    row = next(
        r for r in table.to_pylist() if r["factor"] == names[i] and r["payer"] == "ALL" and r["period"] == "horizon"
    )
    ref = spearmanr(X[:, i], T[:, j])
    assert row["spearman_rho"] == pytest.approx(ref.statistic, abs=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, abs=1e-12)
    assert X[:, i].mean() == pytest.approx(1.0, abs=0.15) and X[:, i].std() == pytest.approx(1.0, abs=0.2)


def test_no_uncertain_parameter_is_a_clear_error(scen):
    data = copy.deepcopy(spec_data(scen))
    data["shock"]["sigma"] = 0.0
    for pid in data["overrides"]:
        data["overrides"][pid]["uptake.count.rate_cv"] = 0.0
    flat = variant(scen, data, "test")
    with pytest.raises(FiscalSimError, match="nothing to rank"):
        collect(flat)


def test_cli_on_a_run_folder_writes_beside_the_run(tmp_path):
    runner = CliRunner()
    run_dir = tmp_path / "run"
    assert (
        runner.invoke(
            app, ["run", str(DOMINANT), "--draws", "200", "--out", str(run_dir), "-q", "--no-draws-ledger"]
        ).exit_code
        == 0
    )
    res = runner.invoke(app, ["sensitivity", str(run_dir), "--top", "3"])
    assert res.exit_code == 0, res.output
    assert "uptake of " in res.output and "rate_factor:" not in res.output  # titles, not codes
    t = pq.read_table(run_dir / "sensitivity.parquet")
    assert set(t["draws"].to_pylist()) == {200}
    assert np.all(np.array(t["abs_rho"]) <= 1)


def test_swings_are_the_outer_decile_means_minus_the_mean():
    """Hand-computed: X = 1…10, target 2X (mean 11): lowest 10% of X → 2, highest → 20; swings −9 and +9."""
    import numpy as np

    from fiscal_sim.analysis.sensitivity import swings

    X = np.arange(1.0, 11.0)[:, None]
    T = np.column_stack([2 * X[:, 0], -X[:, 0]])
    lo, hi = swings(X, T)
    np.testing.assert_allclose(lo, [[-9.0, 4.5]])
    np.testing.assert_allclose(hi, [[9.0, -4.5]])
