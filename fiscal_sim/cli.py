"""The ``fiscal-sim`` command line: thin; it parses, delegates and prints."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

# start-up: pydantic scans every installed package's entry points for plugins (0.1–0.5 s); fiscal_sim uses none
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from fiscal_sim import terminal  # noqa: E402
from fiscal_sim.errors import FiscalSimError, InputError  # noqa: E402
from fiscal_sim.terminal import plain_error  # noqa: E402
from fiscal_sim.units import fmt_wan  # noqa: E402

app = typer.Typer(help="Budget and fiscal commitment simulation for Jiaxing's subsidy policies. "
                  "Add --debug anywhere to see a traceback with an error.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
programs_app = typer.Typer(help="List and describe the programs of the catalogue.", no_args_is_help=True)
app.add_typer(programs_app, name="programs")
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


def show(t: Table) -> None:
    terminal.show(out, t)


def _version(value: bool) -> None:
    if value:
        from fiscal_sim.version import __version__

        out.print(f"fiscal-sim {__version__}")
        raise typer.Exit()


@app.callback()
def _setup(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                 help="print the version and exit")] = False) -> None:
    """Budget and fiscal commitment simulation for Jiaxing's subsidy policies."""
    global out, err
    # tables fit the terminal: its width, or $COLUMNS; 200 columns when piped (nothing is cut in a file)
    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
    err = Console(stderr=True, soft_wrap=True)  # progress bars and messages: the width of this invocation

CatalogueOpt = Annotated[Optional[Path], typer.Option("--catalogue", "-C", help="scenarios folder holding programs/ and catalogue/",
                                                      envvar="FISCAL_SIM_SCENARIOS")]


def fail(e: Exception, code: int = 1) -> None:
    raise typer.Exit(report_error(e, code))


def report_error(e: BaseException, code: int = 1) -> int:
    """Print ``e`` as the lines a user reads (the traceback too with --debug); return the exit code."""
    from fiscal_sim.errors import describe_os_error

    global REPORTED
    REPORTED = True
    if DEBUG:
        import traceback

        traceback.print_exception(e)
    if isinstance(e, InputError):
        err.print(f"[red]{len(e.problems) + e.more:,} problem(s)[/red]:")
        from fiscal_sim.io.secrets import mask

        for line in e.lines():
            err.print(f"  {mask(line)}", markup=False)
        return e.exit_code
    if isinstance(e, FiscalSimError):
        text, code = str(e), e.exit_code
    elif isinstance(e, OSError):
        text = describe_os_error(e)
    elif isinstance(e, UnicodeDecodeError):
        text = f"a file is not UTF-8 ({e.reason} at byte {e.start}): save it as UTF-8"
    elif isinstance(e, RecursionError):
        text = "input nested too deeply (a YAML alias that refers to itself?)"
    elif isinstance(e, MemoryError):
        text = "out of memory: use fewer draws, a smaller --chunk-size or fewer --workers"
    else:
        text = str(e)
    from rich.markup import escape

    from fiscal_sim.io.secrets import mask

    err.print(("" if code == 130 else "[red]error[/red]: ") + escape(mask(text)), highlight=False)
    return code


def _catalogue(root: Path | None):
    from fiscal_sim.catalogue.cache import cached_catalogue

    try:
        return cached_catalogue(root)
    except FiscalSimError as e:
        fail(e)


@app.command()
def validate(paths: Annotated[list[Path], typer.Argument(help="program, case or scenario files, or folders")],
             catalogue: CatalogueOpt = None) -> None:
    """Check program, case and scenario files (and that every case computes as expected); exit non-zero on any problem.

    Example: fiscal-sim validate scenarios tests/cases
    """
    from fiscal_sim.validate import validate_paths

    try:
        report = validate_paths(paths, catalogue)
    except FiscalSimError as e:
        fail(e)
    for line in report:
        out.print(line, markup=False)
    out.print("[green]all valid[/green]")


