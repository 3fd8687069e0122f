"""Engine benchmark (``make bench``): baseline speed, a large chunked run, memory, throughput vs raw numpy.

Each case runs ``fiscal-sim run`` in a fresh process (so peak memory is that
run's own) and is repeated; figures are medians. Results go to
``bench/results/engine.json`` and a table on stdout.

Targets (issue 4): baseline at 10,000 draws ≤ 10 s wall on 2 cores; peak
memory ≤ 2 GiB whatever the number of draws; end-to-end applicant-awards per
second per core ≥ 25% of this machine's raw numpy lognormal sampling rate.
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
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "platform": platform.platform()}


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
    """Applicant-awards the engine evaluates (expected count over all programs, years and draws)."""
    from fiscal_sim.scenario import load_scenario

    scen = load_scenario(BASELINE)
    return draws * sum(float(sp.lam.sum()) for sp in scen.programs)


def timed_run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak memory (parent + largest worker, MiB) of one CLI run in a child process."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:]); w = time.perf_counter() - t; "
            "c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
            "print(w, c); sys.exit(r.returncode)")
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "fiscal_sim.cli", "run", str(BASELINE), "-q", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr)
    wall, rss_kib = proc.stdout.strip().splitlines()[-1].split()
    return float(wall), float(rss_kib) / 1024


def case(name: str, draws: int, args: list[str], repeats: int) -> dict:
    walls, mems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            wall, mem = timed_run(["--draws", str(draws), "--out", f"{tmp}/{name}", *args])
            walls.append(wall)
            mems.append(mem)
    wall = statistics.median(walls)
    awards = expected_applicants(draws)
    return {"case": name, "draws": draws, "args": " ".join(args), "repeats": repeats, "wall_s_median": wall,
            "wall_s_all": walls, "peak_rss_mib_max_process": max(mems), "applicant_awards": awards,
            "awards_per_s": awards / wall}


def main() -> None:
    workers = min(2, os.cpu_count() or 1)
    large = int(os.environ.get("BENCH_LARGE_DRAWS", "200000"))
    raw = raw_lognormal_rate()
    cases = [
        case("baseline_10k", 10_000, ["--workers", str(workers), "--chunk-size", "1000"], repeats=3),
        case("baseline_10k_no_draws_ledger", 10_000,
             ["--workers", str(workers), "--chunk-size", "1000", "--no-draws-ledger"], repeats=3),
        case(f"large_{large // 1000}k_no_draws_ledger", large,
             ["--workers", str(workers), "--chunk-size", "2000", "--no-draws-ledger"], repeats=1),
    ]
    for c in cases:
        c["awards_per_s_per_core"] = c["awards_per_s"] / workers
        c["ratio_to_raw_lognormal"] = c["awards_per_s_per_core"] / raw
    result = {"machine": machine(), "workers": workers, "raw_lognormal_per_s": raw, "cases": cases,
              "targets": {"baseline_10k_wall_s": 10, "peak_mem_gib": 2, "ratio_to_raw_lognormal": 0.25},
              "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "engine.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores), numpy {np.__version__}")
    print(f"raw numpy lognormal: {raw / 1e6:,.1f} M samples/s per core")
    print(f"{'case':34} {'draws':>8} {'wall s':>8} {'peak MiB':>9} {'M awards/s/core':>16} {'vs raw':>7}")
    for c in cases:
        print(f"{c['case']:34} {c['draws']:>8,} {c['wall_s_median']:>8.2f} {c['peak_rss_mib_max_process']:>9.0f} "
              f"{c['awards_per_s_per_core'] / 1e6:>16.2f} {c['ratio_to_raw_lognormal']:>7.1%}")


if __name__ == "__main__":
    main()
