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
        return "; ".join(
            f"{'.'.join(str(x) for x in err['loc']) or 'value'}: {err['msg'].lower()}"
            for err in e.errors(include_url=False)
        )
    return str(e)


def emit(
    console: Console,
    rows: list[dict],
    columns: list[str],
    fmt: str,
    title: str | None = None,
    keep: tuple[str, ...] = ("id",),
) -> None:
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
    t = Table(
        *[Column(c, no_wrap=True, min_width=widest[c]) if c in keep else Column(c, overflow="fold") for c in columns],
        title=title,
        title_justify="left",
    )
    for r in rows:
        t.add_row(
            *[
                ",".join(v) if isinstance(v, list) else str(v if v is not None else "")
                for v in (r.get(c) for c in columns)
            ]
        )
    show(console, t)


def lang_of(option: str | None = None) -> str:
    """``zh`` or ``en``: ``--lang`` when given, else Chinese when the locale (LC_ALL, LC_MESSAGES, LANG) is."""
    import os

    if option:
        return "zh" if option.lower().startswith("zh") else "en"
    loc = next((os.environ[k] for k in ("LC_ALL", "LC_MESSAGES", "LANG") if os.environ.get(k)), "")
    return "zh" if loc.lower().startswith("zh") else "en"


CASH_WORDS = {
    "en": {
        "title": "expected grant cash by payer and year, 万元 (mean and P90)",
        "payer": "payer",
        "mean": "mean",
        "all": "all payers",
    },
    "zh": {
        "title": "各财政每年资助资金现金支出（万元，均值与P90）",
        "payer": "财政",
        "mean": "均值",
        "all": "全部财政",
    },
}


def cash_tables(summary, width: int, names: dict[str, str] | None = None, lang: str = "en") -> list[Table]:
    """Expected cash by fiscal year and payer, with P90, in 万元: payers as rows (by name, wrapped between words),
    as many years per table as the width holds (never cut)."""
    import pyarrow.compute as pc
    from rich.cells import cell_len
    from rich.table import Column

    w = CASH_WORDS[lang]
    names = {"ALL": w["all"]} | (names or {})
    keep = pc.and_(
        pc.equal(summary["program"], "ALL"),
        pc.and_(pc.equal(summary["measure"], "cash"), pc.equal(summary["period"], "year")),
    )
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
    cell = {
        (y, p, c): f"{by[(y, p)][c] / 1e4:,.0f}" if (y, p) in by else ""
        for y in years
        for p in payers
        for c in ("mean_cny", "p90_cny")
    }
    cw = max([len(v) for v in cell.values()] + [4]) + 3
    label = {p: names.get(p, p) for p in payers}
    import re

    longest_word = max(
        (cell_len(x) for p in payers for x in re.findall(r"[^\s\u3000-\u9fff\uff00-\uffef]+", label[p])), default=4
    )  # Chinese wraps between characters, other scripts between words
    name_w = max(min(max((cell_len(label[p]) for p in payers), default=4), 22, width // 3), longest_word, 4)
    per = max(1, (width - name_w - 4 - 8) // cw)
    tables = []
    for i in range(0, len(years), per):
        span = years[i : i + per]
        t = Table(
            Column(w["payer"], max_width=name_w, min_width=min(name_w, longest_word)),
            Column("", no_wrap=True),
            *[Column(str(y), justify="right", no_wrap=True) for y in span],
            title=w["title"] if i == 0 else None,
            title_justify="left",
        )
        for p in payers:
            for stat, col in ((w["mean"], "mean_cny"), ("P90", "p90_cny")):
                t.add_row(
                    label[p] if col == "mean_cny" else "",
                    stat,
                    *[cell[(y, p, col)] for y in span],
                    end_section=col == "p90_cny",
                )
        tables.append(t)
    return tables


def wrapped(line: str, width: int) -> list[str]:
    """``line`` folded to ``width`` cells between words (Chinese between characters), continuation lines
    indented like the first; a word is never cut unless it alone is wider than the line."""
    from rich.cells import cell_len
    from rich.text import Text

    if cell_len(line) <= width:
        return [line]
    indent = len(line) - len(line.lstrip(" "))
    pad = " " * min(indent + 4, width // 3)
    first = Text(line).wrap(Console(width=width), width)[0].plain
    rest = line[len(first) :].strip()
    more = list(Text(rest).wrap(Console(width=width), width - len(pad))) if rest else []
    return [first.rstrip()] + [pad + t.plain.strip() for t in more]


def program_tables(rows: list[dict], width: int) -> tuple[list[Table], str | None]:
    """``programs list`` as one compact table per document (titled by its 文号), nothing cut: from 80 columns the
    whole id, the Chinese title (wrapped) and the status; below 80 the id within its document and the status only
    (and a note saying where the titles are)."""
    from rich import box
    from rich.table import Column

    docs: dict[str, list[dict]] = {}
    for r in rows:
        docs.setdefault(r["document"], []).append(r)
    wide = width >= 80
    tables = []
    for doc, rs in docs.items():
        prefix = rs[0]["id"].split(".", 1)[0]
        title = f"{doc}（{len(rs)}）"
        if wide:
            t = Table(
                Column("id", no_wrap=True),
                Column("title 标题", overflow="fold", ratio=1),
                Column("status", no_wrap=True),
                title=title,
                title_justify="left",
                box=box.MINIMAL,
                expand=False,
                padding=(0, 1),
            )
            for r in rs:
                t.add_row(r["id"], r["title_zh"], r["status"])
        else:
            t = Table(
                Column(f"id: {prefix}.…", no_wrap=True),
                Column("status", no_wrap=True),
                title=title,
                title_justify="left",
                box=box.MINIMAL,
                padding=(0, 1),
            )
            for r in rs:
                t.add_row(
                    r["id"].removeprefix(prefix + ".") if r["id"].startswith(prefix + ".") else r["id"], r["status"]
                )
        tables.append(t)
    note = None if wide else "titles: programs show ID, --format csv, or 80 columns"
    return tables, note
