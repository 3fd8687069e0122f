"""Write calibrations as a scenario overlay: a scenario file that ``extends`` the calibrated one.

The overlay changes only the uptake of programs with history (``overrides``: the count's mean or take-up,
its ``rate_cv``, growth where adopted, ``uptake.basis: calibrated`` and a note giving the basis) and records
the full basis of every program (prior, years observed, posterior mean and interval) under ``calibration:``,
which the engine ignores. ``fiscal-sim run OVERLAY`` runs the calibrated scenario.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from fiscal_sim.calibrate.history import History
from fiscal_sim.calibrate.posterior import LEVEL, Calibration
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.io.parquet import replace_text
from fiscal_sim.scenario import Scenario


def overlay_data(scen: Scenario, hist: History, cals: list[Calibration], out: Path, **settings: Any) -> dict[str, Any]:
    """The overlay as plain data; ``settings`` replace scenario keys (e.g. horizon, programs for a backtest)."""
    base = os.path.relpath(Path(scen.path).resolve(), Path(out).resolve().parent)
    ups = {sp.id: sp.prog.spec.uptake for sp in scen.programs if sp.prog.spec.uptake}
    overrides = {
        c.program: {
            **c.overrides,
            "uptake.basis": "calibrated",
            "uptake.note": " — ".join(filter(None, [ups[c.program].note, c.note()])),
            **({"uptake.target_until": None} if ups[c.program].target_until is not None else {}),
        }
        for c in cals
        if c.overrides
    }
    scenario = {
        "name": f"{scen.spec.name}_calibrated",
        "extends": base,
        "description": f"{scen.spec.name} with uptake calibrated to the award history {hist.path}"
        + (" (synthetic: not the bureau's records)" if hist.synthetic else ""),
        "overrides": overrides,
        **settings,
    }
    digest = hashlib.sha256(Path(hist.path).read_bytes()).hexdigest() if Path(hist.path).exists() else None
    return {
        "scenario": scenario,
        "calibration": {
            "history": str(hist.path),
            "history_sha256": digest,
            "years": f"{min(hist.years)}–{max(hist.years)}" if len(hist) else None,
            "interval_probability": LEVEL,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "programs": {c.program: c.basis() for c in cals if c.years},
            "prior_kept_no_history": [c.program for c in cals if not c.years],
        },
    }


HEAD = "# Scenario overlay written by `fiscal-sim calibrate`"


def write_overlay(data: dict[str, Any], out: Path, final: Path | None = None) -> Path:
    """Write the overlay YAML (to a temporary file renamed into place); ``final`` is where it will be read
    from when ``out`` is inside a folder that is renamed into place afterwards (a backtest's).

    An existing file is replaced only if an earlier ``calibrate`` wrote it: fiscal_sim never overwrites a file
    it did not create (a scenario given as ``--out`` by mistake stays as it is).
    """
    out = Path(out)
    if out.exists():
        try:
            ours = out.is_file() and out.read_text(encoding="utf-8").startswith(HEAD)
        except (OSError, UnicodeDecodeError):
            ours = False
        if not ours:
            raise FiscalSimError(
                f"{out}: exists and was not written by fiscal-sim calibrate; not overwriting it "
                "(choose another --out or remove it)"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    head = (
        f"{HEAD}: uptake priors updated from award history.\n"
        f"# Run it with: fiscal-sim run {final or out}\n"
        "# calibration: gives each program's basis (prior, years observed, posterior mean and interval).\n"
    )
    text = head + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=120)
    replace_text(out, text)
    return out
