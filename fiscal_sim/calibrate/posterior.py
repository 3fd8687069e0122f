"""Conjugate updates of each program's uptake prior from its award history.

The engine draws a program's expected count in (jurisdiction j, year t) as
``λ_jt · θ`` with ``λ`` from the uptake spec and ``θ ~ Gamma(mean 1, CV rate_cv)``
once per draw (for a binomial count, θ scales the take-up rate), then a shared
lognormal shock per year (log-sd σ) and, for ``negbin``, a Gamma(mean 1, CV d)
factor per jurisdiction and year. Calibration updates θ:

- **gamma–Poisson** (``poisson``, no shock): θ | history ~ Gamma(a₀ + Σ n_t, b₀ + Σ E_t), exact;
- **gamma–negative binomial** (``negbin`` and/or the shock): the same update with each year weighted by
  ``w_t = 1 / (1 + θ̂ E_t κ_t)``, ``κ_t = s² + d² H_t (1 + s²)`` (s² = e^{σ²} − 1, H_t the Herfindahl of the
  year's expected counts over the observed jurisdictions), iterated to its fixed point. The weighted sums are
  the negative binomial's score equation and Fisher information, so the gamma posterior has the right mean
  and spread; with d = σ = 0 it is the exact update;
- **beta–binomial** (``binomial``): take-up q ~ Beta (moment-matched to take_up, take_up·rate_cv), updated
  with awards and non-awards of the pool, weighted for the shock the same way.

``n_t`` are the year's awards and ``E_t`` the spec's expected count for the observed cells of that year.
A prior with ``rate_cv: 0`` is certain and is kept. Growth is estimated (a weighted Poisson regression of
log counts on the year) only with at least :data:`MIN_TREND_YEARS` years, and adopted only when its 90%
interval excludes the prior's growth; the extrapolation's uncertainty then widens the level's CV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from fiscal_sim.calibrate.amounts import calibrate_amount
from fiscal_sim.calibrate.history import ALL, History
from fiscal_sim.catalogue.loader import CompiledProgram
from fiscal_sim.errors import InputError, Problem
from fiscal_sim.scenario import Scenario, SimProgram, expected_counts

LEVEL = 0.9
"""probability of the reported posterior intervals"""
MIN_TREND_YEARS = 5
"""years of history needed before growth is estimated"""
ALLOCATION_PRIOR_AWARDS = 20.0
"""assumption: the catalogue's split of applicants across jurisdictions weighs as much as 20 observed awards"""


@dataclass
class Evidence:
    """A program's history per year, against the spec's expected counts for the same cells."""

    years: np.ndarray
    awards: np.ndarray
    expected: np.ndarray
    """E_t: expected awards of the observed cells under the prior (θ = 1), with the spec's growth"""
    herfindahl: np.ndarray
    """H_t = Σ λ_jt² / (Σ λ_jt)² over the observed cells"""
    pool: np.ndarray
    """binomial programs: the pool of the observed cells (λ / take_up); NaN otherwise"""


