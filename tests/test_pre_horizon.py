"""Estimated pre-horizon cohorts (``commitments.estimate_before``): closed forms, register coverage,
reproducibility of the in-horizon draws, and the ``existing`` vintage read back with DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.cli import app
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import InputError
from fiscal_sim.scenario import load_scenario

FIX = Path(__file__).parent / "fixtures" / "timeline"
WAN = 1e4


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue(FIX)


def scenario(tmp_path: Path, catalogue, **changes):
    """The fixture scenario ``estimated.yaml`` with top-level changes, written next to a copy of the register."""
    data = yaml.safe_load((FIX / "estimated.yaml").read_text(encoding="utf-8"))
    data["scenario"].update(changes)
    (tmp_path / "register.csv").write_text((FIX / "register.csv").read_text(encoding="utf-8"), encoding="utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_scenario(path, catalogue)


def within_mc(x: np.ndarray, expected: float) -> bool:
    return abs(x.mean() - expected) <= 4 * x.std() / np.sqrt(x.size) + 1e-9


def test_rent_cohorts_match_the_closed_form(tmp_path, catalogue):
    """old.rent: exactly 4 awards a year from 2017, 10万元 a year for 5 years, paid from t+1, 20% attrition a year.
    2025 is payment k = 0…4 of the cohorts 2024…2020, received with probability 0.8^k:
    E[2025] = 40 × (1 + .8 + .64 + .512 + .4096) = 134.464万元; E[2026] = 40 × (.8 + .64 + .512 + .4096) = 94.464.
    Owed at the end of 2024 (cohort y has made m = 2024 − y payments, 4 × 0.8^(m−1) recipients still in):
    200 + 160 + 96 + 51.2 + 20.48 = 527.68万元, all paid or lapsed by 2029."""
    scen = scenario(tmp_path, catalogue, programs=["old.rent"], draws=4000, chunk_size=4000)
    assert {pid: (ph.first, ph.last) for pid, ph in scen.estimated.items()} == {"old.rent": (2020, 2029)}
    L = simulate_chunk(scen, 0, 4000)["old.rent"]
    E = L.existing
    cash, lapse = E.cash.sum(axis=1) / WAN, E.cancelled.sum(axis=1) / WAN
    assert within_mc(cash[:, 0], 134.464) and within_mc(cash[:, 1], 94.464)
    assert within_mc(E.opening.sum(axis=1) / WAN, 527.68)
    np.testing.assert_allclose(cash.sum(axis=1) + lapse.sum(axis=1), E.opening.sum(axis=1) / WAN)
    np.testing.assert_allclose(E.outstanding[:, :, 4], 0, atol=1e-6)  # 2029: the 2024 cohort's last payment
    assert not E.committed.any() and cash[:, 5:].sum() == 0  # nothing decided in the horizon; done by 2029
    # from 2022: the cohorts 2022–2024 only: 40 × (1 + .8 + .64) = 97.6万元 in 2025
    late = scenario(
        tmp_path,
        catalogue,
        programs=["old.rent"],
        draws=4000,
        chunk_size=4000,
        commitments={"estimate_before": {"from": 2022}},
    )
    cash22 = simulate_chunk(late, 0, 4000)["old.rent"].existing.cash.sum(axis=1)[:, 0] / WAN
    assert within_mc(cash22, 97.6)


def test_one_off_cohort_with_lag_is_paid_in_the_first_year(tmp_path, catalogue):
    """old.grant: exactly 10 awards of 100万元 a year, paid in t+1: the 2024 cohort is 1000万元 in 2025, certain."""
    scen = scenario(tmp_path, catalogue)
    assert (scen.estimated["old.grant"].first, scen.estimated["old.grant"].last) == (2024, 2025)
    E = simulate_chunk(scen, 0, 200)["old.grant"].existing
    np.testing.assert_allclose(E.cash.sum(axis=1)[:, 0], 1000 * WAN)
    assert E.cash[:, :, 1:].sum() == 0


def test_register_coverage_is_per_program_and_cohort_year(tmp_path, catalogue):
    """register.csv has old.rent awarded 2023 and old.grant awarded 2024. old.rent's cohorts that reach 2025 are
    2020–2024: the register covers 2023 only, so 2020–2022 and 2024 are still estimated; old.grant's only cohort
    (2024) is the register's, so it is not estimated at all. A register complete from 2021 takes 2021–2024 too."""
    scen = scenario(tmp_path, catalogue, commitments={"register": "register.csv", "estimate_before": {"from": 2017}})
    assert scen.register.covered == {"old.rent", "old.grant"}
    assert {pid: ph.years(2025) for pid, ph in scen.estimated.items()} == {"old.rent": [2020, 2021, 2022, 2024]}
    complete = scenario(
        tmp_path,
        catalogue,
        commitments={"register": "register.csv", "complete_from": 2021, "estimate_before": {"from": 2017}},
    )
    assert {pid: ph.years(2025) for pid, ph in complete.estimated.items()} == {"old.rent": [2020]}
    # the register's cohort and the estimated ones are both in the existing book, nothing counted twice:
    # the estimate with the register equals the estimate alone less the 2023 cohort
    both = simulate_chunk(scen.with_settings(draws=200, chunk_size=200), 0, 200)["old.rent"].existing
    alone = scenario(tmp_path, catalogue, commitments={"estimate_before": {"from": 2017}}, draws=200, chunk_size=200)
    assert set(alone.estimated["old.rent"].years(2025)) == {2020, 2021, 2022, 2023, 2024}
    assert both is not None and both.cash.sum() > 0
    # a row of a recipient who left still covers its cohort: the register is the authority for it
    reg = (FIX / "register.csv").read_text(encoding="utf-8").splitlines()
    (tmp_path / "gone.csv").write_text("\n".join([reg[0], reg[1].replace(",true", ",false")]) + "\n", encoding="utf-8")
    scen = scenario(tmp_path, catalogue, commitments={"register": "gone.csv", "estimate_before": {"from": 2017}})
    assert "old.rent" not in scen.register.books
    assert scen.estimated["old.rent"].years(2025) == [2020, 2021, 2022, 2024] and "old.grant" in scen.estimated
    with pytest.raises(InputError, match="count them twice"):
        scenario(
            tmp_path,
            catalogue,
            commitments={"register": "register.csv", "estimate_before": {"from": 2017, "programs": ["old.grant"]}},
        )
    with pytest.raises(InputError, match="not before the horizon start"):
        scenario(tmp_path, catalogue, commitments={"estimate_before": {"from": 2025}})


