"""The terminal side of the command line: the two consoles, tables that fit, amounts as the bureau writes them.

``out`` (results) and ``err`` (progress, notes, errors) are module attributes, made again for each invocation
(:func:`reset`): always use them as ``console.out``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fiscal_sim import terminal

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, soft_wrap=True)


def reset() -> None:
    """Consoles for this invocation: tables fit the terminal (its width, or $COLUMNS; 200 columns when piped,
    so nothing is cut in a file); progress and messages on stderr."""
    global out, err
    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200)
    err = Console(stderr=True, soft_wrap=True)


def show(t: Table) -> None:
    terminal.show(out, t)


def line(text: str) -> None:
    """One plain line (no markup, no highlighting), wrapped between words to the terminal."""
    for part in terminal.wrapped(text, out.width):
        out.print(part, markup=False, highlight=False)


def lines(texts: list[str]) -> None:
    for t in texts:
        line(t)
    out.print()


def note(text: str, kind: str = "note") -> None:
    colour = "yellow"
    err.print(f"[{colour}]{kind}[/{colour}]: {text}", highlight=False)


def wrote(what: Any, rest: str = "") -> None:
    out.print(f"wrote [bold]{what}[/bold]{rest}")


def wan(cny: float | None, signed: bool = False) -> str:
    """Yuan as whole 万元 (a change with its sign; a rounded zero as 0)."""
    if cny is None:
        return ""
    v = round(cny / 1e4)
    return f"{v:+,d}" if signed and v else f"{v:,d}"


def pct(p: float | None) -> str:
    return "" if p is None else f"{100 * p:.1f}%"


def payer_names(geo: Any, payer: str, lang: str) -> str:
    """A payer's name on screen (嘉兴经济技术开发区 or its English name), never its id."""
    p = geo.data.payers.get(payer) or geo.data.jurisdictions.get(payer)
    return (p.name_zh if lang == "zh" else p.name_en) if p is not None else payer


def print_headline(folder: Path | dict, lang: str = "en") -> None:
    """The run's headline (as computed, or its folder's headline.json), before any table, in ``lang``."""
    h = folder if isinstance(folder, dict) else json.loads((Path(folder) / "headline.json").read_text(encoding="utf-8"))
    lines(h["text"][lang])


def progress(total: int, label: str, quiet: bool):
    """A progress bar on stderr (disabled with --quiet) and its task: ``with bar: … bar.advance(task, k)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
    )
    task = bar.add_task(label, total=total)
    return bar, task


def plain(texts: list[str]) -> None:
    """Lines as they are (no wrapping, markup or highlighting), then a blank line."""
    for t in texts:
        out.print(t, markup=False, highlight=False)
    out.print()