@dataclass
class Calibration:
    """One program's prior, evidence and posterior; ``overrides`` are scenario override paths → values."""

    program: str
    model: str
    parameter: str
    prior_mean: float
    prior_cv: float
    post_mean: float
    post_cv: float
    interval: tuple[float, float]
    years: list[int] = field(default_factory=list)
    awards: float = 0.0
    growth_prior: float = 0.0
    growth: dict[str, Any] | None = None
    allocation: dict[str, Any] | None = None
    """the split across jurisdictions' basis, where the history is complete by jurisdiction"""
    amount: dict[str, Any] | None = None
    """the amounts' basis where the history records amounts (:mod:`fiscal_sim.calibrate.amounts`)"""
    overrides: dict[str, Any] = field(default_factory=dict)

    def basis(self) -> dict[str, Any]:
        """The calibrated value's basis, for the overlay file."""
        out: dict[str, Any] = {
            "model": self.model,
            "parameter": self.parameter,
            "prior": {"mean": _r(self.prior_mean), "rate_cv": _r(self.prior_cv)},
            "years_observed": len(self.years),
            "years": f"{min(self.years)}–{max(self.years)}" if self.years else None,
            "awards_observed": int(self.awards),
            "posterior": {
                "mean": _r(self.post_mean),
                "rate_cv": _r(self.post_cv),
                f"interval_{round(LEVEL * 100)}": [_r(self.interval[0]), _r(self.interval[1])],
            },
        }
        if self.growth is not None:
            out["growth"] = self.growth
        if self.allocation is not None:
            out["allocation"] = self.allocation
        if self.amount is not None:
            out["amount"] = self.amount
        return out

    def note(self) -> str:
        lo, hi = self.interval
        if not self.years:
            return f"no history: prior kept ({self.parameter} {self.prior_mean:.4g}, rate_cv {self.prior_cv:.3g})"
        g = ""
        if self.growth and self.growth.get("adopted"):
            g = f"; growth {self.growth['estimate']:+.1%} a year estimated from the history"
        if self.amount and self.amount.get("scale"):
            g += (
                f"; amounts: mean commitment per award {self.amount['model_mean_per_award_cny'] / 1e4:,.4g}万元 → "
                f"{self.amount['posterior_mean_per_award_cny'] / 1e4:,.4g}万元 (input {self.amount['input']} × "
                f"{self.amount['scale']:.3g})"
            )
        return (
            f"calibrated ({self.model}) on {len(self.years)} years of awards {min(self.years)}–{max(self.years)} "
            f"({int(self.awards)} awards): {self.parameter} {self.prior_mean:.4g} (prior, rate_cv {self.prior_cv:.3g}) → "
            f"{self.post_mean:.4g}, {round(LEVEL * 100)}% interval {lo:.4g}–{hi:.4g}{g}"
        )


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def with_count(prog: CompiledProgram, **changes: Any) -> CompiledProgram:
    """A copy of the program with its uptake count's fields changed (no re-validation: values come from here)."""
    up = prog.spec.uptake
    count = up.count.model_copy(update=changes)  # type: ignore[union-attr]
    spec = prog.spec.model_copy(update={"uptake": up.model_copy(update={"count": count})})  # type: ignore[union-attr]
    return CompiledProgram(spec, prog.document, prog.file, prog.jurisdictions)


def evidence(sp: SimProgram, hist: History, scen: Scenario, growth: float | None = None) -> Evidence:
    """Aggregate a program's history by year against its spec's expected counts (growth based at the horizon start)."""
    c = sp.prog.spec.uptake.count  # type: ignore[union-attr]
    base = c.base_year or scen.spec.horizon.start
    prog = with_count(sp.prog, base_year=base, growth=c.growth if growth is None else growth)
    years = hist.years
    if not years:
        return Evidence(*(np.zeros(0) for _ in range(5)))
    lam = expected_counts(prog, scen.geography, years)
    problems = []
    n, E, sq = (np.zeros(len(years)) for _ in range(3))
    for k in range(len(hist)):
        t = years.index(int(hist.year[k]))
        cells = slice(None) if hist.jurisdiction[k] == ALL else [sp.prog.jurisdictions.index(hist.jurisdiction[k])]
        e = lam[cells, t]
        if e.sum() == 0 and hist.awards[k] > 0:
            problems.append(
                Problem(
                    hist.path,
                    sp.id,
                    f"year {hist.year[k]}, jurisdiction {hist.jurisdiction[k]}",
                    f"{hist.awards[k]:g} awards where the program expects none (not in force, or no allocation there)",
                )
            )
        n[t] += hist.awards[k]
        E[t] += e.sum()
        sq[t] += (e**2).sum()
    if problems:
        raise InputError(problems)
    keep = E > 0
    H = np.divide(sq, E**2, out=np.ones_like(E), where=keep)
    if c.dist == "binomial":
        P = E / c.take_up  # type: ignore[operator]
        over = keep & (n > np.rint(P))
        if over.any():
            t = int(np.flatnonzero(over)[0])
            raise InputError(
                [
                    Problem(
                        hist.path,
                        sp.id,
                        f"year {years[t]}",
                        f"{n[t]:g} awards exceed the pool of {np.rint(P[t]):g} (uptake.count.pool × allocation)",
                    )
                ]
            )
    else:
        P = np.full(len(years), np.nan)
    return Evidence(np.array(years)[keep], n[keep], E[keep], H[keep], P[keep])


