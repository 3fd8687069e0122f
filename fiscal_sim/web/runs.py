"""The workbench's jobs: start a run, a comparison, a sweep or an assumption ledger (each through the queue),
follow it, cancel it, and show and download what it wrote — every number read from the job's own files."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from fiscal_sim.registry import RUN_ID, Registry
from fiscal_sim.web import scenarios as sc
from fiscal_sim.web.common import lang_of, page, whole
from fiscal_sim.web.jobs import Job, QueueFull
from fiscal_sim.web.security import checked_form

MAX_DRAWS = 200_000
SWEEP_MAX_POINTS, SWEEP_MAX_DRAWS, LEDGER_MAX_DRAWS = 8, 20_000, 5_000
SERIES = ("fiscal_year", "mean_cny", "p05_cny", "p95_cny", "budget_cny")


def _job(request: Request) -> dict[str, Any]:
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
        raise HTTPException(404, "this run has no results to show (not finished, or its folder was removed)")
    return folder


def _path(request: Request, ref: Any) -> Path:
    """A scenario named ``src/name`` in the library (never a path the request makes up)."""
    src, _, name = str(ref or "").partition("/")
    try:
        return request.app.state.library.path(src, name)
    except sc.NotFound as e:
        raise HTTPException(404, str(e)) from None


def submit(request: Request, kind: str, path: Path, draws: int, seed: int | None, **extra: Any) -> Response:
    """Record a job and queue it; the answer is its page."""
    reg: Registry = request.app.state.registry
    settings = {"draws": draws, "seed": seed, "path": str(path), **extra}
    run_id = reg.add(path.stem, path.read_text(encoding="utf-8"), settings, request.app.state.who, kind)
    recorded = reg.get(run_id)
    assert recorded is not None
    try:
        request.app.state.worker.submit(Job.from_record(recorded))  # the job as recorded, as a restart reads it
    except QueueFull as e:
        reg.set_status(run_id, "failed", error=str(e))
        raise HTTPException(503, str(e)) from None
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


async def run_start(request: Request) -> Response:
    data = await checked_form(request)
    path = _path(request, f"{data.get('src', '')}/{data.get('name', '')}")
    draws = whole(data.get("draws"), 1000, 1, MAX_DRAWS, "draws")
    seed = whole(data.get("seed"), None, 0, 2**63 - 1, "seed")
    assert draws is not None
    source, ledger = f"{data.get('src')}/{path.stem}", data.get("draws_ledger") == "on"
    return submit(request, "run", path, draws, seed, source=source, total=draws, ledger=ledger)


async def ledger_start(request: Request) -> Response:
    """The assumption ledger of a finished run's scenario (every named alternative, common random numbers)."""
    from fiscal_sim import api

    data = await checked_form(request)
    run = _job(request)
    path = Path(run["settings"]["path"])
    draws = whole(data.get("draws"), 300, 1, LEDGER_MAX_DRAWS, "draws")
    assert draws is not None
    n = len(api.alternatives(api.load(path).with_settings(draws=draws)).names)
    return submit(
        request, "assumptions", path, draws, run["settings"].get("seed"), source=run["settings"].get("source"),
        total=draws, alternatives=n, of_run=run["id"],
    )  # fmt: skip


def _summary_rows(folder: Path) -> list[dict[str, Any]]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t = pq.read_table(folder / "summary.parquet", columns=["program", "payer", "vintage", "measure", "period", *SERIES])
    mask = pc.and_(
        pc.and_(pc.equal(t["program"], "ALL"), pc.equal(t["measure"], "cash")), pc.equal(t["period"], "year")
    )
    return sorted(t.filter(mask).to_pylist(), key=lambda r: r["fiscal_year"])


def payer_series(folder: Path, payer: str) -> dict[str, Any]:
    """Cash by year of one payer, all programs (yuan): mean, P5, P95, its budget line, and the means of awards
    made before the horizon (``existing_mean_cny``) and of new awards (``new_mean_cny``)."""
    rows = [r for r in _summary_rows(folder) if r["payer"] == payer]
    out: dict[str, Any] = {"payer": payer, "unit": "yuan"}
    total = [r for r in rows if r["vintage"] == "ALL"]
    out |= {k: [r[k] for r in total] for k in SERIES}
    for v in ("existing", "new"):
        by_year = {r["fiscal_year"]: r["mean_cny"] for r in rows if r["vintage"] == v}
        out[f"{v}_mean_cny"] = [by_year.get(y, 0.0) for y in out["fiscal_year"]]
    return out


