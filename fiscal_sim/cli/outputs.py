"""Commands that make and read a run: run, brief, report, export."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from fiscal_sim import terminal
from fiscal_sim.cli import console, options
from fiscal_sim.cli.options import (
    BudgetOpt,
    ExecutorOpt,
    LangOpt,
    QuietOpt,
    SchedulerFileOpt,
    SchedulerOpt,
    SetOpt,
    WorkersOpt,
)


def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    draws: Annotated[Optional[int], typer.Option(help="number of Monte Carlo draws (default: the scenario's)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="root seed (default: the scenario's)")] = None,
    chunk_size: Annotated[Optional[int], typer.Option(help="draws per chunk (rounded up to whole blocks)")] = None,
    workers: WorkersOpt = 1,
    out_dir: Annotated[
        Optional[str],
        typer.Option(
            "--out",
            help="output folder (default outputs/<scenario name>), or a "
            "URL such as s3://BUCKET/PREFIX (the run goes under PREFIX/<run id>/)",
        ),
    ] = None,
    write_draws: Annotated[
        bool, typer.Option("--draws-ledger/--no-draws-ledger", help="write the per-draw ledger")
    ] = True,
    pipeline: Annotated[
        bool, typer.Option("--pipeline", help="run the simpy pipeline for programs that declare one")
    ] = False,
    set_: SetOpt = [],
    budget: BudgetOpt = [],
    executor: ExecutorOpt = "pool",
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    workspace: Annotated[
        Optional[Path],
        typer.Option(help="a workbench workspace: the run goes to WORKSPACE/runs/<id>/ and into its registry"),
    ] = None,
    quiet: QuietOpt = False,
    lang: LangOpt = None,
) -> None:
    """Simulate a scenario and write Parquet results (headline, summary, per-draw ledger, dimensions, manifest).

    Example: fiscal-sim run scenarios/baseline.yaml --draws 10000 --workers 2 --out outputs/baseline
    --budget city=2.8亿
    """
    from fiscal_sim import api

    options.lang(lang)
    scen = api.load(scenario, draws=draws, seed=seed, chunk_size=chunk_size, sets=set_, budgets=budget)
    if workspace is not None and out_dir is not None:
        raise typer.BadParameter("give --out or --workspace, not both")
    target = None if workspace else options.target(out_dir, Path("outputs") / scen.spec.name)
    if target is not None:
        options.check_out(target, "run", scen)
    workers = options.workers(scen, workers)
    bar, task = console.progress(scen.spec.draws, f"{scen.spec.name}: draws", quiet)
    with bar, options.executor(executor, workers, scheduler, scheduler_file) as ex:
        result = api.write(
            scen,
            target,
            workers=workers,
            write_draws=write_draws,
            command=sys.argv,
            progress=lambda k: bar.advance(task, k),
            pipeline=pipeline,
            executor=ex,
            workspace=workspace,
        )
    console.wrote(
        result.out,
        f" (run {result.run_id}; {scen.spec.draws:,} draws, {len(scen.programs)} programs "
        f"simulated, {len(scen.unpriced)} unpriced/unsimulated listed)",
    )
    if not quiet:
        shown = terminal.lang_of(lang)
        if result.headline is not None:
            console.print_headline(result.headline, shown)
        names = {p: console.payer_names(scen.geography, p, shown) for p in scen.geography.payers}
        for t in terminal.cash_tables(result.summary, console.out.width, names, shown):
            console.show(t)


def brief(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (written by fiscal-sim run)")],
    lang: Annotated[str, typer.Option("--lang", help="zh (default) or en")] = "zh",
    out_dir: Annotated[
        Optional[Path], typer.Option("--out", help="folder for brief_<lang>.html/.pdf (default RUN/brief)")
    ] = None,
) -> None:
    """The director's brief: one A4 page (HTML, and PDF printed by headless Chromium when one is found).

    Example: fiscal-sim brief outputs/baseline --lang zh
    """
    from fiscal_sim import api

    options.lang(lang)
    res = api.write_brief(run_dir, lang, out_dir)
    console.wrote(res.html, f" and [bold]{res.pdf}[/bold]" if res.pdf else "")
    if res.note:
        console.note(res.note)


def report(
    run_dir: Annotated[
        str,
        typer.Argument(
            help="a run folder (fiscal-sim run) or a comparison folder (fiscal-sim compare), "
            "or a run's URL (s3://…; then give --out)"
        ),
    ],
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="report folder (default RUN_DIR/report)")] = None,
    top: Annotated[int, typer.Option(help="programs in the top-N charts")] = 10,
    cjk: Annotated[
        bool, typer.Option("--cjk/--no-cjk", help="Chinese chart labels when a CJK font is installed")
    ] = True,
    lang: Annotated[Optional[str], typer.Option("--lang", help="the headline's language: zh (default) or en")] = None,
) -> None:
    """Write a self-contained HTML report (headline first; charts with their tables; prints on A4) and PNGs.

    Example: fiscal-sim report outputs/baseline
    """
    from fiscal_sim import api

    options.lang(lang)
    result = api.write_report(run_dir, out_dir, top=top, cjk=cjk, lang=lang or "zh")
    font = result.cjk_font or "none (chart labels in English; Chinese titles in the tables)"
    console.wrote(result.html, f" ({result.charts} charts, PNGs beside it; CJK font: {font})")


def export(
    run_dir: Annotated[str, typer.Argument(help="a run folder written by `fiscal-sim run`, or its URL (s3://…)")],
    xlsx: Annotated[
        Optional[Path], typer.Option("--xlsx", help="write an Excel workbook to this file, e.g. baseline.xlsx")
    ] = None,
    csv: Annotated[
        Optional[Path], typer.Option("--csv", help="write every table as CSV (UTF-8 with BOM) into this folder")
    ] = None,
) -> None:
    """Export a run for spreadsheets: an Excel workbook (headline, payer × year pivot of mean and P90 in 万元,
    budget exceedance, top programs, assumptions) and/or CSV files.

    Example: fiscal-sim export outputs/baseline --xlsx baseline.xlsx --csv outputs/baseline_csv
    """
    from fiscal_sim import api

    files = api.export_run(run_dir, xlsx=xlsx, csv=csv)
    if xlsx is not None:
        console.wrote(files.pop(0))
    if csv is not None:
        console.wrote(csv, f" ({', '.join(f.name for f in files)})")