def test_a_register_declares_itself_synthetic(tmp_path, catalogue):
    text = (FIX / "register.csv").read_text(encoding="utf-8")
    (tmp_path / "syn.csv").write_text("# synthetic: true\n# made up for a demonstration\n" + text, encoding="utf-8")
    scen = scenario(tmp_path, catalogue, commitments={"register": "syn.csv", "estimate_before": {"from": 2017}})
    assert scen.register.synthetic and scen.register.rows == 2
    from fiscal_sim.io.dimensions import existing_source

    assert existing_source(scen, "old.rent") == "register (SYNTHETIC) + estimated 2020–2022, 2024"
    assert existing_source(scen, "old.grant") == "register (SYNTHETIC)"
    plain = scenario(tmp_path, catalogue, commitments={"register": "register.csv", "synthetic": True})
    assert plain.register.synthetic  # the scenario may say it for a file that cannot (xlsx)
    (tmp_path / "bad.csv").write_text("# synthtic: true\n" + text, encoding="utf-8")
    with pytest.raises(InputError, match="unknown flag 'synthtic'"):
        scenario(tmp_path, catalogue, commitments={"register": "bad.csv"})


def test_estimate_leaves_in_horizon_draws_unchanged_and_is_chunk_invariant(tmp_path, catalogue):
    on = scenario(tmp_path, catalogue, draws=400, chunk_size=400)
    off = scenario(tmp_path, catalogue, draws=400, chunk_size=400, commitments=None)
    a, b = simulate_chunk(on, 0, 400), simulate_chunk(off, 0, 400)
    for pid in a:
        for m in ("committed", "cash", "cancelled", "applicants"):
            np.testing.assert_array_equal(getattr(a[pid], m), getattr(b[pid], m))
        assert b[pid].existing is None and a[pid].existing is not None
    parts = [simulate_chunk(on, 0, 200)["old.rent"].existing, simulate_chunk(on, 200, 400)["old.rent"].existing]
    np.testing.assert_array_equal(np.concatenate([p.cash for p in parts]), a["old.rent"].existing.cash)
    np.testing.assert_array_equal(np.concatenate([p.opening for p in parts]), a["old.rent"].existing.opening)


def test_run_writes_estimated_existing_vintage_read_back_with_duckdb(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", str(FIX / "estimated.yaml"), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    draws = f"read_parquet('{out}/draws/**/*.parquet', hive_partitioning = true)"
    got = dict(
        duckdb.sql(f"""SELECT vintage, sum(cash_cny) / 200 FROM {draws}
        WHERE fiscal_year = 2025 AND program = 'old.grant' GROUP BY 1""").fetchall()
    )
    assert got == {"existing": pytest.approx(1000 * WAN), "new": pytest.approx(0.0)}
    summary = f"'{out}/summary.parquet'"
    rows = dict(
        duckdb.sql(f"""SELECT vintage, mean_cny FROM {summary} WHERE program = 'ALL' AND payer = 'ALL'
        AND measure = 'cash' AND period = 'horizon'""").fetchall()
    )
    assert rows["ALL"] == pytest.approx(rows["new"] + rows["existing"], rel=1e-12) and rows["existing"] > 1000 * WAN
    manifest = json.loads((out / "manifest.json").read_text())
    est = manifest["estimated_pre_horizon"]
    assert est["basis"] == "assumption" and est["award_years"] == {
        "old.rent": [2020, 2021, 2022, 2023, 2024],
        "old.grant": [2024],
    }
    sources = dict(
        duckdb.sql(f"SELECT program, existing_source FROM '{out}/programs.parquet' WHERE NOT is_total").fetchall()
    )
    assert sources == {"old.rent": "estimated 2020–2024", "old.grant": "estimated 2024"}
    res = CliRunner().invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert "estimated pre-horizon cohorts of 2 programs" in (out / "report" / "report.html").read_text(encoding="utf-8")


def test_estimated_cohorts_keep_the_documents_terms_under_a_reform(tmp_path, catalogue):
    """A reform (overrides) changes future awards only: the estimated 2024 cohort of old.grant is still 100万元 each."""
    base = scenario(tmp_path, catalogue)
    reform = scenario(tmp_path, catalogue, overrides={"old.grant": {"formula.amount": 50}})
    a, b = simulate_chunk(base, 0, 200)["old.grant"], simulate_chunk(reform, 0, 200)["old.grant"]
    np.testing.assert_array_equal(a.existing.cash, b.existing.cash)
    np.testing.assert_allclose(b.committed.sum(axis=(1, 2)), a.committed.sum(axis=(1, 2)) / 2)