def _payers(run: dict[str, Any]) -> list[dict[str, str]]:
    """The payers of a run's headline (all payers first), each with its names."""
    return [
        {"payer": p["payer"], "zh": p["name_zh"], "en": p["name_en"]} for p in (run["headline"] or {}).get("payers", [])
    ]


def _budget_payer(run: dict[str, Any]) -> str:
    lines = (run["headline"] or {}).get("budget_lines") or []
    return next((b["payer"] for b in lines if b.get("program") == "ALL"), "ALL")


def run_cash(request: Request) -> Response:
    run = _job(request)
    folder = _folder(request, run)
    return JSONResponse(payer_series(folder, request.query_params.get("payer", _budget_payer(run))))


def run_payers(request: Request) -> Response:
    """Every payer's series at once (the small multiples)."""
    run = _job(request)
    folder = _folder(request, run)
    return JSONResponse([payer_series(folder, p["payer"]) | p for p in _payers(run)])


def _ledger_of(reg: Registry, run: dict[str, Any]) -> dict[str, Any] | None:
    """The newest finished assumption ledger of the same scenario text (when there is one)."""
    return next(
        (
            r
            for r in reg.list("assumptions")
            if r["status"] == "done" and not r["missing"] and r["scenario_sha256"] == run["scenario_sha256"]
        ),
        None,
    )


