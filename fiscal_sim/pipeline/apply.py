"""Run the pipelines over a chunk of draws: the engine's awards in, the model per draw, the paid cash out.

The engine simulates a pipeline's programs per applicant and keeps their
awards; this module gives each applicant its application instant, review time
and approval from the pipeline's own random stream, and runs
:func:`fiscal_sim.pipeline.model.run_draw` draw by draw (:func:`run_pipeline`);
:mod:`fiscal_sim.pipeline.measures` then turns the outcomes into money by
year. Random numbers come per block of draws from ``stream(seed, block,
"pipeline:<name>:<program>")``, so results do not depend on chunking or workers.
"""

from __future__ import annotations

import numpy as np

from fiscal_sim.engine.simulate import Awards, ProgramLedger, blocks_of, simulate_program
from fiscal_sim.pipeline.chunk import ChunkApplicants, ChunkOutcome
from fiscal_sim.pipeline.model import Outcome, Settings, run_draw
from fiscal_sim.pipeline.plan import Plan
from fiscal_sim.scenario import Scenario
from fiscal_sim.uptake.random import shared_shock, stream
from fiscal_sim.uptake.sample import draw_values


def awards_of(scen: Scenario, ledgers: dict[str, ProgramLedger], pid: str, start: int, stop: int) -> Awards:
    """The program's awards for the chunk: kept by the engine, or simulated again (same seed, same awards)."""
    L = ledgers[pid]
    if L.awards is not None:
        return L.awards
    sp = next(p for p in scen.programs if p.id == pid)
    Y = len(scen.years)
    shocks = {b: shared_shock(scen.spec.seed, b, nb, Y) for b, _, nb in blocks_of(scen, start, stop)}
    return simulate_program(scen, sp, start, stop, shocks, keep_awards=True).awards  # type: ignore[return-value]


def gather(scen: Scenario, plan: Plan, awards: list[Awards], start: int, stop: int) -> ChunkApplicants:
    """Application instants, review times and approvals for every award, from per-block streams."""
    cal, spec = plan.cal, plan.spec
    L = max([a.cash_by_offset_cny.shape[1] for a in awards] + [1])
    cols: dict[str, list[np.ndarray]] = {
        c: [] for c in ("draw", "program", "jur", "year", "arrival", "review", "approved", "cash")
    }
    for k, (pid, aw) in enumerate(zip(plan.programs, awards)):
        order = np.argsort(aw.draw, kind="stable")
        draw = aw.draw[order]
        u = np.empty((draw.size, 3))
        review = np.empty(draw.size)
        for b, first, nb in blocks_of(scen, start, stop):
            lo, hi = np.searchsorted(draw, [first, first + nb])
            rng = stream(scen.spec.seed, b, f"pipeline:{plan.name}:{pid}")
            u[lo:hi] = rng.random((hi - lo, 3))
            review[lo:hi] = draw_values(rng, spec.review.days, int(hi - lo))
        year = aw.year[order]
        w = np.minimum(np.searchsorted(cal.win_cum, u[:, 0] * cal.win_cum[-1], side="right"), cal.win_cum.size - 1)
        w_start, w_end = cal.win_start[year, w], cal.win_end[year, w]
        cash = np.zeros((draw.size, L))
        cash[:, : aw.cash_by_offset_cny.shape[1]] = aw.cash_by_offset_cny[order]
        for name, v in (
            ("draw", draw),
            ("program", np.full(draw.size, k)),
            ("jur", aw.jur[order]),
            ("year", year),
            ("arrival", np.minimum(w_start + u[:, 1] * (w_end - w_start), np.nextafter(w_end, -np.inf))),
            ("review", np.maximum(review, 0.0)),
            ("approved", u[:, 2] < spec.approval_rate),
            ("cash", cash),
        ):
            cols[name].append(v)
    c = {name: np.concatenate(v) for name, v in cols.items()}
    order = np.argsort(c["draw"], kind="stable")
    c = {name: v[order] for name, v in c.items()}
    program, jur = c["program"].astype(np.int64), c["jur"].astype(np.int64)
    return ChunkApplicants(
        c["draw"],
        program,
        jur,
        c["year"].astype(np.int64),
        c["arrival"],
        c["review"],
        c["approved"],
        plan.rank[program],
        c["cash"],
        plan.share[program, jur],
        np.searchsorted(c["draw"], np.arange(start, stop + 1)),
    )


def settings(plan: Plan) -> Settings:
    cal = plan.cal
    return Settings(
        plan.spec.review.reviewers,
        plan.spec.lag_batches,
        cal.batch_time,
        cal.batch_year,
        cal.first_batch,
        plan.appropriation,
    )


def run_draws(ch: ChunkApplicants, s: Settings) -> ChunkOutcome:
    """The model for every draw of the chunk, one simpy environment per draw."""
    outs: list[Outcome] = [run_draw(ch.draw_slice(d), s) for d in range(ch.bounds.size - 1)]
    L = ch.cash.shape[1]

    def cat(f: str, shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate([getattr(o, f) for o in outs]) if outs else np.zeros(shape)

    return ChunkOutcome(
        cat("decided", (0,)),
        cat("due", (0, L)).astype(np.int64),
        cat("paid", (0, L)).astype(np.int64),
        np.stack([o.exhausted for o in outs]),
        np.stack([o.left for o in outs]),
        sum(o.events for o in outs),
    )


def run_pipeline(
    scen: Scenario, plan: Plan, ledgers: dict[str, ProgramLedger], start: int, stop: int
) -> tuple[ChunkApplicants, ChunkOutcome]:
    """One pipeline's model for draws ``[start, stop)``: its applicants and their outcomes."""
    for s in plan.sim_index:
        sp = scen.programs[s]
        if not sp.per_applicant:
            raise RuntimeError(
                f"program {sp.id} is in pipeline {plan.name!r} but was not simulated per "
                "applicant (load the scenario with load_scenario)"
            )
    awards = [awards_of(scen, ledgers, pid, start, stop) for pid in plan.programs]
    ch = gather(scen, plan, awards, start, stop)
    return ch, run_draws(ch, settings(plan))