@app.command("test")
def test_cases(paths: Annotated[Optional[list[Path]], typer.Argument(help="case files or folders (default: tests/cases)")] = None,
               catalogue: CatalogueOpt = None,
               verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list passing cases too")] = False) -> None:
    """Run YAML case files (like `openfisca test`): each case's expected award, total, schedule and payers are
    computed and compared; failures are listed with the difference; exit 1 on any failure.

    Example: fiscal-sim test tests/cases/jiazhengbanfa_2024_7.yaml
    """
    from fiscal_sim.cases import case_files, check_file

    cat = _catalogue(catalogue)
    try:
        files = case_files(paths or [Path("tests/cases")])
        if not files:
            raise FiscalSimError(f"no case files (YAML with `cases:`) under {', '.join(map(str, paths or ['tests/cases']))}")
        results = [(f, c, bad) for f in files for c, bad in check_file(f, cat)]
    except FiscalSimError as e:
        fail(e)
    failed = [r for r in results if r[2]]
    for f, c, bad in results:
        if bad:
            out.print(f"[red]FAIL[/red] {f}: {c.name}", highlight=False)
            for b in bad:
                out.print(f"     {b}", markup=False, highlight=False)
        elif verbose:
            out.print(f"[green]ok[/green]   {f}: {c.name}", highlight=False)
    colour = "red" if failed else "green"
    out.print(f"[{colour}]{len(results) - len(failed)} passed, {len(failed)} failed[/{colour}] ({len(files)} file(s))")
    if failed:
        raise typer.Exit(1)


def _parse_kv(items: list[str]) -> dict[str, str | list[str]]:
    """``key=value`` pairs; a key given several times collects its values (one per claim)."""
    kv: dict[str, str | list[str]] = {}
    for it in items:
        if "=" not in it:
            raise typer.BadParameter(f"expected key=value, got {it!r}", param_hint="--input")
        k, v = (x.strip() for x in it.split("=", 1))
        kv[k] = v if k not in kv else [*([kv[k]] if isinstance(kv[k], str) else kv[k]), v]  # type: ignore[list-item]
    return kv


@app.command()
def calc(program_ids: Annotated[list[str], typer.Argument(help="program id(s) of one applicant: non-cumulation applied; "
                                                               "an id given n times is n claims of that applicant")],
         input: Annotated[list[str], typer.Option("--input", "-i", help="key=value; money in the input's unit or with a unit, "
                                                  "e.g. 35万元; a key given n times = n claims (one value each); "
                                                  "used_entity_year / used_person_year / used_entity_lifetime = cap already used")] = [],
         jurisdiction: Annotated[Optional[str], typer.Option("--jurisdiction", "-j", help="e.g. nanhu, haining")] = None,
         date: Annotated[Optional[str], typer.Option(help="award date YYYY-MM-DD (default today)")] = None,
         amount: Annotated[Optional[str], typer.Option("--amount", help="price an unpriced program: the award, e.g. 50万元 (= -i award=…)")] = None,
         claims: Annotated[Optional[Path], typer.Option("--claims", help="CSV of claims: a header of input names, one row per claim")] = None,
         stay: Annotated[Optional[int], typer.Option("--stay", min=0, help="years the recipient stays: a multi-year schedule stops after that many payments")] = None,
         explain: Annotated[bool, typer.Option("--explain", help="show each step with its clause")] = False,
         as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
         catalogue: CatalogueOpt = None) -> None:
    """Compute one applicant's award, its schedule by year and its split by payer.

    Several claims of one entity or person in a year (e.g. an intermediary's contracts) are one case: give an
    input once per claim (-i contract=500万元 -i contract=80万元 …), a --claims CSV, or repeat the program id; the per-entity and
    per-person annual caps (每家每年 / 每人每年累计不超过) then apply across the claims in the order given, after
    what used_<per> says the applicant already received.

    Example: fiscal-sim calc jwf2017-4.innovation-salary -i tier=A -i term=long -i salary=200 -j nanhu --explain
    """
    from fiscal_sim.calc import AWARD, calculate_many

    cat = _catalogue(catalogue)
    try:
        try:
            day = dt.date.fromisoformat(date) if date else None
        except ValueError as e:
            raise FiscalSimError(f"--date {date}: expected a date written YYYY-MM-DD, e.g. 2025-03-01 ({e})") from None
        raw = _parse_kv(input)
        if claims is not None:
            from fiscal_sim.claims_file import read_claims

            table = read_claims(claims)
            both = sorted(set(table) & set(raw))
            if both:
                raise typer.BadParameter(f"{', '.join(both)} given both in {claims} and with -i", param_hint="--claims")
            raw |= table  # type: ignore[arg-type]
        if amount is not None:
            if AWARD in raw:
                raise typer.BadParameter("give the award once: --amount or -i award=…", param_hint="--amount")
            raw[AWARD] = amount
        results = calculate_many(cat, program_ids, raw, jurisdiction=jurisdiction, award_date=day,
                                 explain=explain or as_json, stay=stay)
    except (FiscalSimError, ValueError) as e:
        fail(e)
    if as_json:
        payload = [r.to_json() for r in results]
        sys.stdout.write(json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False, indent=2) + "\n")
        return
    for r in results:
        status = "" if r.winner else "  [yellow](not paid: non-cumulation)[/yellow]"
        out.print(f"[bold]{r.program}[/bold]  {r.title_zh} — {r.title_en}{status}")
        place = cat.geography.payer_name(r.jurisdiction)
        out.print(f"  source: {r.document} {r.section}; {place} ({r.jurisdiction}); award date {r.award_date}")
        if explain:
            for s in r.steps:
                out.print(f"  {'  ' * max(s['depth'], 0)}• {s['text']}", markup=False)
                out.print(f"  {'  ' * max(s['depth'], 0)}  「{s['clause']}」", style="dim", markup=False)
        if len(r.claims) > 1:
            for i, c in enumerate(r.claims, 1):
                cut = "" if c["award_cny"] == c["award_before_caps_cny"] else f" (before caps {fmt_wan(c['award_before_caps_cny'])})"
                out.print(f"  claim {i}: {', '.join(f'{k}={v}' for k, v in c['inputs'].items())} → {fmt_wan(c['award_cny'])}{cut}",
                          markup=False)
        out.print(f"  award: {fmt_wan(r.award_cny)}   total commitment: [bold]{fmt_wan(r.total_cny)}[/bold] ({r.total_cny:,.2f} 元)"
                  + (f"   paid: {fmt_wan(r.paid_cny)}, lapsed: {fmt_wan(r.lapsed_cny)}" if r.stay_years is not None else ""))
        t = Table("fiscal year", "cash", *r.payers.keys(), title="schedule and payers", title_justify="left")
        for s in r.schedule:
            t.add_row(str(s["fiscal_year"]), fmt_wan(s["cash_cny"]), *(fmt_wan(s["payers_cny"].get(p, 0)) for p in r.payers))
        t.add_row("total", fmt_wan(r.paid_cny), *(fmt_wan(v) for v in r.payers.values()), style="bold")
        show(t)
        for n in r.notes:
            out.print(f"  note: {n}", markup=False)


FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table (fits the terminal), csv or json",
                                        case_sensitive=False)]


@programs_app.command("list")
def programs_list(document: Annotated[Optional[str], typer.Option(help="filter: 文号 in any bracket style or a short id, e.g. 嘉政办发〔2024〕7号, 嘉政办发[2024]7号, jzbf2024-7")] = None,
                  kind: Annotated[Optional[str], typer.Option(help="filter: formula kind used anywhere in the formula, e.g. up_to")] = None,
                  status: Annotated[Optional[str], typer.Option(help="filter: priced, unpriced or equity")] = None,
                  jurisdiction: Annotated[Optional[str], typer.Option(help="filter: applies in this place, by id or name, e.g. nanhu or 南湖区")] = None,
                  fmt: FormatOpt = "table",
                  as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
                  catalogue: CatalogueOpt = None) -> None:
    """List programs with their source, formula kind and status, and print totals.

    Examples: fiscal-sim programs list --document jzbf2024-7 --status priced;
    fiscal-sim programs list --jurisdiction 南湖区 --format csv
    """
    from fiscal_sim.listing import Filters, select

    cat = _catalogue(catalogue)
    try:
        rows = select(list(cat.programs.values()), Filters(document, kind, status, jurisdiction),
                      cat.geography.data.jurisdictions)
    except FiscalSimError as e:
        fail(e)
    data = [{"id": p.id, "title_zh": p.spec.title_zh, "title_en": p.spec.title_en, "document": p.document.number,
             "section": p.spec.source.section, "status": p.spec.status, "kinds": k} for p, k in rows]
    fmt = "json" if as_json else fmt
    cols = (["id", "title_zh", "status"] if out.width < 100 else ["id", "title_zh", "document", "status"]
            if out.width < 150 else ["id", "title_zh", "document", "section", "kinds", "status"])
    if fmt.lower() not in ("table", "csv", "json"):
        fail(FiscalSimError(f"--format {fmt}: expected table, csv or json"))
    if fmt.lower() == "table" and out.width < 150:  # one compact table per document (titles wrap, ids whole)
        tables, note = terminal.program_tables(data, out.width)
        for t in tables:
            show(t)
        if note:
            out.print(note, highlight=False)
    else:
        terminal.emit(out, data, cols if fmt == "table" else list(data[0]), fmt)
    if fmt == "table":
        c = Counter(p.spec.status for p, _ in rows)
        out.print(f"{len(rows)} provisions: {c.get('priced', 0)} priced, {c.get('unpriced', 0)} unpriced, {c.get('equity', 0)} equity")


