"""Scale benchmark (``make bench-scale``, not part of the tests): the baseline at a million draws and a 100-point
sweep, on a Dask LocalCluster.

Each case runs the CLI in a fresh process with ``--executor dask --workers W`` and samples, every half second,
the proportional set size of the client (the CLI process) and of each Dask worker process (its descendants),
reporting wall time, draws per second, the client's peak and each worker's peak, and the workers' memory over
the first and last quarter of the run (flat means no growth with draws). Results go to
``bench/results/scale.json``.

``python bench/scale.py [--draws 1000000] [--points 100] [--point-draws 10000] [--workers 2] [--only run|sweep]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "scenarios" / "baseline.yaml"
GROWTH = "uptake.jwf2017-4.talent-housing.growth"


def _pss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _is_worker(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return (b"spawn_main" in cmd or b"forkserver" in cmd) and b"resource_tracker" not in cmd


def measured(name: str, args: list[str], draws_total: int) -> dict:
    """Run ``fiscal-sim ARGS`` sampling memory; wall, draws/s, client and worker peaks."""
    cmd = [sys.executable, "-m", "fiscal_sim.cli", *args, "-q"]
    print(f"{name}: {' '.join(args)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples: list[tuple[float, float, dict[int, float]]] = []
    last = t0
    while proc.poll() is None:
        workers = {p: _pss_mib(p) for p in _children(proc.pid) if _is_worker(p)}
        samples.append((time.perf_counter() - t0, _pss_mib(proc.pid), workers))
        if time.perf_counter() - last > 30:
            last = time.perf_counter()
            print(
                f"  {samples[-1][0]:.0f} s: client {samples[-1][1]:.0f} MiB, workers "
                f"{sorted(round(v) for v in workers.values())} MiB",
                file=sys.stderr,
                flush=True,
            )
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "failed")
    peaks: dict[int, float] = {}
    for _, _, w in samples:
        for p, v in w.items():
            peaks[p] = max(peaks.get(p, 0.0), v)
    q = max(len(samples) // 4, 1)

    def quarter(part: list) -> float:
        return statistics.mean(sum(w.values()) for _, _, w in part) if part else 0.0

    return {
        "case": name,
        "command": "fiscal-sim " + " ".join(args),
        "wall_s": wall,
        "draws": draws_total,
        "draws_per_s": draws_total / wall,
        "client_peak_mib": max((c for _, c, _ in samples), default=0.0),
        "worker_peaks_mib": sorted(peaks.values()),
        "workers_first_quarter_mib": quarter(samples[:q]),
        "workers_last_quarter_mib": quarter(samples[-q:]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1_000_000)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--point-draws", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--only",
        choices=["run", "sweep"],
        help="one case only (its record replaces the same case's in bench/results/scale.json; the other is kept)",
    )
    a = ap.parse_args(argv)
    dask = ["--executor", "dask", "--workers", str(a.workers)]
    values = ",".join(f"{0.001 * i:.3f}" for i in range(a.points))
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        if a.only in (None, "run"):
            cases.append(
                measured(
                    f"baseline_{a.draws // 1000}k_no_draws_ledger",
                    [
                        "run",
                        str(BASELINE),
                        "--draws",
                        str(a.draws),
                        "--chunk-size",
                        "1000",
                        "--no-draws-ledger",
                        "--out",
                        f"{tmp}/run",
                        *dask,
                    ],
                    a.draws,
                )
            )
        if a.only in (None, "sweep"):
            cases.append(
                measured(
                    f"sweep_{a.points}_points_x_{a.point_draws / 1000:g}k",
                    [
                        "sweep",
                        str(BASELINE),
                        "--set",
                        f"{GROWTH}={values}",
                        "--draws",
                        str(a.point_draws),
                        "--totals-only",
                        "--out",
                        f"{tmp}/sweep",
                        *dask,
                    ],
                    a.points * a.point_draws,
                )
            )
    for c in cases:
        c |= {"load_average_after": os.getloadavg(), "created": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    kept = []
    if a.only and (out / "scale.json").is_file():
        kept = [
            c
            for c in json.loads((out / "scale.json").read_text())["cases"]
            if not c["case"].startswith("baseline_" if a.only == "run" else "sweep_")
        ]
    result = {
        "machine": machine(),
        "workers": a.workers,
        "cases": kept + cases,
        "load_average": os.getloadavg(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out / "scale.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores); Dask LocalCluster of "
        f"{a.workers} single-threaded workers; load average {os.getloadavg()[0]:.1f}"
    )
    for c in cases:
        print(
            f"{c['case']:34} wall {c['wall_s']:8.1f} s  {c['draws_per_s']:8.0f} draws/s  client peak "
            f"{c['client_peak_mib']:6.0f} MiB  worker peaks {[round(v) for v in c['worker_peaks_mib']]} MiB  "
            f"workers first/last quarter {c['workers_first_quarter_mib']:.0f}/{c['workers_last_quarter_mib']:.0f} MiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
