"""``fiscal-sim serve``: the planners' workbench (:mod:`fiscal_sim.web`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def serve(
    workspace: Annotated[Path, typer.Option(help="workspace folder: its scenarios/, runs/ and registry.sqlite")] = Path(
        "workbench"
    ),
    host: Annotated[str, typer.Option(help="address to bind (anything but loopback needs --token)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8765,
    token: Annotated[
        Optional[str],
        typer.Option(envvar="FISCAL_SIM_TOKEN", help="access token every request must carry", show_default=False),
    ] = None,
    scheduler: Annotated[
        Optional[str],
        typer.Option(help="a Dask scheduler's address (tcp://HOST:PORT) the jobs run on (default: a local pool)"),
    ] = None,
    workers: Annotated[int, typer.Option(help="worker processes of each job's local pool")] = 2,
) -> None:
    """The planners' workbench: a local web application (scenarios, runs, headline, chart, downloads).

    Example: fiscal-sim serve --workspace workbench   (then open http://127.0.0.1:8765/)
    """
    from fiscal_sim.web.serve import serve as run_server

    run_server(workspace, host, port, token, scheduler, workers)
