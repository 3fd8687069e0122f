"""The command line's one fault handler: every fault ends in the lines a user reads and a non-zero exit.

:class:`FaultGroup` is the typer app's command group, so the handler runs for every command however it is
invoked (the console entry :func:`fiscal_sim.cli.main`, or a test's ``CliRunner``); ``--debug`` anywhere on the
command line (or FISCAL_SIM_DEBUG=1) adds the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from fiscal_sim.cli import console
from fiscal_sim.errors import FiscalSimError, InputError

FAULTS = (FiscalSimError, OSError, UnicodeDecodeError, RecursionError, MemoryError)
"""Faults of the input or the machine; anything else is a bug (one line too, the traceback behind --debug)."""

state = {"debug": False, "reported": False}


def debug_wanted(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("FISCAL_SIM_DEBUG", "") not in ("", "0")


def report_error(e: BaseException, code: int = 1) -> int:
    """Print ``e`` as the lines a user reads (the traceback too with --debug); return the exit code."""
    from rich.markup import escape

    from fiscal_sim.errors import describe_os_error
    from fiscal_sim.io.secrets import mask

    state["reported"] = True
    if state["debug"]:
        import traceback

        traceback.print_exception(e)
    err = console.err
    if isinstance(e, InputError):
        err.print(f"[red]{len(e.problems) + e.more:,} problem(s)[/red]:")
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
    err.print(("" if code == 130 else "[red]error[/red]: ") + escape(mask(text)), highlight=False)
    return code


def handled(e: BaseException) -> int:
    """The exit code of a fault raised by a command (a bug is reported as one line unless --debug)."""
    if isinstance(e, FAULTS):
        return report_error(e)
    if state["debug"]:
        return report_error(e)
    return report_error(
        FiscalSimError(f"internal error ({type(e).__name__}: {e}); run again with --debug and report the traceback")
    )


class FaultGroup(TyperGroup):
    """The app's group: runs a command and turns any fault into its lines and exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException, KeyboardInterrupt):
            raise  # typer's own: usage errors, --help, Ctrl-C
        except Exception as e:  # noqa: BLE001 - the one handler
            raise typer.Exit(handled(e)) from None


def interrupted_note(code: Any) -> None:
    """Ctrl-C outside an output folder: typer exits 130 without a word."""
    if code == 130 and not state["reported"]:
        console.err.print("interrupted; nothing written", highlight=False)


def main(app: typer.Typer) -> None:
    """Console entry point: ``--debug`` (anywhere) shows tracebacks; numpy overflow warnings stay quiet (the
    finiteness checks say what went wrong, in one line)."""
    argv = sys.argv[1:]
    state["debug"] = debug_wanted(argv)
    args = [a for a in argv if a != "--debug"]
    if not state["debug"]:
        import warnings

        warnings.simplefilter("ignore", RuntimeWarning)
    try:
        app(args=args)
    except SystemExit as e:
        interrupted_note(e.code)
        raise
