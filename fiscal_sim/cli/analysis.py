"""The analyst's commands: compare, sweep, sensitivity and the assumption ledger."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Column, Table

from fiscal_sim import terminal
from fiscal_sim.cli import console, options
from fiscal_sim.cli.console import pct, wan
from fiscal_sim.cli.options import ExecutorOpt, QuietOpt, SchedulerFileOpt, SchedulerOpt, WorkersOpt


def compare(
    baseline: Annotated[Path, typer.Argument(help="baseline scenario YAML")],
    reform: Annotated[Path, typer.Argument(help="reform scenario YAML (e.g. the baseline with overrides)")],
    draws: Annotated[Optional[int], typer.Option(help="draws (default: the baseline's)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="root seed for both (default: the baseline's)")] = None,
    workers: WorkersOpt = 1,
    out_dir: Annotated[
        Optional[str],
        typer.Option("--out", help="output folder (default outputs/<reform>_vs_<baseline>), or a URL (s3://…)"),
    ] = None,
    write_draws: Annotated[
        bool, typer.Option("--draws-ledger/--no-draws-ledger", help="write the per-draw change")
    ] = True,
    independent: Annotated[
        bool,
        typer.Option(
            "--independent", help="give the reform its own seed (no common random numbers: to see what CRN buy)"
        ),
    ] = False,
    tolerance: Annotated[
        float,
        typer.Option(help="list a payer or program as changed only when its mean changes by more than this many yuan"),
    ] = 1.0,
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="TARGET=VALUE applied to the reform (the sweep's grammar, "
            "one value), e.g. programs.<id>.parameters.<name>=500 (repeatable)",
        ),
    ] = [],
    budget: Annotated[
        list[str],
        typer.Option(
            "--budget",
            help="PAYER[:PROGRAM]=AMOUNT a year for both scenarios "
            "(万元 unless a unit is given), e.g. city=2.5亿 (repeatable)",
        ),
    ] = [],
    executor: ExecutorOpt = "pool",
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Compare a reform with its baseline draw by draw (common random numbers); write compare.parquet.

    Example: fiscal-sim compare scenarios/baseline.yaml scenarios/reform.yaml --draws 2000 --workers 2
    """
    from fiscal_sim import api, headline as hl
    from fiscal_sim.analysis.compare import headline
    from fiscal_sim.io.target import readable

    base = api.load(baseline, draws=draws, seed=seed, budgets=budget)
    ref = api.load(reform, sets=set_, budgets=budget)
    target = options.target(out_dir, Path("outputs") / f"{ref.spec.name}_vs_{base.spec.name}")
    options.check_out(target, "compare", base, ref)
    workers = options.workers(base, workers)
    bar, task = console.progress(base.spec.draws, f"{ref.spec.name} vs {base.spec.name}: draws", quiet)
    with bar, options.executor(executor, workers, scheduler, scheduler_file) as ex:
        result = api.write_compare(
            base,
            ref,
            target,
            workers=workers,
            independent=independent,
            write_draws=write_draws,
            command=sys.argv,
            progress=lambda k: bar.advance(task, k),
            executor=ex,
        )
    console.wrote(
        result.out,
        f" (run {result.run_id}; {base.spec.draws:,} draws, "
        f"{'independent draws' if independent else 'common random numbers'})",
    )
    if quiet:
        return
    rows = result.table.to_pylist()
    with readable(result.out) as folder:
        console.lines(hl.compare_lines(rows, hl.from_folder(folder / "baseline"), hl.from_folder(folder / "reform")))
    h = headline(result.table, tolerance)
    for t in compare_tables(h, ref, f"{ref.spec.name} − {base.spec.name}: expected grant cash, 万元"):
        console.show(t)
    others = [r for r in h["horizon"] if r["payer"] not in ("ALL", "city") and abs(r["change_mean_cny"]) > tolerance]
    if others:
        t = Table(
            "payer",
            "baseline",
            "reform",
            "change",
            "± se",
            title="over the horizon, other payers, 万元",
            title_justify="left",
        )
        for r in others:
            t.add_row(
                console.payer_names(ref.geography, r["payer"], "en"),
                wan(r["baseline_mean_cny"]),
                wan(r["reform_mean_cny"]),
                wan(r["change_mean_cny"], True),
                wan(r["change_se_cny"]),
            )
        console.show(t)
    changed = h["programs"]
    if changed:
        t = Table(
            Column("program", no_wrap=True, min_width=max(len(r["program"]) for r in changed)),
            "baseline",
            "reform",
            "change",
            "± se",
            title=f"programs whose mean changes by more than {tolerance:g} yuan (horizon, all payers), 万元",
            title_justify="left",
        )
        for r in changed:
            t.add_row(
                r["program"],
                wan(r["baseline_mean_cny"]),
                wan(r["reform_mean_cny"]),
                wan(r["change_mean_cny"], True),
                wan(r["change_se_cny"]),
            )
        console.show(t)


