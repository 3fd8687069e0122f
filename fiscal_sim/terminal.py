"""Terminal output of the CLI: tables that fit the terminal and never cut a value, CSV/JSON listings, and
errors in the user's words."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table


def show(console: Console, t: Table) -> None:
    """Print a table that never cuts a value: cells that do not fit the terminal fold onto the next line."""
    for c in t.columns:
        if c.overflow == "ellipsis":
            c.overflow = "fold"
    console.print(t)


def plain_error(e: Exception) -> str:
    """A settings error in the user's words: field and rule, without pydantic's class names or links."""
    from pydantic import ValidationError

    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(str(x) for x in err['loc']) or 'value'}: {err['msg'].lower()}"
                         for err in e.errors(include_url=False))
    return str(e)


def emit(console: Console, rows: list[dict], columns: list[str], fmt: str, title: str | None = None,
         keep: tuple[str, ...] = ("id",)) -> None:
    """Print rows as a table that fits the terminal (``keep`` columns are never cut), CSV or JSON."""
    fmt = fmt.lower()
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
        return
    if fmt == "csv":
        import csv

        w = csv.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows({k: (",".join(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows)
        return
    from rich.table import Column

    widest = {c: max([len(str(r.get(c, ""))) for r in rows] + [len(c)]) for c in keep}
    t = Table(*[Column(c, no_wrap=True, min_width=widest[c]) if c in keep else Column(c, overflow="fold")
                for c in columns], title=title, title_justify="left")
    for r in rows:
        t.add_row(*[",".join(v) if isinstance(v, list) else str(v if v is not None else "") for v in
                    (r.get(c) for c in columns)])
    show(console, t)


def cash_tables(summary, width: int) -> list[Table]:
    """Expected cash by fiscal year and payer, with P90, in 万元: payers as rows when the years fit the width,
    else years as rows with a few payers per table (never cut)."""
    import pyarrow.compute as pc

    keep = pc.and_(pc.equal(summary["program"], "ALL"),
                   pc.and_(pc.equal(summary["measure"], "cash"), pc.equal(summary["period"], "year")))
    if "vintage" in summary.column_names:  # the all-vintage series (existing + new)
        keep = pc.and_(keep, pc.equal(summary["vintage"], "ALL"))
    rows = summary.filter(keep)
    rows = rows.to_pylist()
    payers = []
    for r in rows:
        if r["payer"] not in payers and (r["mean_cny"] or 0) > 0:
            payers.append(r["payer"])
    payers.sort(key=lambda p: (p != "ALL", p != "city", p))
    years = sorted({r["fiscal_year"] for r in rows})
    by = {(r["fiscal_year"], r["payer"]): r for r in rows}
    cell = {(y, p, c): f"{by[(y, p)][c] / 1e4:,.0f}" if (y, p) in by else "" for y in years for p in payers
            for c in ("mean_cny", "p90_cny")}
    title = "expected grant cash by payer and year, 万元 (mean and P90)"
    cw = max([len(v) for v in cell.values()] + [4]) + 3
    if 12 + 8 + cw * len(years) <= width:
        t = Table("payer", "", *[str(y) for y in years], title=title, title_justify="left")
        for p in payers:
            for stat, col in (("mean", "mean_cny"), ("P90", "p90_cny")):
                t.add_row(p if stat == "mean" else "", stat, *[cell[(y, p, col)] for y in years],
                          end_section=stat == "P90")
        return [t]
    per = max(1, (width - 8) // (2 * cw))
    tables = []
    for i in range(0, len(payers), per):
        group = payers[i:i + per]
        t = Table("year", *[f"{p} {s}" for p in group for s in ("mean", "P90")],
                  title=title if i == 0 else None, title_justify="left")
        for y in years:
            t.add_row(str(y), *[cell[(y, p, c)] for p in group for c in ("mean_cny", "p90_cny")])
        tables.append(t)
    return tables
