"""``fiscal-sim calibrate`` and ``fiscal-sim backtest`` (registered on the main app by :func:`register`)."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Optional

import typer

ScenarioOpt = Annotated[Optional[Path], typer.Option("--scenario", "-s", help="scenario YAML (default: the catalogue's baseline.yaml)")]


def _inputs(history: Path, scenario: Path | None):
    from fiscal_sim.calibrate.history import read_history
    from fiscal_sim.catalogue.loader import DEFAULT_ROOT
    from fiscal_sim.scenario import load_scenario

    scen = load_scenario(scenario or DEFAULT_ROOT / "baseline.yaml")
    return read_history(history, scen.catalogue), scen


def synthetic_note(hist) -> str | None:
    """One plain line when the history's source column says it is synthetic: every figure printed after it
    illustrates the method and is not the bureau's record."""
    if not hist.synthetic:
        return None
    return (f"NOTE: {hist.path} is synthetic (source: {'; '.join(hist.sources)}): the figures below illustrate "
            "the method; they are not the bureau's records")


def calibrate(history: Annotated[Path, typer.Argument(help="award history: .csv, .parquet or .xlsx (columns: README, Calibration)")],
              out_file: Annotated[Path, typer.Option("--out", help="scenario overlay YAML to write")],
              scenario: ScenarioOpt = None,
              quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only what was written")] = False) -> None:
    """Update each program's uptake prior from its award history; write a scenario overlay that `run` accepts.

    Example: fiscal-sim calibrate scenarios/history/awards_synthetic.csv --out outputs/baseline_calibrated.yaml
    """
    from rich.table import Table

    from fiscal_sim.calibrate.overlay import overlay_data, write_overlay
    from fiscal_sim.calibrate.posterior import calibrate as run_calibrate
    from fiscal_sim.cli import fail, out, show
    from fiscal_sim.errors import FiscalSimError

    try:
        hist, scen = _inputs(history, scenario)
        cals = run_calibrate(hist, scen)
        path = write_overlay(overlay_data(scen, hist, cals, out_file), out_file)
    except FiscalSimError as e:
        fail(e)
    done = [c for c in cals if c.years]
    out.print(f"wrote [bold]{path}[/bold] ({len(done)} programs calibrated from {hist.path}, "
              f"{len(cals) - len(done)} keep their prior); run it with: fiscal-sim run {path}")
    if note := synthetic_note(hist):
        out.print(note, markup=False, highlight=False)
    if quiet:
        return
    from fiscal_sim.calibrate.impact import DRAWS, impact, lines
    from fiscal_sim.scenario import load_scenario

    try:
        changes = impact(scen, load_scenario(path), cals)
    except FiscalSimError as e:
        fail(e)
    for line in lines(changes, DRAWS):
        out.print(line, markup=False, highlight=False)
    out.print()
    t = Table("program", "model", "years", "awards", "parameter", "prior", "posterior", "90% interval", "growth",
              title="the statistics behind it (posterior mean and 90% interval of the uptake parameter)",
              title_justify="left")
    for c in done:
        g = c.growth or {}
        t.add_row(c.program, c.model, str(len(c.years)), f"{c.awards:,.0f}", c.parameter.split(".")[-1],
                  f"{c.prior_mean:.4g}", f"{c.post_mean:.4g}", f"{c.interval[0]:.4g}–{c.interval[1]:.4g}",
                  "" if not g else "none usable" if g["estimate"] is None
                  else f"{g['estimate']:+.1%}" + (" adopted" if g["adopted"] else " (kept prior)"))
    show(t)


def backtest(history: Annotated[Path, typer.Argument(help="award history: .csv, .parquet or .xlsx")],
             holdout_from: Annotated[int, typer.Option("--holdout-from", help="first held-out year: calibrate on earlier years")],
             scenario: ScenarioOpt = None,
             draws: Annotated[int, typer.Option(min=1, help="Monte Carlo draws of the held-out years")] = 1000,
             out_dir: Annotated[Optional[Path], typer.Option("--out", help="output folder (default outputs/<scenario>_backtest)")] = None,
             quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only what was written")] = False) -> None:
    """Calibrate on the years before --holdout-from, simulate the later years and score the forecast.

    Example: fiscal-sim backtest scenarios/history/awards_synthetic.csv --holdout-from 2023
    """
    from rich.table import Table

    from fiscal_sim.calibrate.backtest import run_backtest
    from fiscal_sim.report.backtest import backtest_section, standalone_page
    from fiscal_sim.cli import fail, out, show
    from fiscal_sim.errors import FiscalSimError
    from fiscal_sim.io.outdir import inputs_of, replace_dir
    from fiscal_sim.io.parquet import manifest_header, write_json, write_table

    try:
        hist, scen = _inputs(history, scenario)
        target = out_dir or Path("outputs") / f"{scen.spec.name}_backtest"
        with replace_dir(target, "backtest", [*inputs_of(scen), Path(hist.path)]) as tmp:
            bt = run_backtest(hist, scen, holdout_from, tmp, draws=draws, final=target)
            header = manifest_header(uuid.uuid4().hex[:12], sys.argv, kind="backtest")
            write_table(bt.table, tmp / "backtest.parquet", header["run_id"], scenario=scen.spec.name)
            write_json({**header, "history": hist.path, "history_synthetic": hist.synthetic, **bt.summary},
                       tmp / "backtest.json")
            (tmp / "backtest.html").write_text(
                standalone_page(backtest_section(tmp), json.loads((tmp / "backtest.json").read_text(encoding="utf-8"))),
                encoding="utf-8")
    except FiscalSimError as e:
        fail(e)
    out.print(f"wrote [bold]{target}[/bold] (backtest.parquet, backtest.json, backtest.html, calibration.yaml)")
    if note := synthetic_note(hist):
        out.print(note, markup=False, highlight=False)
    if quiet:
        return
    from fiscal_sim.calibrate.backtest import plain_lines

    for line in plain_lines(bt.table):
        out.print(line, markup=False, highlight=False)
    out.print()
    t = Table("measure", "program-years", "80% coverage", "90% coverage", "mean CRPS", "flagged", "verdict",
              title=f"the statistics behind it (backtest from {holdout_from}; CRPS: mean forecast error score, "
                    "lower is better)", title_justify="left")
    for m, s in bt.summary["measures"].items():
        t.add_row(m, str(s["program_years"]), f"{s['coverage_80']:.0%}", f"{s['coverage_90']:.0%}",
                  f"{s['mean_crps'] / 1e4:,.1f}万元" if m == "amount_cny" else f"{s['mean_crps']:,.2f}", ", ".join(f"{p} ({w})" for p, w in s["flagged"].items()) or "none",
                  s["verdict"])
    show(t)


def register(app: typer.Typer) -> None:
    app.command()(calibrate)
    app.command()(backtest)
