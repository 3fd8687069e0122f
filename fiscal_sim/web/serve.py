"""Start the workbench with uvicorn (``fiscal-sim serve``)."""

from __future__ import annotations

from pathlib import Path

from fiscal_sim.errors import FiscalSimError


def serve(
    workspace: Path, host: str, port: int, token: str | None, scheduler: str | None = None, workers: int = 2
) -> None:
    """Serve the workbench on ``host:port`` until Ctrl-C; the queue's running child is ended on the way out."""
    try:
        import uvicorn

        from fiscal_sim.web.app import create_app
    except ImportError as e:
        raise FiscalSimError(
            f"the workbench needs the [web] extra: pip install 'fiscal-sim[web]' ({e.name} missing)"
        ) from None
    app = create_app(workspace, host=host, token=token, scheduler=scheduler, workers=workers)
    print(f"fiscal-sim workbench on http://{host}:{port}/ (workspace {Path(workspace).resolve()})", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    finally:
        app.state.worker.stop()
