"""The planners' workbench: a local Starlette application over :mod:`fiscal_sim.api` (server-rendered pages).

``create_app(workspace)`` holds everything in the workspace folder: ``scenarios/`` (the workspace's own),
``runs/<id>/`` (run folders, written as ``fiscal-sim run`` writes them) and ``registry.sqlite``.
"""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from fiscal_sim.web import scenarios as sc
from fiscal_sim.web.i18n import LANGS, translator
from fiscal_sim.web.jobs import Job, QueueFull, Worker
from fiscal_sim.web.registry import RUN_ID, Registry
from fiscal_sim.web.security import Guard, check_binding, checked_form

MAX_DRAWS = 200_000
COMPARE_COLUMNS = (
    "payer",
    "fiscal_year",
    "baseline_mean_cny",
    "reform_mean_cny",
    "change_mean_cny",
    "change_se_cny",
    "baseline_p_exceed",
    "reform_p_exceed",
)
_env = Environment(loader=PackageLoader("fiscal_sim.web", "templates"), autoescape=select_autoescape())


def _lang(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("fs_lang") or "zh"
    return lang if lang in LANGS else "zh"


def page(request: Request, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    lang = _lang(request)
    html = _env.get_template(template).render(
        t=translator(lang), lang=lang, csrf=request.scope["state"]["csrf"], path=request.url.path, **ctx
    )
    resp = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:
        resp.set_cookie("fs_lang", lang, samesite="strict")
    return resp


def _run(request: Request) -> dict[str, Any]:
    run_id = request.path_params["run_id"]
    run = request.app.state.registry.get(run_id) if RUN_ID.match(run_id) else None
    if run is None:
        raise HTTPException(404, "no such run")
    return run


def _folder(request: Request, run: dict[str, Any]) -> Path:
    reg: Registry = request.app.state.registry
    root = reg.runs_dir.resolve()
    folder = reg.folder(run["id"]).resolve()
    if not folder.is_relative_to(root) or run["status"] != "done" or run["missing"]:
        raise HTTPException(404, "this run has no results to download (not finished, or its folder was removed)")
    return folder


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
        import yaml

        ext = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("scenario", {}).get("extends")
        if ext:
            return (path.parent / ext).resolve()
    return path


async def scenario_form(request: Request) -> Response:
    src, name, path = _scenario(request)
    mode = "edit" if request.query_params.get("mode") == "edit" and src == "ws" else "dup"
    form = sc.Form.from_scenario(sc.merged(path), name if mode == "edit" else f"{name}_whatif")
    if mode == "edit":
        form.sets = sc.own_sets(path)
    return page(request, "form.html", src=src, name=name, mode=mode, form=form, rows=_rows(form))


def _rows(form: sc.Form) -> list[dict[str, str]]:
    return form.budgets + [{"payer": "", "program": "ALL", "amount": ""}] * max(1, 3 - len(form.budgets))


async def scenario_save(request: Request) -> Response:
    src, name, path = _scenario(request)
    data = await checked_form(request)
    mode = "edit" if data.get("mode") == "edit" and src == "ws" else "dup"
    form = sc.Form.from_post(data)
    parent = _parent(src, path) if mode == "edit" else path
    if mode == "edit" and form.name != name:
        form.errors["name"] = "rename by duplicating; an edit keeps the name"
        saved = None
    else:
        saved = sc.save(request.app.state.library, form, parent, overwrite=mode == "edit")
    if saved is None:
        return page(request, "form.html", status=422, src=src, name=name, mode=mode, form=form, rows=_rows(form))
    return RedirectResponse(f"/scenarios/ws/{saved.stem}", status_code=303)


def _int(text: Any, default: int | None, lo: int, hi: int, label: str) -> int | None:
    if text in (None, ""):
        return default
    if not str(text).strip().isdigit() or not lo <= int(text) <= hi:
        raise HTTPException(422, f"{label}: a whole number from {lo} to {hi:,}")
    return int(text)


async def run_start(request: Request) -> Response:
    data = await checked_form(request)
    lib: sc.Library = request.app.state.library
    try:
        path = lib.path(str(data.get("src", "")), str(data.get("name", "")))
    except sc.NotFound as e:
        raise HTTPException(404, str(e)) from None
    draws = _int(data.get("draws"), 1000, 1, MAX_DRAWS, "draws")
    seed = _int(data.get("seed"), None, 0, 2**63 - 1, "seed")
    reg: Registry = request.app.state.registry
    run_id = reg.add(
        path.stem,
        path.read_text(encoding="utf-8"),
        {"draws": draws, "seed": seed, "source": f"{data.get('src')}/{path.stem}"},
        request.app.state.who,
    )
    try:
        request.app.state.worker.submit(Job(run_id, path, draws, seed))
    except QueueFull as e:
        reg.set_status(run_id, "failed", error=str(e))
        raise HTTPException(503, str(e)) from None
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


async def run_view(request: Request) -> Response:
    run = _run(request)
    lines = ((run["headline"] or {}).get("text") or {}).get(_lang(request)) or []  # headline.json's own text
    return page(request, "run.html", run=run, lines=lines, payers=_budget_payers(run))


def _budget_payers(run: dict[str, Any]) -> list[str]:
    h = run.get("headline") or {}
    payers = [b.get("payer") for b in h.get("budget_lines") or [] if b.get("program") == "ALL"]
    return [p for p in dict.fromkeys(payers) if p] or ["ALL"]


async def run_status(request: Request) -> Response:
    run = _run(request)
    return JSONResponse(
        {k: run[k] for k in ("id", "status", "done_draws", "error", "missing")} | {"draws": run["settings"]["draws"]}
    )


async def run_cancel(request: Request) -> Response:
    await checked_form(request)
    run = _run(request)
    if run["status"] in ("queued", "running"):
        request.app.state.worker.cancel(run["id"])
    return RedirectResponse(f"/runs/{run['id']}", status_code=303)


def run_cash(request: Request) -> Response:
    """Cash by year of one payer (all programs): mean, P5, P95 and its budget line (yuan), for the chart."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    run = _run(request)
    folder = _folder(request, run)
    payer = request.query_params.get("payer", _budget_payers(run)[0])
    t = pq.read_table(
        folder / "summary.parquet",
        columns=[
            "program",
            "payer",
            "vintage",
            "measure",
            "period",
            "fiscal_year",
            "mean_cny",
            "p05_cny",
            "p95_cny",
            "budget_cny",
        ],
    )
    mask = pc.and_(
        pc.and_(pc.equal(t["program"], "ALL"), pc.equal(t["payer"], payer)),
        pc.and_(pc.and_(pc.equal(t["vintage"], "ALL"), pc.equal(t["measure"], "cash")), pc.equal(t["period"], "year")),
    )
    rows = sorted(t.filter(mask).to_pylist(), key=lambda r: r["fiscal_year"])
    return JSONResponse(
        {
            "payer": payer,
            "unit": "yuan",
            **{k: [r[k] for r in rows] for k in ("fiscal_year", "mean_cny", "p05_cny", "p95_cny", "budget_cny")},
        }
    )


def run_download(request: Request) -> Response:
    from fiscal_sim.export import write_csv, write_xlsx

    kind = request.path_params["kind"]
    if kind not in ("xlsx", "csv", "parquet", "report"):
        raise HTTPException(404, "downloads: xlsx, csv, parquet or report")
    run = _run(request)
    folder = _folder(request, run)
    tmp = Path(tempfile.mkdtemp(prefix="fiscal-sim-web-"))
    cleanup = BackgroundTask(shutil.rmtree, tmp, ignore_errors=True)
    name = f"{run['scenario_name']}_{run['id']}"
    if kind == "xlsx":
        out = write_xlsx(folder, tmp / f"{name}.xlsx")
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        src = folder
        if kind == "csv":
            write_csv(folder, tmp / "csv")
            src = tmp / "csv"
        elif kind == "report":
            from fiscal_sim.report import write_report

            write_report(folder, tmp / "report")
            src = tmp / "report"
        out = Path(shutil.make_archive(str(tmp / f"{name}_{kind}"), "zip", src))
        media = "application/zip"
    return FileResponse(out, media_type=media, filename=out.name, background=cleanup)


def compare_view(request: Request) -> Response:
    """Two finished runs' scenarios compared with common random numbers (api.compare): by year and payer."""
    from fiscal_sim import api

    reg: Registry = request.app.state.registry
    a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
    runs = [r for r in reg.list() if r["status"] == "done"]
    rows: list[dict[str, Any]] = []
    if a and b:
        ra, rb = reg.get(a), reg.get(b)
        if not ra or not rb:
            raise HTTPException(404, "no such run")
        lib: sc.Library = request.app.state.library
        paths = []
        for r in (ra, rb):
            src, name = r["settings"]["source"].split("/", 1)
            try:
                paths.append(lib.path(src, name))
            except sc.NotFound as e:
                raise HTTPException(404, str(e)) from None
        cmp = api.compare(paths[0], paths[1], draws=min(ra["settings"]["draws"], rb["settings"]["draws"]))
        rows = [
            {k: r[k] for k in COMPARE_COLUMNS}
            for r in cmp.table.to_pylist()
            if (r["program"], r["measure"], r["period"]) == ("ALL", "cash", "year")
        ]
    return page(request, "compare.html", runs=runs, a=a, b=b, rows=rows)


SWEEP_MAX_POINTS, SWEEP_MAX_DRAWS = 8, 5000


def sweep_points(table: Any, payer: str) -> list[dict[str, Any]]:
    """Per sweep point: the swept value and the worst year's P(exceed) of ``payer``'s all-program cash line."""
    value_col = [c for c in table.schema.names if c not in SUMMARY_LIKE][0]
    out: dict[int, dict[str, Any]] = {}
    for r in table.to_pylist():
        if (r["program"], r["payer"], r["vintage"], r["measure"], r["period"]) != ("ALL", payer, "ALL", "cash", "year"):
            continue
        pt = out.setdefault(r["point"], {"value": r[value_col], "p_exceed": None, "worst_year": None})
        if r["p_exceed"] is not None and (pt["p_exceed"] is None or r["p_exceed"] > pt["p_exceed"]):
            pt.update(p_exceed=r["p_exceed"], worst_year=r["fiscal_year"])
    return [out[k] for k in sorted(out)]


SUMMARY_LIKE = {
    "point",
    "scenario",
    "program",
    "payer",
    "vintage",
    "measure",
    "period",
    "fiscal_year",
    "draws",
    "mean_cny",
    "sd_cny",
    "mcse_cny",
    "p05_cny",
    "p10_cny",
    "p50_cny",
    "p90_cny",
    "p95_cny",
    "var_cny",
    "tvar_cny",
    "min_cny",
    "max_cny",
    "budget_cny",
    "p_exceed",
    "p_exceed_lo",
    "p_exceed_hi",
    "overrun_if_exceeded_cny",
    "var_level",
    "is_total",
}


async def sweep_view(request: Request) -> Response:
    """One parameter swept over a few values (api.sweep, in memory): P(exceed) of a budget line against it."""
    from starlette.concurrency import run_in_threadpool

    from fiscal_sim import api
    from fiscal_sim.errors import FiscalSimError

    lib: sc.Library = request.app.state.library
    values = {"scenario": "repo/baseline", "set": "", "draws": "500", "payer": "city"}
    errors: dict[str, str] = {}
    points: list[dict[str, Any]] = []
    if request.method == "POST":
        data = await checked_form(request)
        values.update({k: str(data.get(k, "")).strip() for k in values})
        src, _, name = values["scenario"].partition("/")
        try:
            path = lib.path(src, name)
        except sc.NotFound as e:
            raise HTTPException(404, str(e)) from None
        try:
            draws = _int(values["draws"], 500, 1, SWEEP_MAX_DRAWS, "draws")
        except HTTPException as e:
            errors["draws"] = e.detail
        assignment = values["set"].split("=", 1)[1] if "=" in values["set"] else ""
        if len(assignment.split(",")) > SWEEP_MAX_POINTS:
            errors["set"] = f"at most {SWEEP_MAX_POINTS} values here (the CLI's fiscal-sim sweep takes more)"
        if not errors:
            try:
                table = await run_in_threadpool(api.sweep, path, [values["set"]], draws=draws)
                points = sweep_points(table, values["payer"])
                if not any(p["p_exceed"] is not None for p in points):
                    errors["payer"] = f"no budget line for payer {values['payer']!r} (all programs) in this scenario"
            except FiscalSimError as e:
                errors["set"] = str(e)
    return page(
        request,
        "sweep.html",
        status=422 if errors else 200,
        scenarios=lib.list(),
        values=values,
        errors=errors,
        points=points,
    )


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
) -> Any:
    """The workbench on ``workspace`` (created if absent); refuses a non-loopback host without a token."""
    check_binding(host, token)
    ws = Path(workspace).resolve()
    (ws / "scenarios").mkdir(parents=True, exist_ok=True)
    (ws / "runs").mkdir(exist_ok=True)
    registry = Registry(ws)
    for run_id in registry.recover():  # an interrupted run's staging folder (ours, named after it) goes
        Worker.clean_staging(registry.folder(run_id))
    routes = [
        Route("/", index),
        Route("/static/plotly.min.js", plotly_js),
        Route("/static/app.js", app_js),
        Route("/scenarios/{src}/{name}", scenario_view),
        Route("/scenarios/{src}/{name}/form", scenario_form),
        Route("/scenarios/{src}/{name}/save", scenario_save, methods=["POST"]),
        Route("/runs", run_start, methods=["POST"]),
        Route("/runs/{run_id}", run_view),
        Route("/runs/{run_id}/status.json", run_status),
        Route("/runs/{run_id}/cash.json", run_cash),
        Route("/runs/{run_id}/cancel", run_cancel, methods=["POST"]),
        Route("/runs/{run_id}/download/{kind}", run_download),
        Route("/compare", compare_view),
        Route("/sweep", sweep_view, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: error_page, Exception: error_page})
    app.state.registry = registry
    app.state.library = sc.Library(repo or sc.repo_scenarios(), ws / "scenarios")
    app.state.worker = Worker(registry)
    app.state.who = who or (
        f"token:{os.environ.get('FISCAL_SIM_TOKEN_NAME', 'shared')}" if token else getpass.getuser()
    )
    app.add_middleware(Guard, token=token)
    return app
