"""Draw uptake for one program and one block of draws: counts, applicant inputs, attrition.

Everything is vectorised over the block's draws; the order in which a block's
stream is consumed is fixed (rate factor, own shock, overdispersion, counts,
then inputs in declared order, entities, attrition), so results depend only on
the seed, the block and the program.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fiscal_sim.units import cny_per
from fiscal_sim.uptake.random import gamma_mean_one
from fiscal_sim.uptake.spec import (
    BetaDist,
    CategoricalDist,
    EmpiricalDist,
    FixedDist,
    LogNormalDist,
    TriangularDist,
    UniformDist,
)

if TYPE_CHECKING:
    from fiscal_sim.catalogue.loader import CompiledProgram


def count_factors(
    rng: np.random.Generator, prog: CompiledProgram, n: int, shock_z: np.ndarray, sigma: float, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Factors on expected counts: ``(rate, factor)``.

    ``rate`` (n) is the parameter-uncertainty draw (the uptake rate itself is
    uncertain); ``factor`` (n × Y) is rate × the program's shock exposure.
    """
    c = prog.spec.uptake.count  # type: ignore[union-attr]
    rate = gamma_mean_one(rng, c.rate_cv, n)
    f = rate[:, None] * np.ones((1, shock_z.shape[1]))
    own = rng.standard_normal(shock_z.shape)
    if sigma > 0 and c.shock:
        z = np.sqrt(rho) * shock_z + np.sqrt(1.0 - rho) * own
        f = f * np.exp(sigma * z - 0.5 * sigma**2)
    return rate, f


def sample_counts(rng: np.random.Generator, prog: CompiledProgram, lam: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Applicants per (draw, jurisdiction, year) given expected counts ``lam`` (J × Y) and draw factors (n × Y)."""
    c = prog.spec.uptake.count  # type: ignore[union-attr]
    n = factors.shape[0]
    if c.dist == "binomial":
        pool = np.rint(lam / c.take_up)  # type: ignore[operator]
        p = np.clip(c.take_up * factors, 0.0, 1.0)[:, None, :]  # type: ignore[operator]
        return rng.binomial(
            np.broadcast_to(pool, (n,) + lam.shape).astype(np.int64), np.broadcast_to(p, (n,) + lam.shape)
        )
    mean = lam[None, :, :] * factors[:, None, :]
    if c.dist == "negbin":
        mean = mean * gamma_mean_one(rng, c.dispersion, mean.shape)
    return rng.poisson(mean)


def category_probs(rng: np.random.Generator, dist: CategoricalDist, values: list[str], n: int) -> np.ndarray:
    """Mix of categories per draw (n × K): fixed, or Dirichlet around ``probs`` with ``concentration``."""
    p = np.array([dist.probs.get(v, 0.0) for v in values])
    if dist.concentration is None:
        return np.broadcast_to(p, (n, len(values)))
    alpha = np.where(p > 0, p * dist.concentration, 0.0)
    out = np.zeros((n, len(values)))
    live = alpha > 0
    out[:, live] = rng.dirichlet(alpha[live], n)
    return out


def draw_categories(rng: np.random.Generator, probs: np.ndarray, draw_idx: np.ndarray) -> np.ndarray:
    """One category code per applicant from its draw's mix (inverse CDF on a uniform)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(draw_idx.size)
    codes = (u[:, None] * cum[:, -1:][draw_idx] >= cum[draw_idx]).sum(axis=1)
    return np.minimum(codes, probs.shape[1] - 1)


def draw_values(rng: np.random.Generator, dist, size: int) -> np.ndarray:
    """Per-applicant values from a continuous distribution (in the distribution's own unit)."""
    if isinstance(dist, FixedDist):
        return np.full(size, dist.value)
    if isinstance(dist, LogNormalDist):
        x = dist.median * np.exp(dist.sigma * rng.standard_normal(size))
        return np.minimum(x, dist.max) if dist.max is not None else x
    if isinstance(dist, TriangularDist):
        return rng.triangular(dist.low, dist.mode, dist.high, size)
    if isinstance(dist, UniformDist):
        return rng.uniform(dist.low, dist.high, size)
    if isinstance(dist, EmpiricalDist):
        q = np.asarray(dist.quantiles)
        return np.interp(rng.random(size), np.linspace(0, 1, q.size), q)
    if isinstance(dist, BetaDist):
        k = dist.mean * (1 - dist.mean) / dist.sd**2 - 1
        return rng.beta(dist.mean * k, (1 - dist.mean) * k, size)
    raise TypeError(f"not a continuous distribution: {dist!r}")


def input_scale(prog: CompiledProgram, name: str, dist) -> float:
    """Yuan per sampled unit for money inputs, 1 otherwise."""
    spec = prog.spec.inputs[name]
    if spec.type != "money":
        return 1.0
    return cny_per(getattr(dist, "unit", None) or spec.unit or prog.spec.unit)


@dataclass
class Applicants:
    """Per-applicant arrays of one block: the (draw, jurisdiction, year) cell, inputs, entity, years stayed.

    ``cell`` indexes the block's count array (n × J × Y) flattened; draw,
    jurisdiction and year are derived from it on demand.
    """

    cell: np.ndarray
    shape: tuple[int, int, int]
    inputs: dict[str, np.ndarray]
    entity: np.ndarray | None
    stay: np.ndarray | None

    @property
    def draw(self) -> np.ndarray:
        return self.cell // (self.shape[1] * self.shape[2])

    @property
    def jur(self) -> np.ndarray:
        return (self.cell // self.shape[2]) % self.shape[1]

    @property
    def year(self) -> np.ndarray:
        return self.cell % self.shape[2]


def sample_applicants(
    rng: np.random.Generator, prog: CompiledProgram, counts: np.ndarray, need_entities: bool
) -> Applicants:
    """Expand counts (n × J × Y) into applicants and draw their inputs, entities and attrition."""
    n, J, Y = counts.shape
    flat = counts.reshape(-1)
    cell = np.repeat(np.arange(flat.size), flat)
    up = prog.spec.uptake
    inputs: dict[str, np.ndarray] = {}
    for name, spec in prog.spec.inputs.items():
        dist = up.inputs.get(name) if up else None  # type: ignore[union-attr]
        if dist is None:
            default = spec.default
            inputs[name] = (
                np.full(cell.size, spec.values.index(default))
                if spec.type == "category"  # type: ignore[union-attr,arg-type]
                else np.full(cell.size, float(default) * input_scale(prog, name, None))
            )  # type: ignore[arg-type]
        elif isinstance(dist, CategoricalDist):
            probs = category_probs(rng, dist, spec.values, n)  # type: ignore[arg-type]
            inputs[name] = draw_categories(rng, probs, cell // (J * Y))
        else:
            inputs[name] = draw_values(rng, dist, cell.size) * input_scale(prog, name, dist)
    entity = None
    if need_entities:
        entity = rng.integers(0, up.entities or 2**31 - 1, cell.size) if up.entities else np.arange(cell.size)  # type: ignore[union-attr]
    stay = rng.geometric(up.attrition, cell.size) if up and up.attrition > 0 else None
    return Applicants(cell, (n, J, Y), inputs, entity, stay)