def shock_var(sp: SimProgram, scen: Scenario) -> float:
    """s²: the variance of the yearly shared-shock factor this program is exposed to."""
    c = sp.prog.spec.uptake.count  # type: ignore[union-attr]
    sigma = scen.spec.shock.sigma if c.shock else 0.0
    return float(np.expm1(sigma**2))


def gamma_update(
    n: np.ndarray, E: np.ndarray, kappa: np.ndarray, a0: float, b0: float, iters: int = 100
) -> tuple[Any, Any]:
    """Gamma(a₀, b₀) prior on θ, counts n_t ~ NB(mean θE_t, var θE_t(1 + θE_tκ_t)) → Gamma(a, b) posterior.

    Years run along the last axis; leading axes are independent histories (vectorised).
    """
    n, E, kappa = np.broadcast_arrays(*(np.asarray(v, float) for v in (n, E, kappa)))
    theta = np.full(n.shape[:-1], a0 / b0)
    for _ in range(iters):
        w = 1.0 / (1.0 + theta[..., None] * E * kappa)
        a, b = a0 + (w * n).sum(axis=-1), b0 + (w * E).sum(axis=-1)
        done = np.all(np.abs(a / b - theta) <= 1e-12 * theta)
        theta = a / b
        if done:
            break
    return a, b


def beta_update(
    n: np.ndarray, pool: np.ndarray, s2: float, alpha0: float, beta0: float, iters: int = 100
) -> tuple[Any, Any]:
    """Beta(α₀, β₀) prior on take-up q, awards n_t of pools P_t (shock variance s²) → Beta(α, β) (vectorised)."""
    n, pool = np.broadcast_arrays(np.asarray(n, float), np.asarray(pool, float))
    q = np.full(n.shape[:-1], alpha0 / (alpha0 + beta0))
    for _ in range(iters):
        w = 1.0 / (1.0 + pool * (q * s2 / np.maximum(1.0 - q, 1e-9))[..., None])
        alpha, beta = alpha0 + (w * n).sum(axis=-1), beta0 + (w * (pool - n)).sum(axis=-1)
        done = np.all(np.abs(alpha / (alpha + beta) - q) <= 1e-12 * q)
        q = alpha / (alpha + beta)
        if done:
            break
    return alpha, beta


MAX_TREND = float(np.log(2.0))
"""|β| beyond log 2 (halving or doubling a year) is no usable trend; the fit stops there"""


def trend(ev: Evidence, kappa: np.ndarray, base: int, iters: int = 50) -> tuple[float, float, float] | None:
    """Log-linear trend of awards on the year: ``(β, se(β), weighted mean year)``; None if it cannot be fitted.

    Weighted Poisson regression (IRLS) with the negative binomial's weights ``m / (1 + m κ)``;
    ``ev.expected`` must be computed without growth. The fit is None — on every machine alike — when the
    likelihood has no finite maximum (all awards in the first or last year), when an iterate leaves
    ``|β| ≤ 2·MAX_TREND`` (a diverging fit stops long before floating point decides its fate), or when it
    has not converged after ``iters`` steps.
    """
    if ev.awards.sum() <= 0 or np.unique(ev.years).size < 2:
        return None
    seen = np.unique(ev.years[ev.awards > 0])
    if seen.size == 1 and seen[0] in (ev.years.min(), ev.years.max()):
        return None  # every award at one end of the years: the slope's maximum likelihood is at ±∞
    x = ev.years - float(base)
    X = np.column_stack([np.ones_like(x), x])
    beta = np.array([np.log(ev.awards.sum() / ev.expected.sum()), 0.0])
    for _ in range(iters):
        m = ev.expected * np.exp(X @ beta)
        W = m / (1.0 + m * kappa)
        z = X @ beta + (ev.awards - m) / m
        info = X.T @ (W[:, None] * X)
        try:
            new = np.linalg.solve(info, X.T @ (W * z))
        except np.linalg.LinAlgError:
            return None
        if not (np.all(np.isfinite(new)) and abs(new[1]) <= 2 * MAX_TREND):
            return None
        done = np.allclose(new, beta, rtol=0, atol=1e-10)
        beta = new
        if done:
            break
    else:
        return None
    m = ev.expected * np.exp(X @ beta)
    W = m / (1.0 + m * kappa)
    cov = np.linalg.inv(X.T @ (W[:, None] * X))
    if not np.isfinite(cov[1, 1]):
        return None
    return float(beta[1]), float(np.sqrt(cov[1, 1])), float(base + (W @ x) / W.sum())