def ledger_rows(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    import pyarrow.parquet as pq

    return (
        pq.read_table(folder / "assumptions.parquet").to_pylist(),
        pq.read_table(folder / "assumptions_budgets.parquet").to_pylist(),
    )


def compare_rows(folder: Path) -> list[dict[str, Any]]:
    """compare.parquet's all-program yearly cash rows by payer and year."""
    import pyarrow.parquet as pq

    rows = pq.read_table(folder / "compare.parquet").to_pylist()
    keep = [r for r in rows if (r["program"], r["measure"], r["period"]) == ("ALL", "cash", "year")]
    return [r for r in keep if r.get("vintage", "ALL") == "ALL"]


def sweep_points(folder: Path, payer: str) -> list[dict[str, Any]]:
    """Per sweep point: the swept value and the worst year's P(exceed) of ``payer``'s all-program cash line."""
    import pyarrow.parquet as pq

    values = pq.read_table(folder / "points.parquet").to_pylist()
    out: dict[int, dict[str, Any]] = {}
    for r in pq.read_table(folder / "sweep.parquet").to_pylist():
        if (r["program"], r["payer"], r["vintage"], r["measure"], r["period"]) != ("ALL", payer, "ALL", "cash", "year"):
            continue
        pt = out.setdefault(r["point"], {"p_exceed": None, "worst_year": None, "mean_cny": None})
        if r["p_exceed"] is not None and (pt["p_exceed"] is None or r["p_exceed"] > pt["p_exceed"]):
            pt.update(p_exceed=r["p_exceed"], worst_year=r["fiscal_year"], mean_cny=r["mean_cny"])
    for v in values:
        if v["point"] in out:
            out[v["point"]]["value"] = next(x for k, x in v.items() if k != "point")
    return [out[k] for k in sorted(out)]


async def run_view(request: Request) -> Response:
    from fiscal_sim import headline

    run = _job(request)
    lang = lang_of(request)
    ctx: dict[str, Any] = {"run": run, "kind": run["kind"]}
    done = run["status"] == "done" and not run["missing"]
    if run["kind"] == "run":
        ctx["lines"] = ((run["headline"] or {}).get("text") or {}).get(lang) or []
        ctx["payers"] = _payers(run)
        ctx["budget_payer"] = _budget_payer(run)
        ledger = _ledger_of(request.app.state.registry, run) if done else None
        if ledger:
            rows, budgets = ledger_rows(_folder(request, ledger))
            ctx["ledger"] = {"id": ledger["id"], "lines": headline.assumption_lines(rows, budgets, lang)}
    elif done and run["kind"] == "compare":
        ctx["rows"] = compare_rows(_folder(request, run))
    elif done and run["kind"] == "sweep":
        ctx["points"] = sweep_points(_folder(request, run), run["settings"]["payer"])
    elif done and run["kind"] == "assumptions":
        rows, budgets = ledger_rows(_folder(request, run))
        ctx["lines"] = headline.assumption_lines(rows, budgets, lang, top=len(rows))
        ctx["ledger_rows"] = sorted(rows, key=lambda r: r["rank"])
    return page(request, "run.html", **ctx)


def run_status(request: Request) -> Response:
    run = _job(request)
    s = run["settings"]
    return JSONResponse(
        {k: run[k] for k in ("id", "kind", "status", "done_draws", "error", "missing")}
        | {"draws": s.get("total", s["draws"])}
    )


async def run_cancel(request: Request) -> Response:
    await checked_form(request)
    run = _job(request)
    if run["status"] in ("queued", "running"):
        request.app.state.worker.cancel(run["id"])
    return RedirectResponse(f"/runs/{run['id']}", status_code=303)


def run_download(request: Request) -> Response:
    """A finished job's files: the run's Excel workbook, CSV or report, or any job's folder (zip)."""
    from fiscal_sim import api

    kind = request.path_params["kind"]
    run = _job(request)
    allowed = ("xlsx", "csv", "parquet", "report") if run["kind"] in ("run", "compare") else ("parquet",)
    if kind not in allowed:
        raise HTTPException(404, f"downloads of this {run['kind']}: {', '.join(allowed)}")
    folder = _folder(request, run)
    tmp = Path(tempfile.mkdtemp(prefix="fiscal-sim-web-"))
    cleanup = BackgroundTask(shutil.rmtree, tmp, ignore_errors=True)
    name = f"{run['scenario_name']}_{run['kind']}_{run['id']}"
    if kind == "xlsx":
        out = api.export_run(folder, xlsx=tmp / f"{name}.xlsx")[0]
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        src = folder
        if kind == "csv":
            api.export_run(folder, csv=tmp / "csv")
            src = tmp / "csv"
        elif kind == "report":
            api.write_report(folder, tmp / "report")
            src = tmp / "report"
        out = Path(shutil.make_archive(str(tmp / f"{name}_{kind}"), "zip", src))
        media = "application/zip"
    return FileResponse(out, media_type=media, filename=out.name, background=cleanup)


async def compare_page(request: Request) -> Response:
    """Two scenarios compared with common random numbers (a compare job); GET prefills from two runs."""
    reg: Registry = request.app.state.registry
    values = {"a": "repo/baseline", "b": "repo/lapse_2024_plan", "draws": "1000"}
    for key in ("a", "b"):
        ref = reg.get(request.query_params.get(key, ""))
        if ref and ref["settings"].get("source"):
            values[key] = ref["settings"]["source"]
    if request.method == "POST":
        data = await checked_form(request)
        values.update({k: str(data.get(k, "")).strip() for k in values})
        a, b = _path(request, values["a"]), _path(request, values["b"])
        draws = whole(values["draws"], 1000, 1, MAX_DRAWS, "draws")
        assert draws is not None
        return submit(request, "compare", a, draws, None, other=str(b), source=f"{values['a']} vs {values['b']}")
    return page(request, "compare.html", scenarios=request.app.state.library.list(), values=values)


async def sweep_page(request: Request) -> Response:
    """One parameter swept over a few values (a sweep job): the chance of exceeding a budget line against it."""
    from fiscal_sim import api
    from fiscal_sim.errors import FiscalSimError

    lib: sc.Library = request.app.state.library
    values = {"scenario": "repo/baseline", "set": "", "draws": "500", "payer": "city"}
    errors: dict[str, str] = {}
    if request.method == "POST":
        data = await checked_form(request)
        values.update({k: str(data.get(k, "")).strip() for k in values})
        path = _path(request, values["scenario"])
        try:
            draws = whole(values["draws"], 500, 1, SWEEP_MAX_DRAWS, "draws")
        except HTTPException as e:
            errors["draws"] = e.detail
        try:
            scen = api.load(path)
            n = len(api.sweep_points(scen, [values["set"]]))
            if n > SWEEP_MAX_POINTS:
                errors["set"] = f"at most {SWEEP_MAX_POINTS} values here (the CLI's fiscal-sim sweep takes more)"
            if values["payer"] not in scen.geography.payers and values["payer"] != "ALL":
                errors["payer"] = f"no payer {values['payer']!r} (known: ALL, {', '.join(scen.geography.payers)})"
            elif not any(b.payer == values["payer"] and b.program == "ALL" for b in scen.spec.budgets):
                errors["payer"] = f"no budget line for payer {values['payer']!r} (all programs) in this scenario"
        except FiscalSimError as e:
            errors["set"] = str(e)
        if not errors:
            assert draws is not None
            return submit(
                request, "sweep", path, draws, None, sets=[values["set"]], payer=values["payer"],
                source=values["scenario"], total=draws * n,
            )  # fmt: skip
    return page(
        request, "sweep.html", status=422 if errors else 200, scenarios=lib.list(), values=values, errors=errors
    )