@programs_app.command("show")
def programs_show(program_id: Annotated[str, typer.Argument(help="program id, e.g. jwf2017-4.talent-housing")],
                  catalogue: CatalogueOpt = None) -> None:
    """Describe one program: source, dates, places, inputs, formula, schedule, payers, uptake.

    Example: fiscal-sim programs show jwf2017-4.talent-housing
    """
    import yaml

    cat = _catalogue(catalogue)
    try:
        p = cat.get(program_id)
    except FiscalSimError as e:
        fail(e)
    s = p.spec
    out.print(f"[bold]{s.id}[/bold]  {s.title_zh}\n  {s.title_en}")
    out.print(f"  source: {p.document.number} {p.document.title}, {s.source.section}", markup=False)
    out.print(f"  quote: 「{s.source.quote}」", markup=False)
    out.print(f"  status: {s.status}; unit: {s.unit}; in force {s.in_force.from_} – {s.in_force.to or 'open'}")
    out.print(f"  applies in: {', '.join(p.jurisdictions)}; cost sharing: {s.cost_sharing} "
              f"({cat.geography.data.cost_sharing[s.cost_sharing].label_en})", markup=False)
    if s.exclusive_group:
        g = cat.groups[s.exclusive_group]
        out.print(f"  non-cumulation group: {s.exclusive_group} ({g.rule}); overlap share {g.overlap:g} ({g.basis}: {g.note})",
                  markup=False)
    if s.uptake is not None:
        name = cat.geography.weights_name(s.uptake.allocation)
        w = cat.geography.data.allocation_weights[name] if name else None
        out.print(f"  allocation to jurisdictions: {name or 'own table'}"
                  + (f" ({w.basis}: {w.document + ' ' + (w.source or '') if w.basis == 'document' else w.note})" if w else ""),
                  markup=False)
    for line in timeline_lines(cat, p):
        out.print(line, markup=False)
    body = s.model_dump(mode="json", by_alias=True, exclude_none=True,
                        include={"inputs", "formula", "schedule", "caps", "assumptions", "uptake"})
    out.print(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), markup=False)
    out.print(f"  file: {p.file}")


ExecutorOpt = Annotated[str, typer.Option("--executor", help="where chunks run: pool (local processes) or dask")]
SchedulerOpt = Annotated[Optional[str], typer.Option("--scheduler", help="Dask scheduler address, e.g. tcp://HOST:8786 "
                                                     "(--executor dask; default: a LocalCluster of --workers)")]
SchedulerFileOpt = Annotated[Optional[str], typer.Option("--scheduler-file", help="Dask scheduler file (--executor dask)")]


def _executor(kind: str, workers: int, scheduler: Optional[str], scheduler_file: Optional[str]):
    """The executor context for ``--executor`` (errors end the command with one clear message)."""
    from fiscal_sim.orchestrate.executors import executor

    if kind not in ("pool", "dask"):
        fail(FiscalSimError(f"--executor must be pool or dask, not {kind!r}"))
    return executor(kind, workers, scheduler, scheduler_file)  # type: ignore[arg-type]


def timeline_lines(cat, p) -> list[str]:
    """The baseline policy timeline as it applies to program ``p``: every assumption with its basis."""
    from fiscal_sim.catalogue.timeline import resolve

    changes, assumptions = resolve(cat.programs, cat.timeline)
    fams = {fid for fid, f in cat.timeline.families.items() if p.id in f.predecessors + f.successors}
    mine = [a for a in assumptions if (a.kind in ("validity", "after_expiry") and a.subject == p.document.number)
            or (a.kind == "family" and a.subject in fams)
            or (a.kind == "after_expiry" and a.subject in fams)]
    t = cat.timeline.timing
    src = p.id if p.id in t.programs else p.document.number if p.document.number in t.documents else "default"
    mine += [a for a in assumptions if a.kind == "timing" and a.subject == src]
    lines = ["  timeline (catalogue/timeline.yaml; a scenario's timeline: block changes any of these):"]
    lines += [f"    - {a.line()}" for a in mine]
    if not any(a.kind == "validity" for a in mine) and p.spec.in_force.to is None:
        lines.append(f"    - validity {p.document.number}: open-ended, no validity assumption recorded")
    lines += [f"    → {n}" for n in (changes.get(p.id) or {}).get("notes", [])]
    up = p.spec.uptake
    if up is not None and up.basis == "target":
        lines.append(f"  uptake basis: target{f' to {up.target_until}, assumption (carried forward) after' if up.target_until else ''}")
    return lines


