"""Backtest: calibrate on the years before a hold-out year, simulate the held-out years, score the forecast.

For each program and held-out year (and the total over programs, per year and draw, so the shared shock's
correlation counts) the forecast is the engine's distribution over draws of the awards (and, where the
history records amounts, the amount committed) in the jurisdictions the history observed. Scores: the
forecast mean and P5/P10/P50/P90/P95 (exact sample quantiles), the actual's percentile rank (PIT;
randomised for counts, so it is uniform under a correct model), whether the actual lies in the central
80% and 90% intervals, and the CRPS (sample formula E|X − y| − ½E|X − X′|; no maintained CRPS package
is available here). A program whose PITs sit too far from ½ (mean-PIT z-test, |z| > 2.58) is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
from scipy import stats

from fiscal_sim.calibrate.history import ALL, History
from fiscal_sim.calibrate.overlay import overlay_data, write_overlay
from fiscal_sim.calibrate.posterior import calibrate
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.orchestrate.driver import drive_chunks, executor_for
from fiscal_sim.orchestrate.executors import Executor
from fiscal_sim.scenario import Scenario, load_scenario
from fiscal_sim.uptake.random import stable_key

QUANTILES = {"p05": 0.05, "p10": 0.10, "p50": 0.50, "p90": 0.90, "p95": 0.95}
FLAG_Z = 2.58
"""|z| of the mean PIT above which a program is flagged (two-sided 1%)"""
PIT_BINS = 10
UNITS = {"awards": "count", "amount_cny": "CNY"}
COLUMNS = [
    "program",
    "fiscal_year",
    "measure",
    "unit",
    "actual",
    "forecast_mean",
    *QUANTILES,
    "pit",
    "in_80",
    "in_90",
    "crps",
    "train_years",
    "flag",
]


def crps_sample(x: np.ndarray, y: float) -> float:
    """CRPS of the sample ``x`` (one forecast) at the outcome ``y``: E|X − y| − ½ E|X − X′|."""
    s = np.sort(np.asarray(x, float))
    n = s.size
    spread = 2.0 * float(((2 * np.arange(1, n + 1) - n - 1) * s).sum()) / n**2
    return float(np.abs(s - y).mean() - 0.5 * spread)


def pit(x: np.ndarray, y: float, u: float) -> float:
    """Randomised percentile rank of ``y`` in the sample ``x``: F(y⁻) + u·(F(y) − F(y⁻))."""
    below, at_most = float((x < y).mean()), float((x <= y).mean())
    return below + u * (at_most - below)


def score(x: np.ndarray, y: float, u: float) -> dict[str, Any]:
    """One forecast (sample ``x``) against its actual ``y``."""
    q = np.quantile(x, list(QUANTILES.values()), method="inverted_cdf")
    row: dict[str, Any] = {
        "actual": float(y),
        "forecast_mean": float(x.mean()),
        **{k: float(v) for k, v in zip(QUANTILES, q)},
    }
    p = pit(x, y, u)
    row |= {
        "pit": p,
        "in_80": bool(q[1] <= y <= q[3]),
        "in_90": bool(q[0] <= y <= q[4]),
        "crps": crps_sample(x, y),
        "flag": "below P5" if p < 0.05 else "above P95" if p > 0.95 else "",
    }
    return row


def mean_pit_z(pits: np.ndarray) -> float:
    """z of the mean of k PITs against Uniform(0, 1) (mean ½, variance 1/12k)."""
    return float((pits.mean() - 0.5) / np.sqrt(1.0 / (12 * pits.size))) if pits.size else 0.0


@dataclass
class Backtest:
    table: pa.Table
    summary: dict[str, Any]
    overlay: dict[str, Any]


def forecast_draws(
    scen: Scenario, test: History, progress: Callable[[int], None] | None = None, executor: Executor | None = None
) -> dict[tuple[str, int, str], np.ndarray]:
    """Per (program, year, measure): the draws of awards (and amounts) over the jurisdictions observed."""
    cells: dict[tuple[str, int], list[int] | slice] = {}
    for k in range(len(test)):
        pid, y, j = test.program[k], int(test.year[k]), test.jurisdiction[k]
        sp = next(s for s in scen.programs if s.id == pid)
        prev = cells.get((pid, y), [])
        cells[(pid, y)] = slice(None) if j == ALL else [*prev, sp.prog.jurisdictions.index(j)]  # type: ignore[misc]
    parts: dict[tuple[str, int, str], list[np.ndarray]] = {}
    for _, _, part in drive_chunks(scen, executor_for(executor), forecast_task, (scen, cells), (), progress):
        for key, draws in part.items():
            parts.setdefault(key, []).append(draws)
    return {k: np.concatenate(v).astype(float) for k, v in parts.items()}


def forecast_task(state: tuple[Scenario, dict], start: int, stop: int) -> dict[tuple[str, int, str], np.ndarray]:
    """One chunk on an executor's worker: awards and amounts of every held-out (program, year) cell."""
    scen, cells = state
    ledgers = simulate_chunk(scen, start, stop)
    out = {}
    for (pid, y), idx in cells.items():
        led, t = ledgers[pid], scen.years.index(y)
        out[(pid, y, "awards")] = led.applicants[:, idx, t].sum(axis=1)
        out[(pid, y, "amount_cny")] = led.committed[:, idx, t].sum(axis=1)
    return out


