"""The ``fiscal-sim`` command line: thin adapters over :mod:`fiscal_sim.api`, one module per subject.

:mod:`.app` holds the typer application; :mod:`.faults` its one fault handler; :mod:`.console` the terminal
helpers; :mod:`.options` the options commands share. Commands parse, call the API and print; they hold no
domain logic.
"""

from __future__ import annotations

import os

# start-up: pydantic scans every installed package's entry points for plugins (0.1–0.5 s); fiscal_sim uses none
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from fiscal_sim.cli.app import app  # noqa: E402
from fiscal_sim.cli.faults import main as _main  # noqa: E402

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point (``fiscal-sim``)."""
    _main(app)


if __name__ == "__main__":  # pragma: no cover
    main()