@app.command()
def run(scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
        draws: Annotated[Optional[int], typer.Option(help="number of Monte Carlo draws (default: the scenario's)")] = None,
        seed: Annotated[Optional[int], typer.Option(help="root seed (default: the scenario's)")] = None,
        chunk_size: Annotated[Optional[int], typer.Option(help="draws per chunk (rounded up to whole blocks)")] = None,
        workers: Annotated[int, typer.Option(help="worker processes")] = 1,
        out_dir: Annotated[Optional[str], typer.Option("--out", help="output folder (default outputs/<scenario name>), or a "
                                                       "URL such as s3://BUCKET/PREFIX (the run goes under PREFIX/<run id>/)")] = None,
        write_draws: Annotated[bool, typer.Option("--draws-ledger/--no-draws-ledger", help="write the per-draw ledger")] = True,
        pipeline: Annotated[bool, typer.Option("--pipeline", help="run the simpy pipeline for programs that declare one")] = False,
        set_: Annotated[list[str], typer.Option("--set", help="TARGET=VALUE, the sweep's grammar with one value, e.g. "
                                                "programs.<id>.formula.max=500 (repeatable)")] = [],
        budget: Annotated[list[str], typer.Option("--budget", help="PAYER[:PROGRAM]=AMOUNT a year (万元 unless a unit is "
                                                  "given), e.g. city=2.5亿; replaces the scenario's line (repeatable)")] = [],
        executor: ExecutorOpt = "pool", scheduler: SchedulerOpt = None, scheduler_file: SchedulerFileOpt = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the output folder (no progress, headline or tables)")] = False,
        lang: Annotated[Optional[str], typer.Option("--lang", help="zh or en for the headline and tables (default: "
                                                    "Chinese when the locale is, e.g. LANG=zh_CN.UTF-8)")] = None) -> None:
    """Simulate a scenario and write Parquet results (headline, summary, per-draw ledger, dimensions, manifest).

    Example: fiscal-sim run scenarios/baseline.yaml --draws 10000 --workers 2 --out outputs/baseline
    --budget city=2.8亿
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from fiscal_sim.orchestrate.run import run as run_scenario
    from fiscal_sim.scenario import load_scenario

    try:
        if lang not in (None, "zh", "en"):
            raise FiscalSimError(f"--lang {lang!r}: use zh or en")
        scen = load_scenario(scenario).with_settings(draws=draws, seed=seed, chunk_size=chunk_size)
        scen = _changed(scen, set_, budget)
    except FiscalSimError as e:
        fail(e)
    except ValueError as e:
        fail(FiscalSimError(f"{scenario}: bad run setting: {plain_error(e)}"))
    target = _out(out_dir, Path("outputs") / scen.spec.name)
    _check_out(target, "run", scen)
    workers = _workers(scen, workers)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, disable=quiet) as bar:
        task = bar.add_task(f"{scen.spec.name}: draws", total=scen.spec.draws)
        try:
            with _executor(executor, workers, scheduler, scheduler_file) as ex:
                result = run_scenario(scen, target, workers=workers, write_draws=write_draws, command=sys.argv,
                                      progress=lambda k: bar.advance(task, k), pipeline=pipeline, executor=ex)
        except FiscalSimError as e:
            fail(e)
    out.print(f"wrote [bold]{result.out}[/bold] (run {result.run_id}; {scen.spec.draws:,} draws, "
              f"{len(scen.programs)} programs simulated, {len(scen.unpriced)} unpriced/unsimulated listed)")
    if not quiet:
        shown = terminal.lang_of(lang)
        print_headline(result.headline or result.out, shown)
        names = {p: payer_names(scen.geography, p, shown) for p in scen.geography.payers}
        for t in terminal.cash_tables(result.summary, out.width, names, shown):
            show(t)


def _changed(scen, sets: list[str], budgets: list[str]):
    """``scen`` with ``--set`` values and ``--budget`` lines applied (both checked; errors name the option)."""
    from fiscal_sim.analysis.sweep import with_assignments
    from fiscal_sim.scenario import with_budgets

    return with_budgets(with_assignments(scen, sets), budgets)


@app.command()
def brief(run_dir: Annotated[Path, typer.Argument(help="a run folder (written by fiscal-sim run)")],
          lang: Annotated[str, typer.Option("--lang", help="zh (default) or en")] = "zh",
          out_dir: Annotated[Optional[Path], typer.Option("--out", help="folder for brief_<lang>.html/.pdf (default RUN/brief)")] = None) -> None:
    """The director's brief: one A4 page (HTML, and PDF printed by headless Chromium when one is found).

    Example: fiscal-sim brief outputs/baseline --lang zh
    """
    from fiscal_sim.report.brief import write_brief
    from fiscal_sim.report.data import NotARunFolder

    if lang not in ("zh", "en"):
        fail(FiscalSimError(f"--lang {lang!r}: use zh or en"))
    try:
        res = write_brief(run_dir, lang, out_dir)  # type: ignore[arg-type]
    except (NotARunFolder, OSError) as e:
        fail(FiscalSimError(str(e)))
    out.print(f"wrote [bold]{res.html}[/bold]" + (f" and [bold]{res.pdf}[/bold]" if res.pdf else ""))
    if res.note:
        err.print(f"[yellow]note[/yellow]: {res.note}", highlight=False)


def _out(value: Optional[str], default: Path):
    """``--out`` as given (a local folder, or a URL: :mod:`fiscal_sim.io.target`), else ``default``."""
    from fiscal_sim.io.target import parse

    try:
        return parse(value) if value is not None else default
    except FiscalSimError as e:
        fail(e)


def _check_out(target, kind: str, *scens, hosts: tuple[str, ...] = ()) -> None:
    """Refuse a bad --out (a folder, or a URL) before any work (the writer checks again before it writes)."""
    from fiscal_sim.io.outdir import inputs_of
    from fiscal_sim.io.target import check

    try:
        check(target, kind, inputs_of(*scens), hosts)
    except FiscalSimError as e:
        fail(e)


def _workers(scen, workers: int) -> int:
    """``--workers`` within the CPUs (with a note when capped); refuse a chunk size that cannot fit in memory."""
    from fiscal_sim.engine.resources import check_chunk_memory, check_workers

    workers, note = check_workers(workers)
    if note:
        err.print(f"[yellow]note[/yellow]: {note}", highlight=False)
    check_chunk_memory(scen, workers)
    return workers


def payer_names(geo, payer: str, lang: str) -> str:
    """A payer's name on screen (嘉兴经济技术开发区 or its English name), never its id."""
    p = geo.data.payers.get(payer) or geo.data.jurisdictions.get(payer)
    return (p.name_zh if lang == "zh" else p.name_en) if p is not None else payer


def print_headline(folder: Path | dict, lang: str = "en") -> None:
    """The run's headline (as computed, or its folder's headline.json), before any table, in ``lang``."""
    h = folder if isinstance(folder, dict) else json.loads((Path(folder) / "headline.json").read_text(encoding="utf-8"))
    for line in h["text"][lang]:
        for part in terminal.wrapped(line, out.width):
            out.print(part, markup=False, highlight=False)
    out.print()


