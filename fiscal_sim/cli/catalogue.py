"""Commands about the law side: validate files, run YAML cases, one applicant's award, the program list."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from fiscal_sim import terminal
from fiscal_sim.cli import console
from fiscal_sim.cli.options import CatalogueOpt, FormatOpt
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.units import fmt_wan


def validate(
    paths: Annotated[list[Path], typer.Argument(help="program, case or scenario files, or folders")],
    catalogue: CatalogueOpt = None,
) -> None:
    """Check program, case and scenario files (and that every case computes as expected); exit non-zero on any problem.

    Example: fiscal-sim validate scenarios tests/cases
    """
    from fiscal_sim import api

    for line in api.check_files(paths, catalogue):
        console.out.print(line, markup=False)
    console.out.print("[green]all valid[/green]")


def test_cases(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="case files or folders (default: tests/cases)")] = None,
    catalogue: CatalogueOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="list passing cases too")] = False,
) -> None:
    """Run YAML case files (like `openfisca test`): each case's expected award, total, schedule and payers are
    computed and compared; failures are listed with the difference; exit 1 on any failure.

    Example: fiscal-sim test tests/cases/jiazhengbanfa_2024_7.yaml
    """
    from fiscal_sim import api

    results = api.run_cases(paths or [Path("tests/cases")], catalogue)
    files = {f for f, _, _ in results}
    failed = [r for r in results if r[2]]
    out = console.out
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


def parse_kv(items: list[str]) -> dict[str, str | list[str]]:
    """``key=value`` pairs; a key given several times collects its values (one per claim)."""
    kv: dict[str, str | list[str]] = {}
    for it in items:
        if "=" not in it:
            raise typer.BadParameter(f"expected key=value, got {it!r}", param_hint="--input")
        k, v = (x.strip() for x in it.split("=", 1))
        kv[k] = v if k not in kv else [*([kv[k]] if isinstance(kv[k], str) else kv[k]), v]  # type: ignore[list-item]
    return kv


def calc(
    program_ids: Annotated[
        list[str],
        typer.Argument(
            help="program id(s) of one applicant: non-cumulation applied; "
            "an id given n times is n claims of that applicant"
        ),
    ],
    input: Annotated[
        list[str],
        typer.Option(
            "--input",
            "-i",
            help="key=value; money in the input's unit or with a unit, "
            "e.g. 35万元; a key given n times = n claims (one value each); "
            "used_entity_year / used_person_year / used_entity_lifetime = cap already used",
        ),
    ] = [],
    jurisdiction: Annotated[Optional[str], typer.Option("--jurisdiction", "-j", help="e.g. nanhu, haining")] = None,
    date: Annotated[Optional[str], typer.Option(help="award date YYYY-MM-DD (default today)")] = None,
    amount: Annotated[
        Optional[str], typer.Option("--amount", help="price an unpriced program: the award, e.g. 50万元 (= -i award=…)")
    ] = None,
    claims: Annotated[
        Optional[Path], typer.Option("--claims", help="CSV of claims: a header of input names, one row per claim")
    ] = None,
    stay: Annotated[
        Optional[int],
        typer.Option(
            "--stay", min=0, help="years the recipient stays: a multi-year schedule stops after that many payments"
        ),
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="show each step with its clause")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    catalogue: CatalogueOpt = None,
) -> None:
    """Compute one applicant's award, its schedule by year and its split by payer.

    Several claims of one entity or person in a year (e.g. an intermediary's contracts) are one case: give an
    input once per claim (-i contract=500万元 -i contract=80万元 …), a --claims CSV, or repeat the program id; the per-entity and
    per-person annual caps (每家每年 / 每人每年累计不超过) then apply across the claims in the order given, after
    what used_<per> says the applicant already received.

    Example: fiscal-sim calc jwf2017-4.innovation-salary -i tier=A -i term=long -i salary=200 -j nanhu --explain
    """
    from fiscal_sim import api
    from fiscal_sim.calc import AWARD

    raw = parse_kv(input)
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
    results = api.calculate_applicant(
        program_ids, raw, jurisdiction=jurisdiction, date=date, explain=explain or as_json, stay=stay, root=catalogue
    )
    if as_json:
        payload = [r.to_json() for r in results]
        sys.stdout.write(json.dumps(payload[0] if len(payload) == 1 else payload, ensure_ascii=False, indent=2) + "\n")
        return
    cat, out = api.load_catalogue(catalogue), console.out
    for r in results:
        status = "" if r.winner else "  [yellow](not paid: non-cumulation)[/yellow]"
        out.print(f"[bold]{r.program}[/bold]  {r.title_zh} — {r.title_en}{status}")
        place = cat.geography.payer_name(r.jurisdiction)
        out.print(f"  source: {r.document} {r.section}; {place} ({r.jurisdiction}); award date {r.award_date}")
        if explain:
            for p in r.parameters:
                value = (
                    ", ".join(f"{k} {v:g}" for k, v in p["value"].items())
                    if isinstance(p["value"], dict)
                    else f"{p['value']:g}"
                )
                out.print(f"  parameter {p['name']} = {value} {p['unit']}  「{p['clause']}」", markup=False)
            for s in r.steps:
                out.print(f"  {'  ' * max(s['depth'], 0)}• {s['text']}", markup=False)
                out.print(f"  {'  ' * max(s['depth'], 0)}  「{s['clause']}」", style="dim", markup=False)
        if len(r.claims) > 1:
            for i, c in enumerate(r.claims, 1):
                cut = (
                    ""
                    if c["award_cny"] == c["award_before_caps_cny"]
                    else f" (before caps {fmt_wan(c['award_before_caps_cny'])})"
                )
                out.print(
                    f"  claim {i}: {', '.join(f'{k}={v}' for k, v in c['inputs'].items())} → {fmt_wan(c['award_cny'])}{cut}",
                    markup=False,
                )
        out.print(
            f"  award: {fmt_wan(r.award_cny)}   total commitment: [bold]{fmt_wan(r.total_cny)}[/bold] ({r.total_cny:,.2f} 元)"
            + (f"   paid: {fmt_wan(r.paid_cny)}, lapsed: {fmt_wan(r.lapsed_cny)}" if r.stay_years is not None else "")
        )
        t = Table("fiscal year", "cash", *r.payers.keys(), title="schedule and payers", title_justify="left")
        for s in r.schedule:
            t.add_row(
                str(s["fiscal_year"]), fmt_wan(s["cash_cny"]), *(fmt_wan(s["payers_cny"].get(p, 0)) for p in r.payers)
            )
        t.add_row("total", fmt_wan(r.paid_cny), *(fmt_wan(v) for v in r.payers.values()), style="bold")
        console.show(t)
        for n in r.notes:
            out.print(f"  note: {n}", markup=False)


def programs_list(
    document: Annotated[
        Optional[str],
        typer.Option(
            help="filter: 文号 in any bracket style or a short id, e.g. 嘉政办发〔2024〕7号, 嘉政办发[2024]7号, jzbf2024-7"
        ),
    ] = None,
    kind: Annotated[
        Optional[str], typer.Option(help="filter: formula kind used anywhere in the formula, e.g. up_to")
    ] = None,
    status: Annotated[Optional[str], typer.Option(help="filter: priced, unpriced or equity")] = None,
    jurisdiction: Annotated[
        Optional[str], typer.Option(help="filter: applies in this place, by id or name, e.g. nanhu or 南湖区")
    ] = None,
    fmt: FormatOpt = "table",
    as_json: Annotated[bool, typer.Option("--json", help="same as --format json")] = False,
    catalogue: CatalogueOpt = None,
) -> None:
    """List programs with their source, formula kind and status, and print totals.

    Examples: fiscal-sim programs list --document jzbf2024-7 --status priced;
    fiscal-sim programs list --jurisdiction 南湖区 --format csv
    """
    from fiscal_sim import api
    from fiscal_sim.listing import Filters, select

    cat, out = api.load_catalogue(catalogue), console.out
    rows = select(
        list(cat.programs.values()), Filters(document, kind, status, jurisdiction), cat.geography.data.jurisdictions
    )
    data = [
        {
            "id": p.id,
            "title_zh": p.spec.title_zh,
            "title_en": p.spec.title_en,
            "document": p.document.number,
            "section": p.spec.source.section,
            "status": p.spec.status,
            "kinds": k,
        }
        for p, k in rows
    ]
    fmt = "json" if as_json else fmt
    cols = (
        ["id", "title_zh", "status"]
        if out.width < 100
        else ["id", "title_zh", "document", "status"]
        if out.width < 150
        else ["id", "title_zh", "document", "section", "kinds", "status"]
    )
    if fmt.lower() not in ("table", "csv", "json"):
        raise FiscalSimError(f"--format {fmt}: expected table, csv or json")
    if fmt.lower() == "table" and out.width < 150:  # one compact table per document (titles wrap, ids whole)
        tables, note = terminal.program_tables(data, out.width)
        for t in tables:
            console.show(t)
        if note:
            out.print(note, highlight=False)
    else:
        terminal.emit(out, data, cols if fmt == "table" else list(data[0]), fmt)
    if fmt == "table":
        c = Counter(p.spec.status for p, _ in rows)
        out.print(
            f"{len(rows)} provisions: {c.get('priced', 0)} priced, {c.get('unpriced', 0)} unpriced, {c.get('equity', 0)} equity"
        )


def programs_show(
    program_id: Annotated[str, typer.Argument(help="program id, e.g. jwf2017-4.talent-housing")],
    catalogue: CatalogueOpt = None,
) -> None:
    """Describe one program: source, dates, places, inputs, formula, schedule, payers, uptake.

    Example: fiscal-sim programs show jwf2017-4.talent-housing
    """
    import yaml

    from fiscal_sim import api
    from fiscal_sim.catalogue.schema import group_names
    from fiscal_sim.listing import timeline_lines

    cat, out = api.load_catalogue(catalogue), console.out
    p = cat.get(program_id)
    s = p.spec
    out.print(f"[bold]{s.id}[/bold]  {s.title_zh}\n  {s.title_en}")
    out.print(f"  source: {p.document.number} {p.document.title}, {s.source.section}", markup=False)
    out.print(f"  quote: 「{s.source.quote}」", markup=False)
    out.print(f"  status: {s.status}; unit: {s.unit}; in force {s.in_force.from_} – {s.in_force.to or 'open'}")
    out.print(
        f"  applies in: {', '.join(p.jurisdictions)}; cost sharing: {s.cost_sharing} "
        f"({cat.geography.data.cost_sharing[s.cost_sharing].label_en})",
        markup=False,
    )
    for name in group_names(s.exclusive_group):
        g = cat.groups[name]
        out.print(
            f"  non-cumulation group: {name} ({g.rule}); overlap share {g.overlap:g} ({g.basis}: {g.note})",
            markup=False,
        )
    if s.uptake is not None:
        name = cat.geography.weights_name(s.uptake.allocation)
        w = cat.geography.data.allocation_weights[name] if name else None
        out.print(
            f"  allocation to jurisdictions: {name or 'own table'}"
            + (
                f" ({w.basis}: {w.document + ' ' + (w.source or '') if w.basis == 'document' else w.note})" if w else ""
            ),
            markup=False,
        )
    if s.parameters:
        out.print("  parameters (override as programs.<id>.parameters.<name>):", markup=False)
        for name, prm in s.parameters.items():
            value = (
                ", ".join(f"{k} {v:g}" for k, v in prm.value.items())
                if isinstance(prm.value, dict)
                else f"{prm.value:g}"
            )
            out.print(f"    {name} = {value} {prm.unit}  「{prm.clause}」", markup=False)
    for line in timeline_lines(cat, p):
        out.print(line, markup=False)
    body = s.model_dump(
        mode="json",
        by_alias=True,
        exclude_none=True,
        include={"inputs", "formula", "schedule", "caps", "assumptions", "uptake"},
    )
    out.print(yaml.safe_dump(body, allow_unicode=True, sort_keys=False), markup=False)
    out.print(f"  file: {p.file}")
