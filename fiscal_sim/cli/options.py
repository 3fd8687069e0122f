"""Options several commands share, and the checks they make before any work (errors name the option)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from fiscal_sim.cli import console
from fiscal_sim.errors import FiscalSimError

CatalogueOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--catalogue", "-C", help="scenarios folder holding programs/ and catalogue/", envvar="FISCAL_SIM_SCENARIOS"
    ),
]
FormatOpt = Annotated[
    str, typer.Option("--format", "-f", help="table (fits the terminal), csv or json", case_sensitive=False)
]
ExecutorOpt = Annotated[str, typer.Option("--executor", help="where chunks run: pool (local processes) or dask")]
SchedulerOpt = Annotated[
    Optional[str],
    typer.Option(
        "--scheduler",
        help="Dask scheduler address, e.g. tcp://HOST:8786 (--executor dask; default: a LocalCluster of --workers)",
    ),
]
SchedulerFileOpt = Annotated[
    Optional[str], typer.Option("--scheduler-file", help="Dask scheduler file (--executor dask)")
]
WorkersOpt = Annotated[int, typer.Option(help="worker processes")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="print only what was written (no progress, headline or tables)")
]
SetOpt = Annotated[
    list[str],
    typer.Option(
        "--set",
        help="TARGET=VALUE, the sweep's grammar with one value, e.g. programs.<id>.parameters.<name>=500 (repeatable)",
    ),
]
BudgetOpt = Annotated[
    list[str],
    typer.Option(
        "--budget",
        help="PAYER[:PROGRAM]=AMOUNT a year (万元 unless a unit is "
        "given), e.g. city=2.5亿; replaces the scenario's line (repeatable)",
    ),
]
LangOpt = Annotated[
    Optional[str], typer.Option("--lang", help="zh or en (default: Chinese when the locale is, e.g. LANG=zh_CN.UTF-8)")
]


def lang(value: str | None) -> str | None:
    if value not in (None, "zh", "en"):
        raise FiscalSimError(f"--lang {value!r}: use zh or en")
    return value


def executor(kind: str, workers: int, scheduler: Optional[str], scheduler_file: Optional[str]) -> Any:
    """The executor context for ``--executor``."""
    from fiscal_sim.orchestrate.executors import executor as make

    if kind not in ("pool", "dask"):
        raise FiscalSimError(f"--executor must be pool or dask, not {kind!r}")
    return make(kind, workers, scheduler, scheduler_file)  # type: ignore[arg-type]


def target(value: Optional[str], default: Path) -> Any:
    """``--out`` as given (a local folder, or a URL: :mod:`fiscal_sim.io.target`), else ``default``."""
    from fiscal_sim.io.target import parse

    return parse(value) if value is not None else default


def check_out(where: Any, kind: str, *scens: Any, hosts: tuple[str, ...] = ()) -> None:
    """Refuse a bad --out (a folder, or a URL) before any work (the writer checks again before it writes)."""
    from fiscal_sim.io.outdir import inputs_of
    from fiscal_sim.io.target import check

    check(where, kind, inputs_of(*scens), hosts)


def workers(scen: Any, n: int) -> int:
    """``--workers`` within the CPUs (with a note when capped); refuse a chunk size that cannot fit in memory."""
    from fiscal_sim.engine.resources import check_chunk_memory, check_workers

    n, msg = check_workers(n)
    if msg:
        console.note(msg)
    check_chunk_memory(scen, n)
    return n