def compare_tables(h: dict, ref: Any, title: str) -> list[Table]:
    """By year (all payers, the city) and over the horizon: mean change with its se, the P5–P95 of the per-draw
    change and P(exceed) before → after; in two narrower tables when the terminal is under 110 columns (headers
    are never broken, payer names wrap between words)."""
    rows = h["by_year"] + [r for r in h["horizon"] if r["payer"] in ("ALL", "city")]
    names = {
        r["payer"]: "all payers" if r["payer"] == "ALL" else console.payer_names(ref.geography, r["payer"], "en")
        for r in rows
    }
    num = lambda name: Column(name, justify="right", no_wrap=True)  # noqa: E731
    first = [Column("payer", min_width=10), Column("year", no_wrap=True)]
    a = [num("base"), num("reform"), num("change"), num("± se")]
    b = [num("P5 Δ"), num("P95 Δ"), Column("P(exceed) base → reform", no_wrap=True, min_width=13)]

    def cells(r: dict) -> tuple[list[str], list[str], list[str]]:
        p_ex = (
            f"{pct(r['baseline_p_exceed'])} → {pct(r['reform_p_exceed'])}" if r["baseline_p_exceed"] is not None else ""
        )
        return (
            [names[r["payer"]], str(r["fiscal_year"] or "horizon")],
            [
                wan(r["baseline_mean_cny"]),
                wan(r["reform_mean_cny"]),
                wan(r["change_mean_cny"], True),
                wan(r["change_se_cny"]),
            ],
            [wan(r["change_p05_cny"], True), wan(r["change_p95_cny"], True), p_ex],
        )

    groups = [a + b] if console.out.width >= 110 else [a, b]
    tables = []
    for i, g in enumerate(groups):
        t = Table(
            *[Column(c.header, min_width=c.min_width, no_wrap=c.no_wrap) for c in first],
            *g,
            title=title if i == 0 else "the same, continued: the per-draw change and P(exceed)",
            title_justify="left",
        )
        for r in rows:
            k, m, q = cells(r)
            t.add_row(*k, *((m + q) if len(groups) == 1 else m if i == 0 else q))
        tables.append(t)
    return tables


def assumptions(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML")],
    draws: Annotated[Optional[int], typer.Option(help="draws (default: 1000)")] = 1000,
    workers: WorkersOpt = 1,
    out_dir: Annotated[
        Optional[str],
        typer.Option(
            "--out",
            help="output folder (default outputs/<scenario>_assumptions; RUN/assumptions puts it in a run's report), or a URL",
        ),
    ] = None,
    only: Annotated[Optional[list[str]], typer.Option("--only", help="run only this alternative (repeatable)")] = None,
    executor: ExecutorOpt = "pool",
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the output folder")] = False,
) -> None:
    """The assumption ledger: every named alternative against the scenario (common random numbers), ranked by how
    much it moves horizon grant cash; writes assumptions.parquet.

    Example: fiscal-sim assumptions scenarios/baseline.yaml --draws 1000 --workers 2
    """
    from fiscal_sim import api, headline as hl

    scen = api.load(scenario, draws=draws)
    target = options.target(out_dir, Path("outputs") / f"{scen.spec.name}_assumptions")
    options.check_out(target, "assumptions", scen)
    workers = options.workers(scen, workers)
    alts = api.alternatives(scen, only or ())  # every alternative checked before anything runs
    bar, task = console.progress(scen.spec.draws, f"{scen.spec.name}: {len(alts.names)} alternatives, draws", quiet)
    with bar, options.executor(executor, workers, scheduler, scheduler_file) as ex:
        result = api.write_assumptions(
            alts, target, workers=workers, command=sys.argv, progress=lambda k: bar.advance(task, k), executor=ex
        )
    rows = result.table.to_pylist()
    console.wrote(
        result.out,
        f" (run {result.run_id}; {len(rows)} alternatives, {scen.spec.draws:,} draws, common random numbers)",
    )
    if quiet:
        return
    console.plain(hl.assumption_lines(rows, result.budgets.to_pylist()))
    t = Table(
        "#",
        "alternative",
        "kind",
        "all payers",
        "± se",
        "city",
        "± se",
        title=f"change in horizon grant cash against {scen.spec.name}, 万元",
        title_justify="left",
    )
    for r in rows:
        t.add_row(
            str(r["rank"]),
            r["alternative"],
            r["kind"],
            wan(r["change_horizon_cash_all_cny"], True),
            wan(r["change_horizon_cash_all_se_cny"]),
            wan(r["change_horizon_cash_city_cny"], True),
            wan(r["change_horizon_cash_city_se_cny"]),
        )
    console.show(t)


