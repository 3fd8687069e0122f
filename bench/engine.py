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


def timed_run(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak memory of the whole process tree (parent + workers, MiB) of one CLI run."""
    cmd = [sys.executable, "-m", "fiscal_sim.cli", "run", str(BASELINE), "-q", *args]
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mib(proc.pid))
        time.sleep(0.25)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "run failed")
    return wall, peak


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
            "wall_s_all": walls, "peak_rss_mib_process_tree": max(mems), "applicant_awards": awards,
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
             ["--workers", str(workers), "--chunk-size", "1000", "--no-draws-ledger"], repeats=1),
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
    print(f"{'case':34} {'draws':>8} {'wall s':>8} {'peak MiB':>9} {'M awards/s/core':>16} {'vs raw':>7}"
          "   (peak MiB: parent + workers)")
    for c in cases:
        print(f"{c['case']:34} {c['draws']:>8,} {c['wall_s_median']:>8.2f} {c['peak_rss_mib_process_tree']:>9.0f} "
              f"{c['awards_per_s_per_core'] / 1e6:>16.2f} {c['ratio_to_raw_lognormal']:>7.1%}")


if __name__ == "__main__":
    main()