def run_backtest(
    hist: History,
    scen: Scenario,
    holdout_from: int,
    out: Path,
    draws: int = 1000,
    progress: Callable[[int], None] | None = None,
    final: Path | None = None,
    executor: Executor | None = None,
) -> Backtest:
    """Calibrate on years before ``holdout_from``, simulate the later years, score; ``out`` is the overlay's folder
    (``final``: the folder it is renamed to, named in the overlay's "run it with" line)."""
    train, test = hist.before(holdout_from), hist.since(holdout_from)
    if not len(test):
        raise InputError(
            [
                Problem(
                    hist.path,
                    None,
                    "year",
                    f"no history from {holdout_from} on to hold out (years {min(hist.years)}–{max(hist.years)})",
                )
            ]
        )
    cals = calibrate(train, scen)
    cals = [c for c in cals if c.program in test.programs]
    if not [sp for sp in scen.programs if sp.id in test.programs]:
        raise InputError([Problem(hist.path, None, "program", "no held-out program is simulated in the scenario")])
    overlay = overlay_data(
        scen,
        train,
        cals,
        out / "calibration.yaml",
        name=f"{scen.spec.name}_backtest",
        programs=test.programs,
        horizon={"start": min(test.years), "end": max(test.years)},
        draws=draws,
        budgets=[],
        pipelines=[],
        commitments=None,
    )
    overlay["calibration"]["holdout_from"] = holdout_from
    path = write_overlay(overlay, out / "calibration.yaml", final and Path(final) / "calibration.yaml")
    bt = load_scenario(path, scen.catalogue)
    fc = forecast_draws(bt, test, progress, executor)
    rng = np.random.default_rng(np.random.SeedSequence(bt.spec.seed, spawn_key=(stable_key("backtest-pit"),)))
    train_years = {c.program: len(c.years) for c in cals}
    rows: list[dict[str, Any]] = []
    for measure in ("awards", "amount_cny"):
        col = test.awards if measure == "awards" else test.amount_cny
        for y in test.years:
            total_x: np.ndarray | float = 0.0
            total_y, complete = 0.0, True
            for pid in test.programs:
                m = (test.program == pid) & (test.year == y)
                if not m.any():
                    continue
                actual = col[m]
                if np.isnan(actual).any():
                    complete = False
                    continue
                x = fc[(pid, y, measure)]
                if x.max() == 0 and actual.sum() == 0:  # nothing expected, nothing happened (e.g. not in force)
                    continue
                rows.append(
                    {
                        "program": pid,
                        "fiscal_year": y,
                        "measure": measure,
                        "unit": UNITS[measure],
                        **score(x, float(actual.sum()), float(rng.random())),
                        "train_years": train_years.get(pid, 0),
                    }
                )
                total_x, total_y = total_x + x, total_y + float(actual.sum())
            if complete and isinstance(total_x, np.ndarray):
                rows.append(
                    {
                        "program": ALL,
                        "fiscal_year": y,
                        "measure": measure,
                        "unit": UNITS[measure],
                        **score(total_x, total_y, float(rng.random())),
                        "train_years": 0,
                    }
                )
    table = pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in rows]).cast(
        pa.schema(
            [("program", pa.string()), ("fiscal_year", pa.int16()), ("measure", pa.string()), ("unit", pa.string())]
            + [(c, pa.float64()) for c in ["actual", "forecast_mean", *QUANTILES, "pit"]]
            + [
                ("in_80", pa.bool_()),
                ("in_90", pa.bool_()),
                ("crps", pa.float64()),
                ("train_years", pa.int16()),
                ("flag", pa.string()),
            ]
        )
    )
    return Backtest(table, summarise(rows, holdout_from, bt), overlay)


