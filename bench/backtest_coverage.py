"""Measured coverage of backtests on synthetic histories (python bench/backtest_coverage.py [--seeds N]).

Each seed draws a synthetic history (fiscal_sim.calibrate.synthetic: stated true rates, the engine's noise),
calibrates on 2018–2021 and scores 2022–2025 with 1,000 draws; the drifting program is reported apart.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np

from fiscal_sim.calibrate.backtest import run_backtest
from fiscal_sim.calibrate.history import read_history
from fiscal_sim.calibrate.synthetic import TRUE_RATES, synthetic_rows
from fiscal_sim.catalogue.loader import DEFAULT_ROOT
from fiscal_sim.scenario import load_scenario

DRIFTING = "jwf2017-4.postdoc-researcher"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--holdout-from", type=int, default=2022)
    ap.add_argument("--draws", type=int, default=1000)
    args = ap.parse_args()
    scen = load_scenario(DEFAULT_ROOT / "baseline.yaml")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            path = Path(tmp) / f"h{seed}.csv"
            hist_rows = synthetic_rows(seed=seed)
            with path.open("w", newline="", encoding="utf-8") as f:
                w = csv.DictWriter(f, fieldnames=list(hist_rows[0]))
                w.writeheader()
                w.writerows(hist_rows)
            out = Path(tmp) / f"bt{seed}"
            out.mkdir()
            bt = run_backtest(read_history(path, scen.catalogue), scen, args.holdout_from, out, draws=args.draws)
            rows += [r | {"seed": seed} for r in bt.table.to_pylist()]
    result = {}
    for measure in ("awards", "amount_cny"):
        for group, keep in (
            ("correct programs", lambda p: p not in ("ALL", DRIFTING)),
            ("drifting program", lambda p: p == DRIFTING),
            ("ALL (total)", lambda p: p == "ALL"),
        ):
            sel = [r for r in rows if r["measure"] == measure and keep(r["program"])]
            pits = np.array([r["pit"] for r in sel])
            result[f"{measure} / {group}"] = {
                "n": len(sel),
                "coverage_80": round(float(np.mean([r["in_80"] for r in sel])), 3),
                "coverage_90": round(float(np.mean([r["in_90"] for r in sel])), 3),
                "pit_mean": round(float(pits.mean()), 3),
                "pit_histogram": np.histogram(pits, bins=10, range=(0, 1))[0].tolist(),
            }
    print(
        json.dumps(
            {
                "seeds": args.seeds,
                "holdout_from": args.holdout_from,
                "draws": args.draws,
                "programs": len(TRUE_RATES),
                **result,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
