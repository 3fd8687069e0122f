"""Calibrate a program's award-amount distribution where the history records amounts.

The observed mean commitment per award (Σ amount / Σ awards) updates the model's mean by a normal–normal
conjugate step: prior N(m₀, (m₀·:data:`PRIOR_CV`)²) around the model's own mean m₀ (a labelled assumption:
the catalogue gives the input distributions no parameter uncertainty), data variance s²/N from the model's
per-award spread s. The program's first continuous uptake input (a share's beta mean, a lognormal median,
the values of a triangular, uniform, empirical or fixed input) is then scaled so that the model's mean
commitment per award equals the posterior mean (bisection, Monte Carlo with common random numbers; the
formula, caps of the formula and the schedule's total apply; aggregate caps across awards do not).
Programs whose award depends only on categories are checked (observed vs model mean), not changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import optimize, stats

from fiscal_sim.calibrate.history import History
from fiscal_sim.catalogue.loader import CompiledProgram
from fiscal_sim.uptake.random import stable_key
from fiscal_sim.uptake.sample import sample_applicants
from fiscal_sim.uptake.spec import (
    BetaDist,
    CategoricalDist,
    EmpiricalDist,
    FixedDist,
    LogNormalDist,
    TriangularDist,
    UniformDist,
)

PRIOR_CV = 0.5
"""assumption: prior CV of a program's mean commitment per award around the model's value"""
SAMPLE = 20_000
SCALE_RANGE = (1 / 20, 20.0)


def scalable_input(prog: CompiledProgram) -> tuple[str, Any] | None:
    """The first uptake input whose distribution can be scaled (not categorical)."""
    for name, dist in (prog.spec.uptake.inputs if prog.spec.uptake else {}).items():
        if not isinstance(dist, CategoricalDist):
            return name, dist
    return None


def scaled(dist, s: float) -> tuple[Any, dict[str, Any]]:
    """The distribution with its location scaled by ``s``, and the changed fields."""
    if isinstance(dist, BetaDist):
        mean = float(np.clip(dist.mean * s, 1e-4, 1 - 1e-4))
        change = {"mean": mean, "sd": min(dist.sd, 0.99 * np.sqrt(mean * (1 - mean)))}
    elif isinstance(dist, LogNormalDist):
        change = {"median": dist.median * s}
    elif isinstance(dist, (TriangularDist, UniformDist)):
        change = {k: getattr(dist, k) * s for k in ("low", "mode", "high") if hasattr(dist, k)}
    elif isinstance(dist, EmpiricalDist):
        change = {"quantiles": [q * s for q in dist.quantiles]}
    elif isinstance(dist, FixedDist):
        change = {"value": dist.value * s}
    else:  # pragma: no cover - every continuous kind is listed
        raise TypeError(dist)
    return dist.model_copy(update=change), change


def with_input(prog: CompiledProgram, name: str, dist) -> CompiledProgram:
    up = prog.spec.uptake
    spec = prog.spec.model_copy(update={"uptake": up.model_copy(update={"inputs": {**up.inputs, name: dist}})})  # type: ignore[union-attr]
    return CompiledProgram(spec, prog.document, prog.file, prog.jurisdictions)


def commitments(prog: CompiledProgram, n: int = SAMPLE, seed: int = 0) -> np.ndarray:
    """Whole commitment (yuan) of ``n`` sampled awards (fixed stream: common random numbers across calls)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stable_key(prog.id),))))
    apps = sample_applicants(rng, prog, np.array([[[n]]]), need_entities=False)
    ctx = prog.context(apps.inputs, n)
    committed, _ = prog.cash(prog.award_cny(ctx), ctx)
    return committed


def calibrate_amount(
    prog: CompiledProgram, hist: History, level: float
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """``(basis, overrides)`` for the program's amounts; ``(None, {})`` when the history records none."""
    rec = ~np.isnan(hist.amount_cny) & (hist.awards > 0)
    awards = float(hist.awards[rec].sum())
    if awards <= 0:
        return None, {}
    observed = float(hist.amount_cny[rec].sum()) / awards
    model = commitments(prog)
    m0, spread = float(model.mean()), float(model.std())
    basis: dict[str, Any] = {
        "observed_mean_per_award_cny": round(observed, 2),
        "model_mean_per_award_cny": round(m0, 2),
        "awards_with_amounts": int(awards),
    }
    target = scalable_input(prog)
    if target is None or m0 <= 0:
        basis["calibrated"] = "no: the award depends only on categories (mean checked, not changed)"
        return basis, {}
    tau0, tau = m0 * PRIOR_CV, max(spread, 1e-9 * m0) / np.sqrt(awards)
    prec = 1 / tau0**2 + 1 / tau**2
    post, post_sd = (m0 / tau0**2 + observed / tau**2) / prec, float(np.sqrt(1 / prec))
    z = stats.norm.ppf(0.5 + level / 2)
    name, dist = target

    def gap(x: float) -> float:
        return float(commitments(with_input(prog, name, scaled(dist, float(np.exp(x)))[0])).mean()) - post

    lo, hi = np.log(SCALE_RANGE[0]), np.log(SCALE_RANGE[1])
    g_lo, g_hi = gap(lo), gap(hi)
    x = lo if g_lo >= 0 else hi if g_hi <= 0 else optimize.brentq(gap, lo, hi, xtol=1e-6)
    s = float(np.exp(x))
    _, change = scaled(dist, s)
    achieved = gap(x) + post
    basis |= {
        "posterior_mean_per_award_cny": round(float(post), 2),
        f"interval_{round(level * 100)}_cny": [
            round(float(post - z * post_sd), 2),
            round(float(post + z * post_sd), 2),
        ],
        "input": name,
        "scale": float(f"{s:.6g}"),
        "calibrated": "yes"
        if abs(achieved / post - 1) < 0.01
        else f"partly: the formula's caps limit the mean to {achieved:,.0f} yuan",
    }
    return basis, {
        f"uptake.inputs.{name}.{k}": (float(f"{v:.6g}") if isinstance(v, float) else [float(f"{x:.6g}") for x in v])
        for k, v in change.items()
    }