def summarise(rows: list[dict[str, Any]], holdout_from: int, bt: Scenario) -> dict[str, Any]:
    """Coverage, PIT histogram, CRPS and flags per measure (program-years; totals apart)."""
    out: dict[str, Any] = {
        "holdout_from": holdout_from,
        "draws": bt.spec.draws,
        "seed": bt.spec.seed,
        "scenario": bt.spec.name,
        "measures": {},
    }
    for measure in ("awards", "amount_cny"):
        prog_rows = [r for r in rows if r["measure"] == measure and r["program"] != ALL]
        if not prog_rows:
            continue
        pits = np.array([r["pit"] for r in prog_rows])
        n = len(prog_rows)
        in80, in90 = sum(r["in_80"] for r in prog_rows), sum(r["in_90"] for r in prog_rows)
        flagged, programs = {}, {}
        for pid in sorted({r["program"] for r in rows if r["measure"] == measure}):
            mine = [r for r in rows if r["measure"] == measure and r["program"] == pid]
            z = mean_pit_z(np.array([r["pit"] for r in mine]))
            if abs(z) > FLAG_Z:
                flagged[pid] = "forecast too high" if z < 0 else "forecast too low"
            programs[pid] = {
                "years": len(mine),
                "in_80": sum(r["in_80"] for r in mine),
                "in_90": sum(r["in_90"] for r in mine),
                "mean_pit": round(float(np.mean([r["pit"] for r in mine])), 3),
                "mean_pit_z": round(z, 2),
                "mean_crps": float(np.mean([r["crps"] for r in mine])),
                "flag": flagged.get(pid, ""),
            }
        p80 = stats.binomtest(in80, n, 0.8).pvalue
        p90 = stats.binomtest(in90, n, 0.9).pvalue
        out["measures"][measure] = {
            "program_years": n,
            "coverage_80": in80 / n,
            "coverage_90": in90 / n,
            "coverage_80_pvalue": float(p80),
            "coverage_90_pvalue": float(p90),
            "pit_histogram": np.histogram(pits, bins=PIT_BINS, range=(0, 1))[0].tolist(),
            "mean_crps": float(np.mean([r["crps"] for r in prog_rows])),
            "flagged": flagged,
            "programs": programs,
            "verdict": (
                "intervals consistent with nominal coverage"
                if min(p80, p90) >= 0.05 and not flagged
                else "miscalibrated: see flagged programs and coverage"
            ),
        }
    return out


def plain_lines(table: pa.Table) -> list[str]:
    """The backtest in plain words: per held-out year, awards and amounts of the programs with history (the
    ``ALL`` rows), actual against the forecast mean, then how many program-years fell in the 80% band."""
    rows = table.to_pylist()
    total = {(r["fiscal_year"], r["measure"]): r for r in rows if r["program"] == ALL}
    years = sorted({y for y, _ in total})
    if not years:
        return []
    out = [
        f"Held out {years[0]}–{years[-1]}: what happened against what the model, calibrated on earlier years, "
        "expected (all programs with history together):"
    ]
    for y in years:
        aw = total.get((y, "awards"))
        am = total.get((y, "amount_cny"))
        line = f"  {y}:"
        if aw:
            line += f" {aw['actual']:,.0f} awards (expected {aw['forecast_mean']:,.1f})"
        if am:
            line += f"; {am['actual'] / 1e4:,.0f}万元 awarded (expected {am['forecast_mean'] / 1e4:,.0f}万元)"
        out.append(line)
    for m, what in (("awards", "award counts"), ("amount_cny", "amounts")):
        mine = [r for r in rows if r["measure"] == m and r["program"] != ALL]
        if mine:
            inside = sum(bool(r["in_80"]) for r in mine)
            out.append(
                f"  {inside} of {len(mine)} program-years' {what} fell inside the 80% band (about "
                f"{0.8 * len(mine):.0f} expected if the uncertainty is right)"
            )
    return out


@dataclass
class BacktestResult:
    out: Path
    backtest: Backtest
    history: History


def write_backtest(
    hist: History,
    scen: Scenario,
    holdout_from: int,
    target: Path,
    draws: int = 1000,
    command: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> BacktestResult:
    """Run the backtest and write its folder atomically: backtest.parquet, backtest.json, backtest.html (a page
    of its own) and the training overlay calibration.yaml."""
    import json
    import uuid

    from fiscal_sim.io.outdir import inputs_of, replace_dir
    from fiscal_sim.io.parquet import manifest_header, write_json, write_table
    from fiscal_sim.report.backtest import backtest_section, standalone_page

    with replace_dir(target, "backtest", [*inputs_of(scen), Path(hist.path)]) as tmp:
        bt = run_backtest(
            hist, scen, holdout_from, tmp, draws=draws, final=target, progress=progress, executor=executor
        )
        header = manifest_header(uuid.uuid4().hex[:12], command, kind="backtest")
        write_table(bt.table, tmp / "backtest.parquet", header["run_id"], scenario=scen.spec.name)
        write_json(
            {**header, "history": hist.path, "history_synthetic": hist.synthetic, **bt.summary}, tmp / "backtest.json"
        )
        (tmp / "backtest.html").write_text(
            standalone_page(backtest_section(tmp), json.loads((tmp / "backtest.json").read_text(encoding="utf-8"))),
            encoding="utf-8",
        )
    return BacktestResult(target, bt, hist)
