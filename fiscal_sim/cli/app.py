"""The typer application: its group (the one fault handler), ``--version``, and the commands by subject."""

from __future__ import annotations

from typing import Annotated, Callable

import typer

from fiscal_sim.cli import analysis, calibrate, catalogue, console, outputs, serve
from fiscal_sim.cli.faults import FaultGroup

app = typer.Typer(
    cls=FaultGroup,
    help="Budget and fiscal commitment simulation for Jiaxing's subsidy policies. "
    "Add --debug anywhere to see a traceback with an error.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
programs_app = typer.Typer(
    cls=FaultGroup, help="List and describe the programs of the catalogue.", no_args_is_help=True
)
app.add_typer(programs_app, name="programs")


def _version(value: bool) -> None:
    if value:
        from fiscal_sim.version import __version__

        console.out.print(f"fiscal-sim {__version__}")
        raise typer.Exit()


@app.callback()
def _setup(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Budget and fiscal commitment simulation for Jiaxing's subsidy policies."""
    console.reset()


COMMANDS: dict[
    str, list[tuple[Callable[..., None], str]]
] = {  # subject → commands, in the order `fiscal-sim --help` lists them
    "catalogue": [(catalogue.validate, "validate"), (catalogue.test_cases, "test"), (catalogue.calc, "calc")],
    "outputs": [(outputs.run, "run"), (outputs.brief, "brief")],
    "analysis": [
        (analysis.compare, "compare"),
        (analysis.assumptions, "assumptions"),
        (analysis.sweep, "sweep"),
        (analysis.sensitivity, "sensitivity"),
    ],
    "reading": [(outputs.report, "report"), (outputs.export, "export")],
    "history": [(calibrate.calibrate, "calibrate"), (calibrate.backtest, "backtest")],
    "workbench": [(serve.serve, "serve")],
}
for _subject in COMMANDS.values():
    for _fn, _name in _subject:
        app.command(_name)(_fn)
programs_app.command("list")(catalogue.programs_list)
programs_app.command("show")(catalogue.programs_show)
