"""A synthetic award history — SYNTHETIC, not the bureau's records — drawn from stated true rates.

``python -m fiscal_sim.calibrate.synthetic`` writes ``scenarios/history/awards_synthetic.csv``: one draw of
the engine itself for 2018–2025 with each program's count set to the true rate below (``rate_cv: 0``),
keeping the baseline's noise (negative binomial dispersion, the shared yearly shock σ = 0.15), so awards
and amounts per jurisdiction and year are what the model says a real year looks like. One program's true
rate drifts (+12% a year) while its prior has no growth; one program's awards are larger than its prior
says (``TRUE_INPUTS``). Applications are awards plus Poisson(0.4 × awards)
unsuccessful ones. Every row says ``synthetic`` in its ``source`` column.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

import numpy as np
import yaml

from fiscal_sim.catalogue.loader import DEFAULT_ROOT

YEARS = (2018, 2025)
SEED = 20261202
TRUE_RATES: dict[str, dict[str, float]] = {
    # program id: true count parameters (the catalogue's prior in the comment)
    "jzf2017-3.tech-transaction": {"mean": 24},  # negbin, prior mean 30, rate_cv 0.25
    "jzf2017-3.science-award": {"mean": 7},  # poisson, prior 6, rate_cv 0.25
    "jzf2017-3.major-conversion": {
        "mean": 14
    },  # negbin, prior mean 3, dispersion 1 (the stored history: binomial 35 × 0.4)
    "jwf2017-4.innovation-salary": {"mean": 36},  # negbin, prior 30, rate_cv 0.2
    "jwf2017-4.key-innovation-team": {"mean": 10},  # negbin, prior 10, rate_cv 0.25
    "jwf2017-4.headhunter-subsidy": {"mean": 45},  # negbin, prior 40, rate_cv 0.3
    "jwf2017-4.overseas-expert": {"mean": 34},  # poisson, prior 40, rate_cv 0.25
    "jwf2017-4.postdoc-researcher": {"mean": 28, "growth": 0.12, "base_year": 2018},  # DRIFTS; prior 40, no growth
}
TRUE_INPUTS: dict[str, dict[str, float]] = {
    # program id: true award-size parameters (override paths), where they differ from the prior
    "jwf2017-4.key-innovation-team": {"uptake.inputs.grant_share.mean": 0.7},  # prior mean share 0.55 of 200万元
}
SOURCE = "synthetic (fiscal_sim.calibrate.synthetic: stated true rates, engine noise); not real records"


def true_overlay(base: Path, folder: Path, years: tuple[int, int] = YEARS, seed: int = SEED) -> Path:
    """A scenario file extending ``base`` with the true rates, certain (rate_cv 0), over ``years``, 1 draw."""
    overrides = {
        pid: {f"uptake.count.{k}": v for k, v in (p | {"rate_cv": 0.0}).items()} | TRUE_INPUTS.get(pid, {})
        for pid, p in TRUE_RATES.items()
    }
    data = {
        "scenario": {
            "name": "synthetic_truth",
            "extends": str(base.resolve()),
            "programs": list(TRUE_RATES),
            "horizon": {"start": years[0], "end": years[1]},
            "draws": 1,
            "seed": seed,
            "budgets": [],
            "pipelines": [],
            "commitments": None,
            "overrides": overrides,
        }
    }
    path = folder / "truth.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def truth_task(scen, start: int, stop: int) -> dict:
    """The engine's ledgers of one chunk (the synthetic history has one draw: one chunk)."""
    from fiscal_sim.engine.chunk import simulate_chunk

    return simulate_chunk(scen, start, stop)


def synthetic_rows(
    base: Path = DEFAULT_ROOT / "baseline.yaml", years: tuple[int, int] = YEARS, seed: int = SEED
) -> list[dict]:
    """History rows (program, jurisdiction, year, awards, applications, amount_wan, source) from one engine draw."""
    from fiscal_sim.orchestrate.driver import drive_chunks
    from fiscal_sim.orchestrate.executors import Executor
    from fiscal_sim.scenario import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        scen = load_scenario(true_overlay(base, Path(tmp), years, seed))
    ((_, _, ledgers),) = drive_chunks(scen, Executor(), truth_task, scen)  # the one draw, through the driver
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    rows = []
    for sp in scen.programs:
        led = ledgers[sp.id]
        for i, j in enumerate(sp.prog.jurisdictions):
            for t, y in enumerate(scen.years):
                if sp.lam[i, t] == 0:  # not in force (or no allocation there): no record
                    continue
                n = int(led.applicants[0, i, t])
                rows.append(
                    {
                        "program": sp.id,
                        "jurisdiction": j,
                        "year": y,
                        "awards": n,
                        "applications": n + int(rng.poisson(0.4 * n)),
                        "amount_wan": round(float(led.committed[0, i, t]) / 1e4, 2),
                        "source": SOURCE,
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_ROOT / "history" / "awards_synthetic.csv")
    ap.add_argument("--seed", type=int, default=SEED)
    args = ap.parse_args(argv)
    rows = synthetic_rows(seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out} ({len(rows)} rows, SYNTHETIC)")


if __name__ == "__main__":  # pragma: no cover
    main()