# ---------------------------------------------------------------- analyst tools: compare, sweep, sensitivity, report

def _load(scenario: Path, **settings):
    from fiscal_sim.scenario import load_scenario

    try:
        return load_scenario(scenario).with_settings(**settings)
    except FiscalSimError as e:
        fail(e)
    except ValueError as e:
        fail(FiscalSimError(f"{scenario}: bad run setting: {plain_error(e)}"))


def _progress(total: int, label: str, quiet: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, disable=quiet)
    task = bar.add_task(label, total=total)
    return bar, task


def _wan(cny, signed: bool = False) -> str:
    """Yuan as whole 万元 (a change with its sign; a rounded zero as 0)."""
    if cny is None:
        return ""
    v = round(cny / 1e4)
    return f"{v:+,d}" if signed and v else f"{v:,d}"


def _pct(p) -> str:
    return "" if p is None else f"{100 * p:.1f}%"


@app.command()
def compare(baseline: Annotated[Path, typer.Argument(help="baseline scenario YAML")],
            reform: Annotated[Path, typer.Argument(help="reform scenario YAML (e.g. the baseline with overrides)")],
            draws: Annotated[Optional[int], typer.Option(help="draws (default: the baseline's)")] = None,
            seed: Annotated[Optional[int], typer.Option(help="root seed for both (default: the baseline's)")] = None,
            workers: Annotated[int, typer.Option(help="worker processes")] = 1,
            out_dir: Annotated[Optional[str], typer.Option("--out", help="output folder (default outputs/<reform>_vs_<baseline>), or a URL (s3://…)")] = None,
            write_draws: Annotated[bool, typer.Option("--draws-ledger/--no-draws-ledger", help="write the per-draw change")] = True,
            independent: Annotated[bool, typer.Option("--independent", help="give the reform its own seed (no common random numbers: to see what CRN buy)")] = False,
            tolerance: Annotated[float, typer.Option(help="list a payer or program as changed only when its mean changes by more than this many yuan")] = 1.0,
            set_: Annotated[list[str], typer.Option("--set", help="TARGET=VALUE applied to the reform (the sweep's grammar, "
                                                    "one value), e.g. programs.<id>.formula.max=500 (repeatable)")] = [],
            budget: Annotated[list[str], typer.Option("--budget", help="PAYER[:PROGRAM]=AMOUNT a year for both scenarios "
                                                      "(万元 unless a unit is given), e.g. city=2.5亿 (repeatable)")] = [],
            executor: ExecutorOpt = "pool", scheduler: SchedulerOpt = None, scheduler_file: SchedulerFileOpt = None,
            quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the output folder (no progress, headline or tables)")] = False) -> None:
    """Compare a reform with its baseline draw by draw (common random numbers); write compare.parquet.

    Example: fiscal-sim compare scenarios/baseline.yaml scenarios/reform.yaml --draws 2000 --workers 2
    """
    from fiscal_sim.analysis.compare import compare as run_compare, headline

    base = _load(baseline, draws=draws, seed=seed)
    ref = _load(reform)
    try:
        base, ref = _changed(base, [], budget), _changed(ref, set_, budget)
    except FiscalSimError as e:
        fail(e)
    target = _out(out_dir, Path("outputs") / f"{ref.spec.name}_vs_{base.spec.name}")
    _check_out(target, "compare", base, ref)
    workers = _workers(base, workers)
    bar, task = _progress(base.spec.draws, f"{ref.spec.name} vs {base.spec.name}: draws", quiet)
    with bar:
        try:
            with _executor(executor, workers, scheduler, scheduler_file) as ex:
                result = run_compare(base, ref, target, workers=workers, independent=independent, write_draws=write_draws,
                                     command=sys.argv, progress=lambda k: bar.advance(task, k), executor=ex)
        except FiscalSimError as e:
            fail(e)
    out.print(f"wrote [bold]{result.out}[/bold] (run {result.run_id}; {base.spec.draws:,} draws, "
              f"{'independent draws' if independent else 'common random numbers'})")
    if quiet:
        return
    from fiscal_sim import headline as hl

    from fiscal_sim.io.target import readable

    rows = result.table.to_pylist()
    with readable(result.out) as folder:
        lines = hl.compare_lines(rows, hl.from_folder(folder / "baseline"), hl.from_folder(folder / "reform"))
    for line in lines:
        for part in terminal.wrapped(line, out.width):
            out.print(part, markup=False, highlight=False)
    out.print()
    h = headline(result.table, tolerance)
    for t in _compare_tables(h, ref, f"{ref.spec.name} − {base.spec.name}: expected grant cash, 万元"):
        show(t)
    others = [r for r in h["horizon"] if r["payer"] not in ("ALL", "city") and abs(r["change_mean_cny"]) > tolerance]
    if others:
        t = Table("payer", "baseline", "reform", "change", "± se", title="over the horizon, other payers, 万元",
                  title_justify="left")
        for r in others:
            t.add_row(payer_names(ref.geography, r["payer"], "en"), _wan(r["baseline_mean_cny"]), _wan(r["reform_mean_cny"]), _wan(r["change_mean_cny"], True),
                      _wan(r["change_se_cny"]))
        show(t)
    changed = h["programs"]
    if changed:
        from rich.table import Column

        t = Table(Column("program", no_wrap=True, min_width=max(len(r["program"]) for r in changed)),
                  "baseline", "reform", "change", "± se",
                  title=f"programs whose mean changes by more than {tolerance:g} yuan (horizon, all payers), 万元",
                  title_justify="left")
        for r in changed:
            t.add_row(r["program"], _wan(r["baseline_mean_cny"]), _wan(r["reform_mean_cny"]), _wan(r["change_mean_cny"], True),
                      _wan(r["change_se_cny"]))
        show(t)


def _compare_tables(h: dict, ref, title: str) -> list[Table]:
    """By year (all payers, the city) and over the horizon: mean change with its se, the P5–P95 of the per-draw
    change and P(exceed) before → after; in two narrower tables when the terminal is under 110 columns (headers
    are never broken, payer names wrap between words)."""
    from rich.table import Column

    rows = h["by_year"] + [r for r in h["horizon"] if r["payer"] in ("ALL", "city")]
    names = {r["payer"]: "all payers" if r["payer"] == "ALL" else payer_names(ref.geography, r["payer"], "en")
             for r in rows}
    num = lambda name: Column(name, justify="right", no_wrap=True)  # noqa: E731
    first = [Column("payer", min_width=10), Column("year", no_wrap=True)]
    a = [num("base"), num("reform"), num("change"), num("± se")]
    b = [num("P5 Δ"), num("P95 Δ"), Column("P(exceed) base → reform", no_wrap=True, min_width=13)]

    def cells(r: dict) -> tuple[list[str], list[str], list[str]]:
        p_ex = f"{_pct(r['baseline_p_exceed'])} → {_pct(r['reform_p_exceed'])}" if r["baseline_p_exceed"] is not None else ""
        return ([names[r["payer"]], str(r["fiscal_year"] or "horizon")],
                [_wan(r["baseline_mean_cny"]), _wan(r["reform_mean_cny"]), _wan(r["change_mean_cny"], True),
                 _wan(r["change_se_cny"])],
                [_wan(r["change_p05_cny"], True), _wan(r["change_p95_cny"], True), p_ex])

    groups = [a + b] if out.width >= 110 else [a, b]
    tables = []
    for i, g in enumerate(groups):
        t = Table(*[Column(c.header, min_width=c.min_width, no_wrap=c.no_wrap) for c in first], *g,
                  title=title if i == 0 else "the same, continued: the per-draw change and P(exceed)", title_justify="left")
        for r in rows:
            k, m, q = cells(r)
            t.add_row(*k, *((m + q) if len(groups) == 1 else m if i == 0 else q))
        tables.append(t)
    return tables


@app.command()
def assumptions(scenario: Annotated[Path, typer.Argument(help="scenario YAML")],
                draws: Annotated[Optional[int], typer.Option(help="draws (default: 1000)")] = 1000,
                workers: Annotated[int, typer.Option(help="worker processes")] = 1,
                out_dir: Annotated[Optional[str], typer.Option("--out", help="output folder (default outputs/<scenario>_assumptions; RUN/assumptions puts it in a run's report), or a URL")] = None,
                only: Annotated[Optional[list[str]], typer.Option("--only", help="run only this alternative (repeatable)")] = None,
                executor: ExecutorOpt = "pool", scheduler: SchedulerOpt = None, scheduler_file: SchedulerFileOpt = None,
                quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the output folder")] = False) -> None:
    """The assumption ledger: every named alternative against the scenario (common random numbers), ranked by how
    much it moves horizon grant cash; writes assumptions.parquet.

    Example: fiscal-sim assumptions scenarios/baseline.yaml --draws 1000 --workers 2
    """
    from fiscal_sim import headline as hl
    from fiscal_sim.analysis.assumptions import compile_all, ledger, ledger_scenario, load_alternatives

    scen = _load(scenario, draws=draws)
    target = _out(out_dir, Path("outputs") / f"{scen.spec.name}_assumptions")
    _check_out(target, "assumptions", scen)
    workers = _workers(scen, workers)
    try:
        alts = load_alternatives(scen)
        if only:
            unknown = sorted(set(only) - {a.name for a in alts})
            if unknown:
                raise FiscalSimError(f"--only {', '.join(unknown)}: no such alternative (known: "
                                     f"{', '.join(a.name for a in alts)})")
            alts = [a for a in alts if a.name in only]
        scen = ledger_scenario(scen)
        compiled = compile_all(scen, alts)  # every alternative checked before anything runs
        bar, task = _progress(scen.spec.draws, f"{scen.spec.name}: {len(alts)} alternatives, draws", quiet)
        with bar, _executor(executor, workers, scheduler, scheduler_file) as ex:
            result = ledger(scen, alts, target, workers=workers, command=sys.argv,
                            progress=lambda k: bar.advance(task, k), executor=ex, compiled=compiled)
    except FiscalSimError as e:
        fail(e)
    out.print(f"wrote [bold]{result.out}[/bold] (run {result.run_id}; {len(alts)} alternatives, "
              f"{scen.spec.draws:,} draws, common random numbers)")
    if quiet:
        return
    rows = result.table.to_pylist()
    for line in hl.assumption_lines(rows, result.budgets.to_pylist()):
        out.print(line, markup=False, highlight=False)
    out.print()
    t = Table("#", "alternative", "kind", "all payers", "± se", "city", "± se",
              title=f"change in horizon grant cash against {scen.spec.name}, 万元", title_justify="left")
    for r in rows:
        t.add_row(str(r["rank"]), r["alternative"], r["kind"], _wan(r["change_horizon_cash_all_cny"], True),
                  _wan(r["change_horizon_cash_all_se_cny"]), _wan(r["change_horizon_cash_city_cny"], True),
                  _wan(r["change_horizon_cash_city_se_cny"]))
    show(t)


@app.command()
def sweep(scenario: Annotated[Path, typer.Argument(help="scenario YAML")],
          set_: Annotated[list[str], typer.Option("--set", help="TARGET=V1,V2,… e.g. programs.<id>.formula.max=300,500,800 "
                                                  "or uptake.<id>.growth=0,0.05 (grid: every combination once)")] = [],
          range_: Annotated[list[str], typer.Option("--range", help="TARGET=LO:HI for --design lhs|sobol")] = [],
          design: Annotated[str, typer.Option(help="grid, lhs (Latin hypercube) or sobol (scrambled Sobol')")] = "grid",
          samples: Annotated[Optional[int], typer.Option(help="design points for lhs/sobol")] = None,
          design_seed: Annotated[Optional[int], typer.Option(help="seed of the lhs/sobol design (default: the scenario's)")] = None,
          draws: Annotated[Optional[int], typer.Option(help="draws per point (default: the scenario's)")] = None,
          seed: Annotated[Optional[int], typer.Option(help="root seed, the same for every point")] = None,
          workers: Annotated[int, typer.Option(help="worker processes")] = 1,
          out_dir: Annotated[Optional[str], typer.Option("--out", help="output folder (default outputs/<scenario>_sweep), or a URL (s3://…)")] = None,
          totals_only: Annotated[bool, typer.Option("--totals-only", help="keep only totals and swept programs in sweep.parquet")] = False,
          executor: ExecutorOpt = "pool", scheduler: SchedulerOpt = None, scheduler_file: SchedulerFileOpt = None,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the output folder (no progress, headline or tables)")] = False) -> None:
    """Run a scenario over a grid or a Latin hypercube / Sobol' design of parameters; write sweep.parquet.

    TARGET is one of: programs.<program_id>.<path> (a program parameter, as in a scenario's overrides; programs.<id>.cap is formula.max of a cap);

    uptake.<program_id>.<path> (uptake.X.growth is uptake.count.growth);

    cost_sharing.<regime>.<fiscal_class>.<payer> (a payer's share; the other payers share the rest);

    shock.sigma or shock.correlation. Program ids contain dots: the longest matching id wins.

    Example: fiscal-sim sweep scenarios/baseline.yaml --set programs.jzf2017-3.major-conversion.cap=1500,3000 --draws 1000
    """
    from fiscal_sim.analysis.sweep import plan, sweep as run_sweep

    scen = _load(scenario, draws=draws, seed=seed)
    try:
        p = plan(scen, set_, range_, design, samples, design_seed)  # type: ignore[arg-type]
    except FiscalSimError as e:
        fail(e)
    target = _out(out_dir, Path("outputs") / f"{scen.spec.name}_sweep")
    _check_out(target, "sweep", scen)
    workers = _workers(scen, workers)
    bar, task = _progress(len(p.points), f"{scen.spec.name}: sweep points", quiet)
    with bar:
        try:
            with _executor(executor, workers, scheduler, scheduler_file) as ex:
                result = run_sweep(scen, p, target, workers=workers, totals_only=totals_only, command=sys.argv,
                                   progress=lambda i, n: bar.update(task, completed=i), executor=ex)
        except FiscalSimError as e:
            fail(e)
    out.print(f"wrote [bold]{result.out}[/bold] ({len(p.points)} points × {scen.spec.draws:,} draws; run {result.run_id})")
    if quiet:
        return
    from fiscal_sim import headline as hl
    from fiscal_sim.analysis.sweep import sql_names

    from fiscal_sim.io.target import readable

    with readable(result.out) as folder:
        point0 = hl.from_folder(folder / "point-0")  # labels from the first point's dimension tables
    names = {p["payer"]: {"name_zh": p["name_zh"], "name_en": p["name_en"]} for p in point0["payers"]}
    for line in hl.sweep_lines(result.table.to_pylist(), sql_names(p.targets), {}, names):
        out.print(line, markup=False, highlight=False)
    out.print()
    from fiscal_sim.analysis.sweep import point_totals

    t = Table("point", *[tg.text for tg in p.targets], "all payers mean", "all payers P95", "city mean", "city P95",
              title="grant cash over the horizon, 万元", title_justify="left")
    for i, pt, a, c in point_totals(result.table, p, ("ALL", "city")):
        t.add_row(str(i), *[str(v) for v in pt], _wan(a.get("mean_cny")), _wan(a.get("p95_cny")),
                  _wan(c.get("mean_cny")), _wan(c.get("p95_cny")))
    show(t)


def _warn_if_other_run(folder: Path, scen) -> None:
    """sensitivity.parquet goes beside a run: say so when that run used another scenario, seed or draws."""
    try:
        m = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    theirs = (m.get("scenario", {}).get("sha256"), m.get("seed_entropy"), m.get("draws"))
    if theirs != (scen.sha256, scen.spec.seed, scen.spec.draws):
        err.print(f"[yellow]warning[/yellow]: {folder} holds a run of another scenario file, seed or number of draws "
                  f"(sha256 {str(theirs[0])[:12]}…, seed {theirs[1]}, {theirs[2]} draws): the sensitivity table will "
                  "not match that run")


@app.command()
def sensitivity(source: Annotated[Path, typer.Argument(help="scenario YAML, or a run folder (its scenario and settings are reused)")],
                draws: Annotated[Optional[int], typer.Option(help="draws (default: the scenario's or the run's)")] = None,
                seed: Annotated[Optional[int], typer.Option(help="root seed (default: the scenario's or the run's)")] = None,
                workers: Annotated[Optional[int], typer.Option(help="worker processes (default: every core for a run folder, else 1)")] = None,
                out_dir: Annotated[Optional[Path], typer.Option("--out", help="folder for sensitivity.parquet (default: the run folder, or outputs/<scenario>)")] = None,
                top: Annotated[int, typer.Option(help="parameters to print")] = 10,
                quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only the output folder (no progress, headline or tables)")] = False) -> None:
    """Rank the uncertain assumptions (uptake rates, shared shock) by their rank correlation with total cost.

    Example: fiscal-sim sensitivity outputs/baseline --workers 2
    """
    from fiscal_sim.analysis.sensitivity import sensitivity as run_sensitivity, top as top_rows

    if source.is_dir():
        from fiscal_sim.api import scenario_of_run

        scen, changed = scenario_of_run(source, draws=draws, seed=seed)
        if changed:
            err.print(f"[yellow]warning[/yellow]: {scen.path} changed since the run in {source} (sha256 differs)")
        target = out_dir or source
        workers = workers or os.cpu_count() or 1
        if not quiet:
            err.print(f"note: a run folder keeps no per-draw parameters (uptake-rate factors, shocks), so the run's "
                      f"scenario is simulated again with its seed and {scen.spec.draws:,} draws — the same draws — "
                      f"on {workers} worker(s)")
    else:
        scen = _load(source, draws=draws, seed=seed)
        target = out_dir or Path("outputs") / scen.spec.name
    from fiscal_sim.analysis.sensitivity import HOSTS

    _check_out(target, "sensitivity", scen, hosts=HOSTS)
    workers = _workers(scen, workers or 1)
    _warn_if_other_run(target, scen)
    bar, task = _progress(scen.spec.draws, f"{scen.spec.name}: draws", quiet)
    with bar:
        try:
            result = run_sensitivity(scen, target, workers=workers or 1, progress=lambda k: bar.advance(task, k))
        except FiscalSimError as e:
            fail(e)
    from fiscal_sim.analysis.sensitivity import record_in_manifest

    record_in_manifest(target, result)
    out.print(f"wrote [bold]{result.path}[/bold] ({scen.spec.draws:,} draws)")
    if quiet:
        return
    from fiscal_sim.analysis.sensitivity import label
    lang = terminal.lang_of(None)
    titles = {sp.id: (sp.prog.spec.title_zh if lang == "zh" else sp.prog.spec.title_en) for sp in scen.programs}
    for payer in ("ALL", "city"):
        rows = top_rows(result.table, payer, "horizon", k=top)
        if not rows:
            continue
        name = scen.geography.payer_name(payer, lang) if payer != "ALL" else ("全部财政" if lang == "zh" else "all payers")
        t = Table("rank", "parameter", "swing, 万元 (low / high 10%)", "ρ", "first-order share",
                  title=f"what drives total grant cash of {name} over the horizon (joint R² of ranks "
                  f"{rows[0]['target_rank_r2']:.2f})", title_justify="left")
        for r in rows:
            t.add_row(str(r["rank"]), label(r, titles, lang),
                      f"{_wan(r['swing_low_cny'], True)} / {_wan(r['swing_high_cny'], True)}",
                      f"{r['spearman_rho']:+.3f}", _pct(r["first_order_index"]))
        show(t)


@app.command()
def report(run_dir: Annotated[str, typer.Argument(help="a run folder (fiscal-sim run) or a comparison folder (fiscal-sim compare), "
                                                  "or a run's URL (s3://…; then give --out)")],
           out_dir: Annotated[Optional[Path], typer.Option("--out", help="report folder (default RUN_DIR/report)")] = None,
           top: Annotated[int, typer.Option(help="programs in the top-N charts")] = 10,
           cjk: Annotated[bool, typer.Option("--cjk/--no-cjk", help="Chinese chart labels when a CJK font is installed")] = True,
           lang: Annotated[Optional[str], typer.Option("--lang", help="the headline's language: zh (default) or en")] = None) -> None:
    """Write a self-contained HTML report (headline first; charts with their tables; prints on A4) and PNGs.

    Example: fiscal-sim report outputs/baseline
    """
    from fiscal_sim.io.target import readable, shown
    from fiscal_sim.report import write_report

    try:
        if "://" in run_dir and out_dir is None:
            raise FiscalSimError(f"RUN_DIR {shown(run_dir)} is a URL: give --out FOLDER for the report")
        with readable(run_dir) as folder:
            if lang not in (None, "zh", "en"):
                raise FiscalSimError(f"--lang {lang!r}: use zh or en")
            result = write_report(folder, out_dir, top=top, cjk=cjk, lang=lang or "zh")
    except FiscalSimError as e:
        fail(e)
    font = result.cjk_font or "none (chart labels in English; Chinese titles in the tables)"
    out.print(f"wrote [bold]{result.html}[/bold] ({result.charts} charts, PNGs beside it; CJK font: {font})")


@app.command()
def export(run_dir: Annotated[str, typer.Argument(help="a run folder written by `fiscal-sim run`, or its URL (s3://…)")],
           xlsx: Annotated[Optional[Path], typer.Option("--xlsx", help="write an Excel workbook to this file, e.g. baseline.xlsx")] = None,
           csv: Annotated[Optional[Path], typer.Option("--csv", help="write every table as CSV (UTF-8 with BOM) into this folder")] = None) -> None:
    """Export a run for spreadsheets: an Excel workbook (headline, payer × year pivot of mean and P90 in 万元,
    budget exceedance, top programs, assumptions) and/or CSV files.

    Example: fiscal-sim export outputs/baseline --xlsx baseline.xlsx --csv outputs/baseline_csv
    """
    from fiscal_sim.export import write_csv, write_xlsx

    if xlsx is None and csv is None:
        fail(FiscalSimError("say what to write: --xlsx FILE and/or --csv FOLDER"))
    from fiscal_sim.io.target import readable

    try:
        with readable(run_dir) as folder:
            if xlsx is not None:
                out.print(f"wrote [bold]{write_xlsx(folder, xlsx)}[/bold]")
            if csv is not None:
                files = write_csv(folder, csv)
                out.print(f"wrote [bold]{csv}[/bold] ({', '.join(f.name for f in files)})")
    except FiscalSimError as e:
        fail(e)


# ---------------------------------------------------------------- issue 13: calibrate, backtest (fiscal_sim/calibrate/cli.py)
from fiscal_sim.calibrate.cli import register as _register_calibrate  # noqa: E402

_register_calibrate(app)


@app.command()
def serve(workspace: Annotated[Path, typer.Option(help="workspace folder: its scenarios/, runs/ and registry.sqlite")] = Path("workbench"),
          host: Annotated[str, typer.Option(help="address to bind (anything but loopback needs --token)")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="port")] = 8765,
          token: Annotated[Optional[str], typer.Option(envvar="FISCAL_SIM_TOKEN", help="access token every request must carry", show_default=False)] = None) -> None:
    """The planners' workbench: a local web application (scenarios, runs, headline, chart, downloads).

    Example: fiscal-sim serve --workspace workbench   (then open http://127.0.0.1:8765/)
    """
    from fiscal_sim.web.serve import serve as run_server

    run_server(workspace, host, port, token)


DEBUG = False
REPORTED = False
FAULTS = (FiscalSimError, OSError, UnicodeDecodeError, RecursionError, MemoryError)


def main() -> None:
    """Console entry point: every fault ends in one clear line and a non-zero exit; ``--debug`` (anywhere on
    the command line, or FISCAL_SIM_DEBUG=1) shows the traceback."""
    import os

    global DEBUG
    DEBUG = "--debug" in sys.argv[1:] or os.environ.get("FISCAL_SIM_DEBUG", "") not in ("", "0")
    args = [a for a in sys.argv[1:] if a != "--debug"]
    if not DEBUG:  # numpy's overflow warnings: the finiteness check says what went wrong, in one line
        import warnings

        warnings.simplefilter("ignore", RuntimeWarning)
    try:
        app(args=args)
    except FAULTS as e:
        sys.exit(report_error(e))
    except Exception as e:  # a bug: still one line, the traceback behind --debug
        sys.exit(report_error(FiscalSimError(f"internal error ({type(e).__name__}: {e}); run again with --debug "
                                             "and report the traceback")) if not DEBUG else report_error(e))
    except SystemExit as e:
        if e.code == 130 and not REPORTED:  # Ctrl-C outside an output folder (typer exits 130 without a word)
            err.print("interrupted; nothing written", highlight=False)
        raise


if __name__ == "__main__":  # pragma: no cover
    main()