def sweep(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML")],
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="TARGET=V1,V2,… e.g. programs.<id>.parameters.<name>=300,500,800 "
            "or uptake.<id>.growth=0,0.05 (grid: every combination once)",
        ),
    ] = [],
    range_: Annotated[list[str], typer.Option("--range", help="TARGET=LO:HI for --design lhs|sobol")] = [],
    design: Annotated[str, typer.Option(help="grid, lhs (Latin hypercube) or sobol (scrambled Sobol')")] = "grid",
    samples: Annotated[Optional[int], typer.Option(help="design points for lhs/sobol")] = None,
    design_seed: Annotated[
        Optional[int], typer.Option(help="seed of the lhs/sobol design (default: the scenario's)")
    ] = None,
    draws: Annotated[Optional[int], typer.Option(help="draws per point (default: the scenario's)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="root seed, the same for every point")] = None,
    workers: WorkersOpt = 1,
    out_dir: Annotated[
        Optional[str], typer.Option("--out", help="output folder (default outputs/<scenario>_sweep), or a URL (s3://…)")
    ] = None,
    totals_only: Annotated[
        bool, typer.Option("--totals-only", help="keep only totals and swept programs in sweep.parquet")
    ] = False,
    executor: ExecutorOpt = "pool",
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a scenario over a grid or a Latin hypercube / Sobol' design of parameters; write sweep.parquet.

    TARGET is one of: programs.<program_id>.parameters.<name>[.<entry>] (a named parameter, as `fiscal-sim programs show` lists them; programs.<id>.cap is the cap of a capped formula);

    uptake.<program_id>.<path> (uptake.X.growth is uptake.count.growth);

    cost_sharing.<regime>.<fiscal_class>.<payer> (a payer's share; the other payers share the rest);

    shock.sigma or shock.correlation. Program ids contain dots: the longest matching id wins.

    Example: fiscal-sim sweep scenarios/baseline.yaml --set programs.jzf2017-3.major-conversion.cap=1500,3000 --draws 1000
    """
    from fiscal_sim import api, headline as hl
    from fiscal_sim.analysis.sweep import plan, point_totals, sql_names
    from fiscal_sim.io.target import readable

    scen = api.load(scenario, draws=draws, seed=seed)
    p = plan(scen, set_, range_, design, samples, design_seed)  # type: ignore[arg-type]  # checked before any work
    target = options.target(out_dir, Path("outputs") / f"{scen.spec.name}_sweep")
    options.check_out(target, "sweep", scen)
    workers = options.workers(scen, workers)
    bar, task = console.progress(len(p.points), f"{scen.spec.name}: sweep points", quiet)
    with bar, options.executor(executor, workers, scheduler, scheduler_file) as ex:
        result = api.write_sweep(
            scen,
            set_,
            target,
            ranges=range_,
            design=design,
            samples=samples,
            design_seed=design_seed,
            workers=workers,
            totals_only=totals_only,
            command=sys.argv,
            progress=lambda i, n: bar.update(task, completed=i),
            executor=ex,
        )
    console.wrote(result.out, f" ({len(p.points)} points × {scen.spec.draws:,} draws; run {result.run_id})")
    if quiet:
        return
    with readable(result.out) as folder:
        point0 = hl.from_folder(folder / "point-0")  # labels from the first point's dimension tables
    names = {q["payer"]: {"name_zh": q["name_zh"], "name_en": q["name_en"]} for q in point0["payers"]}
    console.plain(hl.sweep_lines(result.table.to_pylist(), sql_names(p.targets), {}, names))
    t = Table(
        "point",
        *[tg.text for tg in p.targets],
        "all payers mean",
        "all payers P95",
        "city mean",
        "city P95",
        title="grant cash over the horizon, 万元",
        title_justify="left",
    )
    for i, pt, a, c in point_totals(result.table, p, ("ALL", "city")):
        t.add_row(
            str(i),
            *[str(v) for v in pt],
            wan(a.get("mean_cny")),
            wan(a.get("p95_cny")),
            wan(c.get("mean_cny")),
            wan(c.get("p95_cny")),
        )
    console.show(t)


def warn_if_other_run(folder: Path, scen: Any) -> None:
    """sensitivity.parquet goes beside a run: say so when that run used another scenario, seed or draws."""
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    theirs = (m.get("scenario", {}).get("sha256"), m.get("seed_entropy"), m.get("draws"))
    if theirs != (scen.sha256, scen.spec.seed, scen.spec.draws):
        console.note(
            f"{folder} holds a run of another scenario file, seed or number of draws "
            f"(sha256 {str(theirs[0])[:12]}…, seed {theirs[1]}, {theirs[2]} draws): the sensitivity table will "
            "not match that run",
            "warning",
        )


def sensitivity(
    source: Annotated[
        Path, typer.Argument(help="scenario YAML, or a run folder (its scenario and settings are reused)")
    ],
    draws: Annotated[Optional[int], typer.Option(help="draws (default: the scenario's or the run's)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="root seed (default: the scenario's or the run's)")] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="worker processes (default: every core for a run folder, else 1)")
    ] = None,
    out_dir: Annotated[
        Optional[Path],
        typer.Option("--out", help="folder for sensitivity.parquet (default: the run folder, or outputs/<scenario>)"),
    ] = None,
    top: Annotated[int, typer.Option(help="parameters to print")] = 10,
    executor: ExecutorOpt = "pool",
    scheduler: SchedulerOpt = None,
    scheduler_file: SchedulerFileOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Rank the uncertain assumptions (uptake rates, shared shock) by their rank correlation with total cost.

    Example: fiscal-sim sensitivity outputs/baseline --workers 2
    """
    from fiscal_sim import api
    from fiscal_sim.analysis.sensitivity import HOSTS, label, top as top_rows

    if source.is_dir():
        scen, changed = api.scenario_of_run(source, draws=draws, seed=seed)
        if changed:
            console.note(f"{scen.path} changed since the run in {source} (sha256 differs)", "warning")
        target = out_dir or source
        workers = workers or os.cpu_count() or 1
        if not quiet:
            console.err.print(
                f"note: a run folder keeps no per-draw parameters (uptake-rate factors, shocks), so the "
                f"run's scenario is simulated again with its seed and {scen.spec.draws:,} draws — the "
                f"same draws — on {workers} worker(s)"
            )
    else:
        scen = api.load(source, draws=draws, seed=seed)
        target = out_dir or Path("outputs") / scen.spec.name
    options.check_out(target, "sensitivity", scen, hosts=HOSTS)
    workers = options.workers(scen, workers or 1)
    warn_if_other_run(target, scen)
    bar, task = console.progress(scen.spec.draws, f"{scen.spec.name}: draws", quiet)
    with bar, options.executor(executor, workers, scheduler, scheduler_file) as ex:
        result = api.write_sensitivity(
            scen, target, workers=workers, progress=lambda k: bar.advance(task, k), executor=ex
        )
    console.wrote(result.path, f" ({scen.spec.draws:,} draws)")
    if quiet:
        return
    lang = terminal.lang_of(None)
    titles = {sp.id: (sp.prog.spec.title_zh if lang == "zh" else sp.prog.spec.title_en) for sp in scen.programs}
    for payer in ("ALL", "city"):
        rows = top_rows(result.table, payer, "horizon", k=top)
        if not rows:
            continue
        name = (
            scen.geography.payer_name(payer, lang) if payer != "ALL" else ("全部财政" if lang == "zh" else "all payers")
        )
        t = Table(
            "rank",
            "parameter",
            "swing, 万元 (low / high 10%)",
            "ρ",
            "first-order share",
            title=f"what drives total grant cash of {name} over the horizon (joint R² of ranks "
            f"{rows[0]['target_rank_r2']:.2f})",
            title_justify="left",
        )
        for r in rows:
            t.add_row(
                str(r["rank"]),
                label(r, titles, lang),
                f"{wan(r['swing_low_cny'], True)} / {wan(r['swing_high_cny'], True)}",
                f"{r['spearman_rho']:+.3f}",
                pct(r["first_order_index"]),
            )
        console.show(t)
