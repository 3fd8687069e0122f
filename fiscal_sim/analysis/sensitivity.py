"""Which uncertain assumptions drive the cost: a rank-correlation tornado per payer and year.

The uncertain parameters drawn once per draw are

* ``rate_factor:<program>`` — each program's uptake-rate factor (mean 1, CV
  ``uptake.count.rate_cv``): the rate itself is uncertain;
* ``shared_shock:<year>`` — the scenario's shared uptake shock of that year
  (standard normal; every exposed program's uptake moves with it).

Against each per-draw target — total grant cash (program ``ALL``) of each
payer in each fiscal year and over the horizon — this module reports the
Spearman rank correlation of every parameter (with a Fisher-z 95% interval and
p-value), its square, a first-order variance share estimated by binning the
parameter into quantile bins (the correlation ratio η², bias-corrected), its
rank within the target, and the adjusted R² of the rank regression of the
target on all parameters together: what the parameters explain jointly; the
rest is applicant-level randomness (counts, amounts, tiers, attrition).

Parameters are read from the engine's own per-draw ledgers (``rate_factor``)
and the shared-shock stream, so they are exactly the values the run used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
from scipy import stats

from fiscal_sim.analysis.common import nan_to_null, new_run_id, write_file_atomic
from fiscal_sim.engine.ledger import ALL, layout, series_values
from fiscal_sim.orchestrate.driver import drive_chunks, executor_for
from fiscal_sim.orchestrate.executors import Executor
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.engine.simulate import blocks_of
from fiscal_sim.errors import FiscalSimError
from fiscal_sim.io.parquet import manifest_header, write_json
from fiscal_sim.io.outdir import inputs_of, into_result
from fiscal_sim.scenario import Scenario
from fiscal_sim.uptake.random import shared_shock

FILE = "sensitivity.parquet"
HOSTS = ("run", "compare", "sensitivity")
"""results the file may be added to (else the folder becomes a result of kind ``sensitivity``)"""


@dataclass
class Factor:
    name: str
    kind: str
    program: str | None
    year: int | None


def factors_of(scen: Scenario) -> list[Factor]:
    """The scenario's per-draw uncertain parameters (those that actually vary)."""
    out = [
        Factor(f"rate_factor:{sp.id}", "rate_factor", sp.id, None)
        for sp in scen.programs
        if sp.prog.spec.uptake.count.rate_cv > 0
    ]  # type: ignore[union-attr]
    exposed = any(sp.prog.spec.uptake.count.shock for sp in scen.programs)  # type: ignore[union-attr]
    if scen.spec.shock.sigma > 0 and exposed:
        out += [Factor(f"shared_shock:{y}", "shared_shock", None, y) for y in scen.years]
    return out


def target_columns(scen: Scenario) -> tuple[np.ndarray, list[tuple[str, str, int | None]]]:
    """Series indices and keys (payer, period, fiscal_year) of total grant cash per payer."""
    lay = layout(scen)
    idx, keys = [], []
    for i, (prog, payer, measure, period, year) in enumerate(
        zip(lay.program, lay.payer, lay.measure, lay.period, lay.fiscal_year)
    ):
        if prog == ALL and measure == "cash":
            idx.append(i)
            keys.append((payer, period, year))
    return np.array(idx, dtype=np.int64), keys


