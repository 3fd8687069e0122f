"""Engine benchmark (``make bench``): baseline speed, a large chunked run, memory, throughput vs raw numpy.

Each case runs ``fiscal-sim run`` in a fresh process (so peak memory is that
run's own) and is repeated; figures are medians. Results go to
``bench/results/engine.json`` and a table on stdout; progress goes to stderr.

Targets: baseline at 10,000 draws ≤ 8 s wall with the per-draw
ledger and ≤ 6 s without it, on 2 cores; peak memory ≤ 2 GiB whatever the
number of draws; end-to-end applicant-awards per second per core ≥ 25% of this
machine's raw numpy lognormal rate measured in the same run. Applicant-awards
count only applicants evaluated one by one (category-only programs are done by
counts × amounts and are not counted).

It then profiles one chunk in this process (cumulative seconds per phase under cProfile: simulation, of which
non-cumulation groups, pre-horizon cohorts, applicant sampling and awards to cash; summary series; statistics; the
per-draw ledger's rows and Parquet) and prints the floor: the chunk's applicant inputs at the raw lognormal rate.

On a shared machine absolute times move with the load: ``BENCH_BASE=/path/to/other/checkout``
also times that code (e.g. ``git archive main | tar -x -C /tmp/base``) in the same run, alternating
run by run, and reports the ratio. ``BENCH_LARGE_DRAWS=200000`` adds a long run (off by default so
``make bench`` stays within 3 minutes); ``BENCH_REPEATS`` (default 3); ``BENCH_DRAWS`` (default 10000: the
size the targets are set for).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
OUT = REPO / "bench" / "results"


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }


def raw_lognormal_rate(n: int = 10_000_000, repeats: int = 5) -> float:
    """Median samples per second of numpy's lognormal on one core."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        rng.lognormal(0.0, 1.0, n)
        times.append(time.perf_counter() - t)
    return n / statistics.median(times)


def expected_applicants(draws: int) -> float:
    """Applicant-awards the engine evaluates one by one (expected count over programs, years and draws)."""
    from fiscal_sim.engine.simulate import needs_applicants
    from fiscal_sim.scenario import load_scenario

    scen = load_scenario(BASELINE)
    return draws * sum(float(sp.lam.sum()) for sp in scen.programs if needs_applicants(sp) or sp.per_applicant)


