"""The planners' workbench: a local Starlette application over :mod:`fiscal_sim.api` (server-rendered pages).

``create_app(workspace)`` holds everything in the workspace folder: ``scenarios/`` (the workspace's own),
``uploads/`` (registers and award histories), ``runs/<id>/`` (job folders, written as the CLI writes them) and
``registry.sqlite`` (:mod:`fiscal_sim.registry`). Job pages are :mod:`fiscal_sim.web.runs`.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from fiscal_sim.registry import Registry
from fiscal_sim.web import runs, scenarios as sc, uploads
from fiscal_sim.web.common import page
from fiscal_sim.web.form import Form, own_sets, save
from fiscal_sim.web.jobs import Worker
from fiscal_sim.web.security import Guard, check_binding, checked_form


def _scenario(request: Request) -> tuple[str, str, Path]:
    src, name = request.path_params["src"], request.path_params["name"]
    try:
        return src, name, request.app.state.library.path(src, name)
    except sc.NotFound as e:
        raise HTTPException(404, str(e)) from None


async def index(request: Request) -> Response:
    return page(
        request, "index.html", scenarios=request.app.state.library.list(), runs=request.app.state.registry.list()
    )


async def scenario_view(request: Request) -> Response:
    src, name, path = _scenario(request)
    return page(request, "scenario.html", src=src, name=name, text=path.read_text(encoding="utf-8"))


def _parent(src: str, path: Path) -> Path:
    """The file a saved form extends: for a workspace scenario being edited, the one it extends itself."""
    if src == "ws":
        ext = sc.own(path).get("extends")
        if ext:
            return (path.parent / ext).resolve()
    return path


def _forms(src: str, name: str, path: Path, mode: str) -> tuple[Form, Form, Any]:
    """The form shown (of ``path``) and the form of what a save extends, with that scenario compiled."""
    from fiscal_sim import api

    parent = _parent(src, path) if mode == "edit" else path
    base_scen = api.load(parent)
    base = Form.from_scenario(base_scen, parent.stem)
    form = Form.from_scenario(api.load(path), name if mode == "edit" else f"{name}_whatif")
    if mode == "edit":
        covered = {f"{r.id}:parameters.{k}" for r in form.programs for k in r.params}
        form.sets = own_sets(path, covered)
    return form, base, base_scen


def _mode(request: Request, src: str, value: Any) -> str:
    return "edit" if value == "edit" and src == "ws" else "dup"


def _form_page(request: Request, src: str, name: str, mode: str, form: Form, status: int = 200) -> Response:
    budgets = form.budgets + [{"payer": "", "program": "ALL", "amount": ""}] * max(1, 3 - len(form.budgets))
    docs: dict[str, list[Any]] = {}
    for r in form.programs:
        docs.setdefault(r.document, []).append(r)
    open_docs = {r.document for r in form.programs if any(k.startswith(f"p.{r.id}.") for k in form.errors)}
    return page(
        request, "form.html", status=status, src=src, name=name, mode=mode, form=form, rows=budgets, docs=docs,
        open_docs=open_docs,
    )  # fmt: skip


async def scenario_form(request: Request) -> Response:
    src, name, path = _scenario(request)
    mode = _mode(request, src, request.query_params.get("mode"))
    form, _, _ = _forms(src, name, path, mode)
    return _form_page(request, src, name, mode, form)


async def scenario_save(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    src, name, path = _scenario(request)
    data = await checked_form(request)
    mode = _mode(request, src, data.get("mode"))
    form, base, base_scen = await run_in_threadpool(_forms, src, name, path, mode)
    form.read_post(data)
    parent = _parent(src, path) if mode == "edit" else path
    if mode == "edit" and form.name != name:
        form.errors["name"] = "rename by duplicating; an edit keeps the name"
        saved = None
    else:
        lib = request.app.state.library
        saved = await run_in_threadpool(
            lambda: save(lib, form, base, base_scen, parent, overwrite=mode == "edit")
        )  # fmt: skip
    if saved is None:
        return _form_page(request, src, name, mode, form, status=422)
    return RedirectResponse(f"/scenarios/ws/{saved.stem}", status_code=303)


async def scenario_upload(request: Request) -> Response:
    """A commitment register or an award history for a workspace scenario, checked as the CLI checks it."""
    src, name, path = _scenario(request)
    if src != "ws":
        raise HTTPException(404, "uploads go to a workspace scenario: duplicate this one first")
    problem, target = await uploads.receive(request, request.app.state.library, path)
    if problem:
        form, _, _ = _forms(src, name, path, "edit")
        form.errors[problem[0]] = problem[1]
        return _form_page(request, src, name, "edit", form, status=422)
    return RedirectResponse(f"/scenarios/ws/{target}", status_code=303)


async def plotly_js(request: Request) -> Response:
    import plotly

    return FileResponse(
        Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
        media_type="text/javascript",
        headers={"Cache-Control": "max-age=86400"},
    )


async def app_js(request: Request) -> Response:
    return FileResponse(Path(__file__).parent / "static" / "app.js", media_type="text/javascript")


async def error_page(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error: the server log has the details"
    if "state" not in request.scope or "csrf" not in request.scope["state"]:
        return HTMLResponse(str(detail), status_code=status)
    return page(request, "error.html", status=status, message=detail, status_code=status)


def create_app(
    workspace: Path | str,
    *,
    host: str = "127.0.0.1",
    token: str | None = None,
    repo: Path | None = None,
    who: str | None = None,
    scheduler: str | None = None,
    workers: int = 2,
) -> Any:
    """The workbench on ``workspace`` (created if absent); refuses a non-loopback host without a token.
    ``scheduler``: a Dask scheduler's address the jobs run on (default: a local pool of ``workers``)."""
    check_binding(host, token)
    ws = Path(workspace).resolve()
    (ws / "scenarios").mkdir(parents=True, exist_ok=True)
    registry = Registry(ws)
    interrupted, queued = registry.recover()
    for run_id in interrupted:  # an interrupted job's staging folder (ours, named after it) goes
        Worker.clean_staging(registry.folder(run_id))
    routes = [
        Route("/", index),
        Route("/static/plotly.min.js", plotly_js),
        Route("/static/app.js", app_js),
        Route("/scenarios/{src}/{name}", scenario_view),
        Route("/scenarios/{src}/{name}/form", scenario_form),
        Route("/scenarios/{src}/{name}/save", scenario_save, methods=["POST"]),
        Route("/scenarios/{src}/{name}/upload", scenario_upload, methods=["POST"]),
        Route("/runs", runs.run_start, methods=["POST"]),
        Route("/runs/{run_id}", runs.run_view),
        Route("/runs/{run_id}/status.json", runs.run_status),
        Route("/runs/{run_id}/cash.json", runs.run_cash),
        Route("/runs/{run_id}/payers.json", runs.run_payers),
        Route("/runs/{run_id}/cancel", runs.run_cancel, methods=["POST"]),
        Route("/runs/{run_id}/ledger", runs.ledger_start, methods=["POST"]),
        Route("/runs/{run_id}/download/{kind}", runs.run_download),
        Route("/compare", runs.compare_page, methods=["GET", "POST"]),
        Route("/sweep", runs.sweep_page, methods=["GET", "POST"]),
    ]
    worker = Worker(registry, scheduler, workers)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        worker.stop()  # a running job is ended and marked; queued ones wait for the next start

    app = Starlette(
        routes=routes, exception_handlers={HTTPException: error_page, Exception: error_page}, lifespan=lifespan
    )
    app.state.registry = registry
    app.state.library = sc.Library(repo or sc.repo_scenarios(), ws / "scenarios")
    app.state.worker = worker
    app.state.worker.resume(queued)
    app.state.who = who or (
        f"token:{os.environ.get('FISCAL_SIM_TOKEN_NAME', 'shared')}" if token else getpass.getuser()
    )
    app.add_middleware(Guard, token=token)
    return app
