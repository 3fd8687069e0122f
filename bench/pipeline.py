"""Benchmark of the simpy pipeline: simpy events per second, and draws per second of the baseline with pipelines.

    .venv/bin/python bench/pipeline.py                  # model alone + a whole run, 1,000 draws on 2 workers
    .venv/bin/python bench/pipeline.py --check          # exit 1 when the run misses the target (≥ 1,000 draws in ≤ 60 s)
    .venv/bin/python bench/pipeline.py --json out.json  # also write the figures

1. *Model*: the pipelines' simpy models for ``--model-draws`` draws in this
   process (the engine's awards prepared beforehand, not timed): events the
   environments scheduled per second and draws per second, per pipeline.
2. *Run*: ``fiscal-sim run scenarios/baseline_pipeline.yaml --pipeline`` as a
   user runs it (engine, pipelines, per-draw ledger, statistics, Parquet) with
   ``--workers`` processes, timed end to end, against the same run without
   ``--pipeline``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fiscal_sim.orchestrate.run import run  # noqa: E402
from fiscal_sim.engine.chunk import simulate_chunk  # noqa: E402
from fiscal_sim.pipeline import pipeline_programs  # noqa: E402
from fiscal_sim.pipeline.apply import awards_of, gather, run_draws, settings  # noqa: E402
from fiscal_sim.pipeline.plan import compile_pipelines  # noqa: E402
from fiscal_sim.scenario import load_scenario  # noqa: E402

TARGET_DRAWS, TARGET_SECONDS = 1000, 60.0


def bench_model(scen, draws: int) -> dict:
    """simpy events/s and draws/s of each pipeline's model, in this process."""
    ledgers = simulate_chunk(scen, 0, draws, keep_awards=pipeline_programs(scen))
    out: dict = {"draws": draws, "pipelines": {}}
    total_events, total_seconds = 0, 0.0
    for plan in compile_pipelines(scen):
        apps = gather(scen, plan, [awards_of(scen, ledgers, pid, 0, draws) for pid in plan.programs], 0, draws)
        t = time.perf_counter()
        res = run_draws(apps, settings(plan))
        dt = time.perf_counter() - t
        total_events += res.events
        total_seconds += dt
        out["pipelines"][plan.name] = {
            "applicants_per_draw": apps.draw.size / draws,
            "events": res.events,
            "seconds": dt,
            "events_per_s": res.events / dt,
            "draws_per_s": draws / dt,
        }
    out.update(
        events=total_events,
        seconds=total_seconds,
        events_per_s=total_events / total_seconds,
        draws_per_s=draws / total_seconds,
    )
    return out


def bench_run(scen, workers: int, pipeline: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run(scen, Path(tmp) / "out", workers=workers, write_draws=True, pipeline=pipeline)
        dt = time.perf_counter() - t
    return {
        "draws": scen.spec.draws,
        "workers": workers,
        "pipeline": pipeline,
        "seconds": dt,
        "draws_per_s": scen.spec.draws / dt,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default=str(REPO / "scenarios" / "baseline_pipeline.yaml"))
    ap.add_argument("--draws", type=int, default=TARGET_DRAWS, help="draws of the timed run")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--model-draws", type=int, default=100, help="draws of the in-process model benchmark")
    ap.add_argument("--json", type=Path, help="write the results here")
    ap.add_argument(
        "--check", action="store_true", help=f"fail unless {TARGET_DRAWS} draws run in ≤ {TARGET_SECONDS:g} s"
    )
    args = ap.parse_args(argv)

    scen = load_scenario(args.scenario)
    model = bench_model(scen.with_settings(draws=args.model_draws), args.model_draws)
    print(f"pipeline model ({args.model_draws} draws, 1 process):")
    for name, r in model["pipelines"].items():
        print(
            f"  {name:24s} {r['applicants_per_draw']:7.0f} applicants/draw  {r['events_per_s']:11,.0f} events/s"
            f"  {r['draws_per_s']:7.1f} draws/s"
        )
    print(
        f"  {'all pipelines':24s} {'':7s}                  {model['events_per_s']:11,.0f} events/s"
        f"  {model['draws_per_s']:7.1f} draws/s"
    )

    big = scen.with_settings(draws=args.draws)
    chunk = max(big.spec.block_size, -(-args.draws // (2 * args.workers)))  # ≥ 2 chunks per worker
    big = big.with_settings(chunk_size=chunk)
    plain = bench_run(big, args.workers, pipeline=False)
    piped = bench_run(big, args.workers, pipeline=True)
    for r in (plain, piped):
        label = "with --pipeline" if r["pipeline"] else "without pipeline"
        print(
            f"run {Path(args.scenario).name} {label:17s}: {r['draws']:,} draws, {r['workers']} workers, "
            f"{r['seconds']:6.1f} s, {r['draws_per_s']:7.1f} draws/s"
        )
    per_target = TARGET_DRAWS / piped["draws_per_s"]
    ok = per_target <= TARGET_SECONDS
    print(
        f"target ≥ {TARGET_DRAWS:,} draws in ≤ {TARGET_SECONDS:g} s with pipelines: "
        f"{per_target:.1f} s for {TARGET_DRAWS:,} draws — {'met' if ok else 'MISSED'}"
    )
    if args.json:
        args.json.write_text(
            json.dumps({"model": model, "run": piped, "run_without_pipeline": plain, "target_met": ok}, indent=2)
            + "\n",
            encoding="utf-8",
        )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