def calibrate_program(sp: SimProgram, hist: History, scen: Scenario, level: float = LEVEL) -> Calibration:
    """Update one program's uptake prior with its history (an empty history returns the prior unchanged)."""
    c = sp.prog.spec.uptake.count  # type: ignore[union-attr]
    binomial = c.dist == "binomial"
    prior_mean = float(c.take_up if binomial else (c.mean if c.mean is not None else 1.0))  # type: ignore[arg-type]
    parameter = (
        "uptake.count.take_up"
        if binomial
        else "uptake.count.mean"
        if c.mean is not None
        else "uptake.count (scale of by_year / by_jurisdiction)"
    )
    cv = float(c.rate_cv)
    q = (1 - level) / 2
    ev = evidence(sp, hist, scen)
    cal = Calibration(
        sp.id,
        "prior kept",
        parameter,
        prior_mean,
        cv,
        prior_mean,
        cv,
        (prior_mean, prior_mean),
        [int(y) for y in ev.years],
        float(ev.awards.sum()),
        float(c.growth),
    )
    if cv > 0:
        g = stats.gamma(1 / cv**2, scale=prior_mean * cv**2)
        cal.interval = (float(g.ppf(q)), float(g.ppf(1 - q)))
    if ev.years.size == 0 or cv <= 0:
        if ev.years.size and cv <= 0:
            cal.model = "prior kept (rate_cv 0: the prior is certain)"
        return cal
    s2 = shock_var(sp, scen)
    if binomial:
        sd = min(prior_mean * cv, 0.999 * np.sqrt(prior_mean * (1 - prior_mean)))
        k = prior_mean * (1 - prior_mean) / sd**2 - 1
        alpha, beta = (float(v) for v in beta_update(ev.awards, ev.pool, s2, prior_mean * k, (1 - prior_mean) * k))
        post = stats.beta(alpha, beta)
        cal.model, cal.post_mean = "beta-binomial", float(post.mean())
        cal.post_cv = float(post.std() / post.mean())
        cal.interval = (float(post.ppf(q)), float(post.ppf(1 - q)))
        cal.overrides = {"uptake.count.take_up": _r(cal.post_mean), "uptake.count.rate_cv": _r(cal.post_cv)}
        return cal
    kappa = s2 + c.dispersion**2 * ev.herfindahl * (1 + s2)
    base = c.base_year or scen.spec.horizon.start
    extra_var, growth = 0.0, None
    if c.mean is not None and np.unique(ev.years).size >= MIN_TREND_YEARS:
        fit = trend(evidence(sp, hist, scen, growth=0.0), kappa, base)
        unusable = {
            "prior": c.growth,
            "estimate": None,
            "adopted": False,
            "note": "no usable trend in this history (none fits, or outside −50%…+100% a year): prior kept",
        }
        if fit is None:
            cal.growth = unusable
        else:
            b, se, centre = fit
            z = stats.norm.ppf(1 - q)
            with np.errstate(over="ignore"):
                lo, hi = np.expm1(b - z * se), np.expm1(b + z * se)
            if not (np.isfinite(hi) and -0.5 <= np.expm1(b) <= 1.0):
                cal.growth = unusable
            else:
                adopted = not lo <= c.growth <= hi
                cal.growth = {
                    "prior": c.growth,
                    "estimate": _r(np.expm1(b)),
                    f"interval_{round(level * 100)}": [_r(lo), _r(hi)],
                    "adopted": bool(adopted),
                }
                if adopted:
                    growth = float(np.expm1(b))
                    extra_var = se**2 * (base - centre) ** 2
                    ev = evidence(sp, hist, scen, growth=growth)
    a0 = 1 / cv**2
    a, b_ = gamma_update(ev.awards, ev.expected, kappa, a0, a0)
    a, theta = float(a), float(a / b_)
    post_cv = float(np.sqrt(1 / a + extra_var))
    shape = 1 / post_cv**2
    post = stats.gamma(shape, scale=theta / shape)
    cal.model = "gamma-negbin" if (c.dispersion > 0 or s2 > 0) else "gamma-poisson"
    cal.post_mean, cal.post_cv = prior_mean * theta, post_cv
    cal.interval = (prior_mean * float(post.ppf(q)), prior_mean * float(post.ppf(1 - q)))
    over: dict[str, Any] = {"uptake.count.rate_cv": _r(post_cv)}
    if c.mean is not None:
        over["uptake.count.mean"] = _r(prior_mean * theta)
    if c.by_year is not None:
        over["uptake.count.by_year"] = {y: _r(v * theta) for y, v in c.by_year.items()}
    if c.by_jurisdiction is not None:
        over["uptake.count.by_jurisdiction"] = {
            j: ({y: _r(x * theta) for y, x in v.items()} if isinstance(v, dict) else _r(v * theta))
            for j, v in c.by_jurisdiction.items()
        }
    if growth is not None:
        over["uptake.count.growth"] = _r(growth)
    if (growth is not None or c.growth) and c.base_year is None:
        over["uptake.count.base_year"] = base  # growth stays based where it was calibrated
    cal.overrides = over
    return cal


