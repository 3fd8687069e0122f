"""Uploads for a workspace scenario: a commitment register (awards made before the horizon) or an award
history (to calibrate the uptake priors). Each is checked by the same code as the CLI before it is kept; the
file is stored under ``<workspace>/uploads/`` by a name the server makes, never the one the browser sent."""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request

from fiscal_sim.errors import FiscalSimError, InputError
from fiscal_sim.web.scenarios import Library, own
from fiscal_sim.web.security import MAX_UPLOAD, checked_form

KINDS = ("register", "history")
SUFFIXES = (".csv", ".parquet", ".xlsx")


def _message(e: FiscalSimError, *names: tuple[Path, str]) -> str:
    text = "; ".join(f"{p.field}: {p.message}" for p in e.problems) if isinstance(e, InputError) else str(e)
    for path, shown in names:
        text = text.replace(str(path), shown)
    return text


async def receive(request: Request, lib: Library, scenario: Path) -> tuple[tuple[str, str] | None, str]:
    """Check and keep an upload for ``scenario``; returns (field, problem) or None, and the scenario to show:
    the same one with the register in ``commitments:``, or its calibrated overlay ``<name>_calibrated``."""
    form = await checked_form(request, files=1)
    kind, upload = str(form.get("kind", "")), form.get("file")
    if kind not in KINDS:
        return ("upload", f"kind: one of {', '.join(KINDS)}"), scenario.stem
    if upload is None or isinstance(upload, str) or not upload.filename:
        return (kind, "choose a file"), scenario.stem
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in SUFFIXES:
        return (kind, f"a {', '.join(SUFFIXES)} file, not {suffix or 'a file without an extension'}"), scenario.stem
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return (kind, f"larger than {MAX_UPLOAD // 2**20} MiB"), scenario.stem
    folder = lib.ws.parent / "uploads"
    folder.mkdir(exist_ok=True)
    final = folder / f"{scenario.stem}.{kind}{suffix}"
    tmp = folder / f".{final.stem}.tmp-{uuid.uuid4().hex[:8]}{suffix}"
    tmp.write_bytes(data)
    try:
        if kind == "register":
            return _register(scenario, tmp, final, upload.filename), scenario.stem
        return _history(lib, scenario, tmp, final, upload.filename)
    finally:
        tmp.unlink(missing_ok=True)


def _with_register(scenario: Path, effective: Any, register: Path, target: Path) -> dict:
    """The scenario's own block with ``commitments:`` as it runs (a file's key replaces its base's) and the
    register in it."""
    sc = own(scenario)
    old = effective.model_dump(by_alias=True, exclude_none=True) if hasattr(effective, "model_dump") else {}
    old.pop("register", None)
    sc["commitments"] = {**old, "register": os.path.relpath(register, target.parent)}
    return {"scenario": sc}


def _register(scenario: Path, tmp: Path, final: Path, shown: str) -> tuple[str, str] | None:
    """Point the scenario's ``commitments:`` at the register when the scenario loads with it."""
    from fiscal_sim import api

    effective = api.load(scenario).spec.commitments_spec
    fd, name = tempfile.mkstemp(prefix=f".{scenario.stem}-", suffix=".yaml", dir=scenario.parent)
    trial = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yaml.safe_dump(_with_register(scenario, effective, tmp, trial), f, allow_unicode=True, sort_keys=False)
        api.load(trial)
        os.replace(tmp, final)
        trial.write_text(
            yaml.safe_dump(_with_register(scenario, effective, final, scenario), allow_unicode=True, sort_keys=False),
            encoding="utf-8",
        )
        os.replace(trial, scenario)
        return None
    except FiscalSimError as e:
        return "register", _message(e, (tmp, shown), (trial, f"{scenario.stem}.yaml"))
    finally:
        trial.unlink(missing_ok=True)


def _history(lib: Library, scenario: Path, tmp: Path, final: Path, shown: str) -> tuple[tuple[str, str] | None, str]:
    """Calibrate the scenario on the award history: a new workspace scenario ``<name>_calibrated``."""
    from fiscal_sim import api

    out = lib.ws / f"{scenario.stem}_calibrated.yaml"
    try:
        api.write_calibration(tmp, out, scenario)
    except FiscalSimError as e:
        return ("history", _message(e, (tmp, shown))), scenario.stem
    os.replace(tmp, final)  # the overlay's provenance names the kept file
    out.write_text(out.read_text(encoding="utf-8").replace(str(tmp), str(final)), encoding="utf-8")
    return None, out.stem