def _tree_rss_mib(root: int) -> float:
    """Memory of a process and all its descendants (Linux /proc; PSS where readable, else RSS), MiB."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            parent[int(d.name)] = int(fields[1])
            rss[int(d.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            # proportional set size: pages shared by forked workers are counted once overall
            for line in (d / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    rss[int(d.name)] = int(line.split()[1]) * 1024
                    break
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier += kids
    return sum(rss.get(p, 0) for p in tree) / 2**20


def timed_run(args: list[str], code: Path = REPO) -> tuple[float, float]:
    """Wall seconds and peak memory of the whole process tree (parent + workers, MiB) of one CLI run of ``code``."""
    cmd = [sys.executable, "-m", "fiscal_sim.cli", "run", str(code / "scenarios" / "baseline.yaml"), "-q", *args]
    env = dict(os.environ, PYTHONPATH=str(code))
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mib(proc.pid))
        time.sleep(0.25)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "run failed")
    return wall, peak


PHASES = {  # (label, function) whose cumulative time one chunk spends, in the order printed
    "simulate_chunk": ("simulate: all programs", "fiscal_sim/engine/chunk.py", "simulate_chunk"),
    "simulate_groups": ("  of which non-cumulation groups", "fiscal_sim/engine/overlap.py", "simulate_groups"),
    "estimated_cohorts": ("  of which pre-horizon cohorts", "fiscal_sim/engine/pre_horizon.py", "estimated_cohorts"),
    "runoff": ("  of which register run-off", "fiscal_sim/engine/runoff.py", "runoff"),
    "sample_applicants": ("  of which applicant inputs (sampling)", "fiscal_sim/uptake/sample.py", "sample_applicants"),
    "applicant_ledger": ("  of which awards → cash by year", "fiscal_sim/engine/simulate.py", "applicant_ledger"),
    "series_rows": ("series: payers, totals, vintages", "fiscal_sim/engine/ledger.py", "series_rows"),
    "add": ("statistics: moments, histogram", "fiscal_sim/stats.py", "add"),
    "draws_tables": ("per-draw ledger: rows", "fiscal_sim/engine/ledger.py", "draws_tables"),
    "write_table": ("per-draw ledger: Parquet write", "pyarrow/parquet/core.py", "write_table"),
}


def chunk_profile(draws: int = 1000, repeats: int = 3) -> dict:
    """Where one chunk's time goes (medians over ``repeats`` chunks, in this process, with the per-draw ledger):
    cumulative seconds of each phase in :data:`PHASES`, and the applicant-awards evaluated one by one."""
    import cProfile
    import pstats

    from fiscal_sim.engine.ledger import layout
    from fiscal_sim.orchestrate.run import run_chunk
    from fiscal_sim.scenario import load_scenario

    scen = load_scenario(BASELINE)
    lay = layout(scen, by_vintage=True)
    seen: dict[str, list[float]] = {k: [] for k in PHASES}
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        run_chunk(scen, lay, 0, draws, Path(tmp))  # warm: imports, compiled plans
        for r in range(repeats):
            prof = cProfile.Profile()
            t = time.perf_counter()
            prof.runcall(run_chunk, scen, lay, (r + 1) * draws, (r + 2) * draws, Path(tmp))
            walls.append(time.perf_counter() - t)
            stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
            for k, (_, path, fn) in PHASES.items():
                # max, not sum: pyarrow's module-level write_table calls ParquetWriter.write_table (same file, name)
                seen[k].append(
                    max(
                        (v[3] for (file, _, name), v in stats.items() if file.endswith(path) and name == fn),
                        default=0.0,
                    )
                )
    return {
        "draws": draws,
        "repeats": repeats,
        "chunk_s_median": statistics.median(walls),
        "phases_s_median": {k: statistics.median(v) for k, v in seen.items()},
    }


def case(name: str, draws: int, args: list[str], repeats: int, base: Path | None = None) -> dict:
    """Repeated runs of this checkout (and of ``base`` alternately, when given): medians."""
    codes = {"this": REPO} | ({"base": base} if base else {})
    walls: dict[str, list[float]] = {k: [] for k in codes}
    mems: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for k, code in codes.items():
                wall, mem = timed_run(["--draws", str(draws), "--out", f"{tmp}/{name}-{k}", *args], code)
                walls[k].append(wall)
                if k == "this":
                    mems.append(mem)
                print(f"  {name} [{k}] run {r + 1}/{repeats}: {wall:.1f} s", file=sys.stderr, flush=True)
    wall = statistics.median(walls["this"])
    awards = expected_applicants(draws)
    out = {
        "case": name,
        "draws": draws,
        "args": " ".join(args),
        "repeats": repeats,
        "wall_s_median": wall,
        "wall_s_all": walls["this"],
        "peak_rss_mib_process_tree": max(mems),
        "applicant_awards": awards,
        "awards_per_s": awards / wall,
    }
    if base:
        out |= {
            "base": str(base),
            "base_wall_s_median": statistics.median(walls["base"]),
            "base_wall_s_all": walls["base"],
            "ratio_to_base": wall / statistics.median(walls["base"]),
        }
    return out


def main() -> None:
    workers = min(2, os.cpu_count() or 1)
    large = int(os.environ.get("BENCH_LARGE_DRAWS", "0"))
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    base = Path(os.environ["BENCH_BASE"]) if os.environ.get("BENCH_BASE") else None
    print("raw lognormal rate …", file=sys.stderr, flush=True)
    raw = raw_lognormal_rate()
    common = ["--workers", str(workers), "--chunk-size", "1000"]
    draws = int(os.environ.get("BENCH_DRAWS", "10000"))  # the targets are for 10,000
    k = f"{draws // 1000}k"
    cases = [
        case(f"baseline_{k}", draws, common, repeats, base),
        case(f"baseline_{k}_no_draws_ledger", draws, common + ["--no-draws-ledger"], repeats, base),
    ]
    if large:
        cases.append(case(f"large_{large // 1000}k_no_draws_ledger", large, common + ["--no-draws-ledger"], 1))
    print("profile of one chunk …", file=sys.stderr, flush=True)
    profile = chunk_profile()
    raw_after = raw_lognormal_rate()  # the machine's load can change during the runs: bracket them
    raw = statistics.median([raw, raw_after])
    for c in cases:
        c["awards_per_s_per_core"] = c["awards_per_s"] / workers
        c["ratio_to_raw_lognormal"] = c["awards_per_s_per_core"] / raw
    targets = {"baseline_10k": 8.0, "baseline_10k_no_draws_ledger": 6.0}
    result = {
        "machine": machine(),
        "workers": workers,
        "raw_lognormal_per_s": raw,
        "cases": cases,
        "chunk_profile": profile,
        "targets": {
            "baseline_10k_wall_s": 8,
            "baseline_10k_no_draws_ledger_wall_s": 6,
            "peak_mem_gib": 2,
            "ratio_to_raw_lognormal": 0.25,
        },
        "load_average": os.getloadavg(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "engine.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores), numpy {np.__version__}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"raw numpy lognormal: {raw / 1e6:,.1f} M samples/s per core (median of before and after the runs)")
    print(
        f"{'case':30} {'draws':>8} {'wall s':>7} {'target':>7} {'base s':>7} {'×base':>6} {'peak MiB':>9} "
        f"{'M awards/s/core':>16} {'vs raw':>7}"
    )
    for c in cases:
        t = targets.get(c["case"])
        print(
            f"{c['case']:30} {c['draws']:>8,} {c['wall_s_median']:>7.2f} "
            f"{(f'≤{t:g} ' + ('met' if c['wall_s_median'] <= t else 'no')) if t else '':>7} "
            f"{c.get('base_wall_s_median', float('nan')):>7.2f} {c.get('ratio_to_base', float('nan')):>6.2f} "
            f"{c['peak_rss_mib_process_tree']:>9.0f} {c['awards_per_s_per_core'] / 1e6:>16.2f} "
            f"{c['ratio_to_raw_lognormal']:>7.1%} {'(≥25% met)' if c['ratio_to_raw_lognormal'] >= 0.25 else '(<25%)'}"
        )
    floor = expected_applicants(profile["draws"]) / raw
    print(
        f"\nwhere one chunk of {profile['draws']:,} draws goes (one process, with the per-draw ledger; medians of "
        f"{profile['repeats']}, cumulative seconds under cProfile): {profile['chunk_s_median']:.2f} s in all"
    )
    for k, (label, _, _) in PHASES.items():
        print(f"  {label:42} {profile['phases_s_median'][k]:6.2f} s")
    print(
        f"  floor: its {expected_applicants(profile['draws']) / 1e6:.1f} M applicant inputs at the raw lognormal "
        f"rate alone {floor:6.2f} s"
    )


if __name__ == "__main__":
    main()