def calibrate_allocation(sp: SimProgram, hist: History, scen: Scenario) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Dirichlet–multinomial update of the split of applicants across jurisdictions.

    Prior Dirichlet(K·a) with a the spec's allocation (normalised) and K = :data:`ALLOCATION_PRIOR_AWARDS`;
    the awards by jurisdiction update it. Only where every observed year has a row for every jurisdiction of
    the program (no ``ALL`` rows), and not for counts given by jurisdiction.
    """
    prog = sp.prog
    up = prog.spec.uptake
    J = prog.jurisdictions
    if up is None or up.count.by_jurisdiction is not None or len(J) < 2 or not len(hist):
        return None, {}
    for y in hist.years:
        if sorted(hist.jurisdiction[hist.year == y].tolist()) != sorted(J):
            return None, {}
    geo = scen.geography
    a = geo.allocation(up.allocation, J)  # the prior shares: named weights, the program's table, or the default
    n = np.array([hist.awards[hist.jurisdiction == j].sum() for j in J])
    alpha = ALLOCATION_PRIOR_AWARDS * a + n
    post = alpha / alpha.sum()
    basis = {
        "prior_shares": {j: _r(x) for j, x in zip(J, a)},
        "awards": {j: int(x) for j, x in zip(J, n)},
        "posterior_shares": {j: _r(x) for j, x in zip(J, post)},
        "prior_weight_awards": ALLOCATION_PRIOR_AWARDS,
    }
    return basis, {"uptake.allocation": {j: _r(x) for j, x in zip(J, post)}}


def calibrate(hist: History, scen: Scenario, level: float = LEVEL) -> list[Calibration]:
    """Calibrate every simulated program of the scenario (those without history keep their prior)."""
    simulated = {sp.id: sp for sp in scen.programs}
    missing = [p for p in hist.programs if p not in simulated]
    if missing:
        raise InputError(
            [
                Problem(
                    hist.path,
                    p,
                    "program",
                    f"has history but is not simulated in scenario "
                    f"{scen.spec.name!r} (excluded, unpriced or without uptake)",
                )
                for p in missing
            ]
        )
    out = []
    for sp in scen.programs:
        h = hist.of(sp.id)
        cal = calibrate_program(sp, h, scen, level)
        cal.allocation, changes = calibrate_allocation(sp, h, scen)
        cal.overrides |= changes
        cal.amount, changes = calibrate_amount(sp.prog, h, level)
        cal.overrides |= changes
        out.append(cal)
    return out
