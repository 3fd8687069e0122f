"""``fiscal-sim calibrate`` and ``fiscal-sim backtest``: uptake priors against the bureau's award history."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from fiscal_sim.cli import console, options
from fiscal_sim.cli.options import ExecutorOpt, SchedulerFileOpt, SchedulerOpt

ScenarioOpt = Annotated[
    Optional[Path], typer.Option("--scenario", "-s", help="scenario YAML (default: the catalogue's baseline.yaml)")
]


def calibrate(
    history: Annotated[
        Path, typer.Argument(help="award history: .csv, .parquet or .xlsx (columns: README, Calibration)")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="scenario overlay YAML to write")],
    scenario: ScenarioOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only what was written")] = False,
) -> None:
    """Update each program's uptake prior from its award history; write a scenario overlay that `run` accepts.

    Example: fiscal-sim calibrate scenarios/history/awards_synthetic.csv --out outputs/baseline_calibrated.yaml
    """
    from fiscal_sim import api
    from fiscal_sim.calibrate.impact import DRAWS, impact, lines

    res = api.write_calibration(history, out_file, scenario)
    done = [c for c in res.calibrations if c.years]
    console.wrote(
        res.path,
        f" ({len(done)} programs calibrated from {res.history.path}, "
        f"{len(res.calibrations) - len(done)} keep their prior); run it with: fiscal-sim run {res.path}",
    )
    if note := res.history.synthetic_note():
        console.out.print(note, markup=False, highlight=False)
    if quiet:
        return
    console.plain(lines(impact(res.scenario, api.load(res.path), res.calibrations), DRAWS))
    t = Table(
        "program",
        "model",
        "years",
        "awards",
        "parameter",
        "prior",
        "posterior",
        "90% interval",
        "growth",
        title="the statistics behind it (posterior mean and 90% interval of the uptake parameter)",
        title_justify="left",
    )
    for c in done:
        g = c.growth or {}
        t.add_row(
            c.program,
            c.model,
            str(len(c.years)),
            f"{c.awards:,.0f}",
            c.parameter.split(".")[-1],
            f"{c.prior_mean:.4g}",
            f"{c.post_mean:.4g}",
            f"{c.interval[0]:.4g}–{c.interval[1]:.4g}",
            ""
            if not g
            else "none usable"
            if g["estimate"] is None
            else f"{g['estimate']:+.1%}" + (" adopted" if g["adopted"] else " (kept prior)"),
        )
    console.show(t)


def backtest(
    history: Annotated[Path, typer.Argument(help="award history: .csv, .parquet or .xlsx")],
    holdout_from: Annotated[
        int, typer.Option("--holdout-from", help="first held-out year: calibrate on earlier years")
    ],
    scenario: ScenarioOpt = None,
    draws: Annotated[int, typer.Option(min=1, help="Monte Carlo draws of the held-out years")] = 1000,
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="output folder (default outputs/<scenario>_backtest)")
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    executor: ExecutorOpt = "pool",
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only what was written")] = False,
) -> None:
    """Calibrate on the years before --holdout-from, simulate the later years and score the forecast.

    Example: fiscal-sim backtest scenarios/history/awards_synthetic.csv --holdout-from 2023
    """
    from fiscal_sim import api
    from fiscal_sim.calibrate.backtest import plain_lines

    with options.executor(executor, workers, scheduler, scheduler_file) as ex:
        res = api.write_backtest(history, holdout_from, out_dir, scenario, draws=draws, command=sys.argv, executor=ex)
    console.wrote(res.out, " (backtest.parquet, backtest.json, backtest.html, calibration.yaml)")
    if note := res.history.synthetic_note():
        console.out.print(note, markup=False, highlight=False)
    if quiet:
        return
    bt = res.backtest
    console.plain(plain_lines(bt.table))
    t = Table(
        "measure",
        "program-years",
        "80% coverage",
        "90% coverage",
        "mean CRPS",
        "flagged",
        "verdict",
        title=f"the statistics behind it (backtest from {holdout_from}; CRPS: mean forecast error score, "
        "lower is better)",
        title_justify="left",
    )
    for m, s in bt.summary["measures"].items():
        t.add_row(
            m,
            str(s["program_years"]),
            f"{s['coverage_80']:.0%}",
            f"{s['coverage_90']:.0%}",
            f"{s['mean_crps'] / 1e4:,.1f}万元" if m == "amount_cny" else f"{s['mean_crps']:,.2f}",
            ", ".join(f"{p} ({w})" for p, w in s["flagged"].items()) or "none",
            s["verdict"],
        )
    console.show(t)