def sample_chunk(
    scen: Scenario, factors: list[Factor], idx: np.ndarray, start: int, stop: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """Draws ``[start, stop)``: the parameters (n × F) and the targets (n × T)."""
    ledgers = simulate_chunk(scen, start, stop)
    values = series_values(scen, layout(scen), ledgers)[idx].T
    shocks: np.ndarray | None = None
    cols: list[np.ndarray] = []
    for f in factors:
        if f.kind == "rate_factor":
            cols.append(np.asarray(ledgers[str(f.program)].rate_factor))
        else:
            if shocks is None:
                Y = len(scen.years)
                shocks = np.concatenate(
                    [shared_shock(scen.spec.seed, b, nb, Y) for b, _, nb in blocks_of(scen, start, stop)]
                )
            cols.append(shocks[:, scen.years.index(int(f.year or 0))])
    X = np.column_stack(cols) if cols else np.zeros((stop - start, 0))
    return start, X, values


def sample_task(
    state: tuple[Scenario, list[Factor], np.ndarray], start: int, stop: int
) -> tuple[int, np.ndarray, np.ndarray]:
    """One chunk on an executor's worker (:func:`sample_chunk`)."""
    return sample_chunk(*state, start, stop)


def collect(
    scen: Scenario, workers: int = 1, progress: Callable[[int], None] | None = None, executor: Executor | None = None
) -> tuple[list[Factor], list[tuple[str, str, int | None]], np.ndarray, np.ndarray]:
    """Simulate the scenario; return factors, target keys and per-draw matrices X (n × F), T (n × T)."""
    factors = factors_of(scen)
    if not factors:
        raise FiscalSimError(
            f"scenario {scen.spec.name!r} draws no uncertain parameter per draw (no program has "
            "uptake.count.rate_cv > 0 and the shared shock's sigma is 0): nothing to rank"
        )
    idx, keys = target_columns(scen)
    results = [
        part
        for _, _, part in drive_chunks(
            scen, executor_for(executor, workers), sample_task, (scen, factors, idx), (), progress
        )
    ]
    return factors, keys, np.concatenate([r[1] for r in results]), np.concatenate([r[2] for r in results])


def _standard_ranks(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of each column, centred and scaled to unit variance; and which columns vary."""
    R = stats.rankdata(A, axis=0)
    R = R - R.mean(axis=0)
    sd = R.std(axis=0)
    varies = sd > 0
    R[:, varies] /= sd[varies]
    R[:, ~varies] = 0.0
    return R, varies


def correlation_ratio(x: np.ndarray, T: np.ndarray, bins: int) -> np.ndarray:
    """Bias-corrected η² of every target column on ``x`` cut into ``bins`` quantile bins (first-order share)."""
    n = x.size
    b = np.minimum((stats.rankdata(x, method="ordinal") - 1) * bins // n, bins - 1).astype(np.int64)
    counts = np.bincount(b, minlength=bins).astype(float)
    means = np.stack([np.bincount(b, weights=T[:, j], minlength=bins) for j in range(T.shape[1])], axis=1)
    means = means / np.maximum(counts, 1)[:, None]
    total = T.var(axis=0) * n
    between = (counts[:, None] * (means - T.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta2 = np.where(total > 0, between / total, np.nan)
    null = (bins - 1) / (n - 1)
    return np.clip((eta2 - null) / (1 - null), 0.0, 1.0)


def swings(X: np.ndarray, T: np.ndarray, share: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Tornado swings (F × T, yuan): the target's mean over the draws where a parameter is in its lowest
    (highest) ``share`` of draws, minus the target's mean over all draws."""
    n, F = X.shape
    k = max(1, int(round(share * n)))
    order = np.argsort(X, axis=0, kind="stable")  # ties keep draw order: deterministic
    mean = T.mean(axis=0)
    low = np.stack([T[order[:k, i]].mean(axis=0) for i in range(F)]) if F else np.zeros((0, T.shape[1]))
    high = np.stack([T[order[-k:, i]].mean(axis=0) for i in range(F)]) if F else np.zeros((0, T.shape[1]))
    return low - mean, high - mean


def rank_table(
    scen: Scenario, factors: list[Factor], keys: list[tuple[str, str, int | None]], X: np.ndarray, T: np.ndarray
) -> pa.Table:
    """The tornado table: one row per (target, parameter), targets that vary only."""
    n, F = X.shape
    ZX, fvar = _standard_ranks(X)
    ZT, tvar = _standard_ranks(T)
    rho = np.clip(ZX.T @ ZT / n, -1.0, 1.0)  # F × T
    with np.errstate(divide="ignore", invalid="ignore"):
        tstat = rho * np.sqrt((n - 2) / np.maximum(1 - rho**2, 1e-300))
    pval = 2 * stats.t.sf(np.abs(tstat), n - 2)
    half = 1.959963984540054 * np.sqrt(1.06 / max(n - 3, 1))
    z = np.arctanh(np.clip(rho, -0.999999, 0.999999))
    lo, hi = np.tanh(z - half), np.tanh(z + half)
    coef, *_ = np.linalg.lstsq(ZX[:, fvar], ZT, rcond=None)
    sse = ((ZT - ZX[:, fvar] @ coef) ** 2).sum(axis=0)
    r2 = 1 - sse / n
    k = int(fvar.sum())
    r2_adj = 1 - (1 - r2) * (n - 1) / max(n - k - 1, 1)
    bins = int(np.clip(np.sqrt(n), 2, 50))
    eta = np.stack([correlation_ratio(X[:, i], T, bins) for i in range(F)]) if F else np.zeros((0, T.shape[1]))
    swing_lo, swing_hi = swings(X, T)
    order = np.argsort(-np.abs(rho), axis=0, kind="stable")
    rank = np.empty_like(order)
    rank[order, np.arange(T.shape[1])[None, :]] = np.arange(1, F + 1)[:, None]
    cols: dict[str, list] = {
        c: []
        for c in (
            "payer",
            "period",
            "fiscal_year",
            "factor",
            "factor_kind",
            "program",
            "factor_year",
            "spearman_rho",
            "abs_rho",
            "rho_ci_lo",
            "rho_ci_hi",
            "p_value",
            "rho_sq",
            "first_order_index",
            "rank",
            "target_rank_r2",
            "target_mean_cny",
            "target_sd_cny",
            "factor_mean",
            "factor_sd",
            "swing_low_cny",
            "swing_high_cny",
        )
    }
    tmean, tsd = T.mean(axis=0), T.std(axis=0, ddof=1)
    fmean, fsd = X.mean(axis=0), X.std(axis=0, ddof=1)
    for j, (payer, period, year) in enumerate(keys):
        if not tvar[j]:
            continue
        for i, f in enumerate(factors):
            row = (
                payer,
                period,
                year,
                f.name,
                f.kind,
                f.program,
                f.year,
                rho[i, j],
                abs(rho[i, j]),
                lo[i, j],
                hi[i, j],
                pval[i, j],
                rho[i, j] ** 2,
                eta[i, j],
                rank[i, j],
                r2_adj[j],
                tmean[j],
                tsd[j],
                fmean[i],
                fsd[i],
                swing_lo[i, j],
                swing_hi[i, j],
            )
            for c, v in zip(cols, row):
                cols[c].append(v)
    m = len(cols["payer"])
    return pa.table(
        {
            "scenario": [scen.spec.name] * m,
            "payer": cols["payer"],
            "measure": ["cash"] * m,
            "period": cols["period"],
            "fiscal_year": pa.array(cols["fiscal_year"], pa.int16()),
            "factor": cols["factor"],
            "factor_kind": cols["factor_kind"],
            "program": cols["program"],
            "factor_year": pa.array(cols["factor_year"], pa.int16()),
            **{
                c: nan_to_null(np.array(cols[c], float))
                for c in ("spearman_rho", "abs_rho", "rho_ci_lo", "rho_ci_hi", "p_value", "rho_sq", "first_order_index")
            },
            "rank": pa.array(cols["rank"], pa.int16()),
            **{
                c: nan_to_null(np.array(cols[c], float))
                for c in (
                    "target_rank_r2",
                    "target_mean_cny",
                    "target_sd_cny",
                    "factor_mean",
                    "factor_sd",
                    "swing_low_cny",
                    "swing_high_cny",
                )
            },
            "draws": pa.array(np.full(m, n, dtype=np.int32)),
        }
    )


@dataclass
class SensitivityResult:
    path: Path
    table: pa.Table


def sensitivity(
    scen: Scenario,
    out_dir: Path,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> SensitivityResult:
    """Simulate ``scen`` and write ``out_dir/sensitivity.parquet`` (the file is replaced atomically).

    ``out_dir`` may be the scenario's run folder: the report then shows the tornado with the run.
    """
    with into_result(out_dir, "sensitivity", HOSTS, inputs_of(scen)) as folder:
        factors, keys, X, T = collect(scen, workers, progress, executor)
        table = rank_table(scen, factors, keys, X, T)
        run_id = new_run_id()
        write_file_atomic(
            table,
            folder / FILE,
            run_id,
            scenario=scen.spec.name,
            scenario_sha256=scen.sha256,
            seed=str(scen.spec.seed),
            draws=str(scen.spec.draws),
        )
        if not (folder / "manifest.json").exists():
            write_json(
                {
                    **manifest_header(run_id, None, kind="sensitivity"),
                    "scenario": {"name": scen.spec.name, "path": scen.path, "sha256": scen.sha256},
                    "seed_entropy": scen.spec.seed,
                    "draws": scen.spec.draws,
                },
                folder / "manifest.json",
            )
    return SensitivityResult(Path(out_dir) / FILE, table)


def label(row: dict, titles: dict[str, str], lang: str = "zh") -> str:
    """A parameter in the planner's words: the program's title for its uptake-rate factor, the year for the
    shared shock (never the internal ``rate_factor:…`` / ``shared_shock:…`` code)."""
    zh = lang == "zh"
    if row["factor_kind"] == "rate_factor":
        title = titles.get(row["program"], row["program"])
        return f"{title} 申报数量" if zh else f"uptake of {title}"
    if row["factor_kind"] == "shared_shock":
        return f"{row['factor_year']}年共同冲击（各项目同向）" if zh else f"shared uptake shock of {row['factor_year']}"
    return row["factor"]


def top(table: pa.Table, payer: str = ALL, period: str = "horizon", year: int | None = None, k: int = 10) -> list[dict]:
    """The ``k`` parameters with the largest |ρ| for one target, largest first."""
    rows = [
        r
        for r in table.to_pylist()
        if r["payer"] == payer and r["period"] == period and (period == "horizon" or r["fiscal_year"] == year)
    ]
    return sorted(rows, key=lambda r: r["rank"])[:k]


def record_in_manifest(folder: Path, result: SensitivityResult, k: int = 5) -> None:
    """Add the sensitivity's file and top parameters (all payers, horizon) to ``folder/manifest.json``."""
    import json

    from fiscal_sim.io.parquet import replace_text

    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return
    m = json.loads(path.read_text(encoding="utf-8"))
    rows = top(result.table, ALL, "horizon", k=k)
    m["sensitivity"] = {
        "file": FILE,
        "draws": rows[0]["draws"] if rows else None,
        "top_all_payers_horizon": [
            {
                "factor": r["factor"],
                "spearman_rho": r["spearman_rho"],
                "swing_low_cny": r["swing_low_cny"],
                "swing_high_cny": r["swing_high_cny"],
            }
            for r in rows
        ],
    }
    replace_text(path, json.dumps(m, ensure_ascii=False, indent=2, default=str) + "\n")
