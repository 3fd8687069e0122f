"""Start-up benchmark (``make bench``): one-shot commands in fresh processes, medians of 7 runs.

Targets: ``fiscal-sim calc …`` ≤ 0.4 s and ``fiscal-sim programs list`` ≤ 0.5 s on this machine,
with a warm compiled-catalogue cache (``fiscal_sim/catalogue/cache.py``); the cold figure (cache off) is
shown beside it. Each run reports wall time and CPU time (user + sys of the child): on a shared, loaded
machine the CPU time is the steadier figure. ``--before DIR`` also times another source tree (e.g. a
``git archive`` of main) in the same run, interleaved, for a before/after table. Results go to
``bench/results/startup.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = REPO / ".venv" / "bin" / "python"
OUT = REPO / "bench" / "results"
RUNS = 7
CALC = [
    "calc",
    "jwf2017-4.innovation-salary",
    "-i",
    "tier=A",
    "-i",
    "term=long",
    "-i",
    "salary=200",
    "-j",
    "nanhu",
    "--date",
    "2025-03-01",
]
CASES = {"calc": (CALC, 0.4), "programs list": (["programs", "list"], 0.5), "--version": (["--version"], None)}


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, user + sys CPU) seconds of one fresh ``fiscal-sim`` process (what the console script runs)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    # -P: like the console script, no current folder on sys.path (a --before tree's PYTHONPATH comes first)
    subprocess.run(
        [str(PY), "-P", "-c", "from fiscal_sim.cli import main; main()", *args],
        check=True,
        capture_output=True,
        env=env,
        cwd=REPO,
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(trees: dict[str, dict[str, str]], runs: int) -> dict:
    """Medians per case, tree and cache state; the trees' runs are interleaved so load drifts hit all alike."""
    cases: dict = {}
    for name, (args, target) in CASES.items():
        row: dict = {"target_s": target}
        for state, extra in (("cold", {"FISCAL_SIM_CACHE": "off"}), ("warm", {})):
            envs = {tree: {**env, **extra} for tree, env in trees.items()}
            for env in envs.values():
                timed(args, env)  # warm the OS file cache (and the catalogue cache)
            samples: dict[str, list[tuple[float, float]]] = {tree: [] for tree in envs}
            for _ in range(runs):
                for tree, env in envs.items():
                    samples[tree].append(timed(args, env))
            for tree, s in samples.items():
                row[f"{tree}_{state}"] = {
                    "wall_s": round(statistics.median(w for w, _ in s), 3),
                    "cpu_s": round(statistics.median(c for _, c in s), 3),
                }
        cases[name] = row
        for tree in trees:
            w, c = row[f"{tree}_warm"], row[f"{tree}_cold"]
            ok = (
                "" if target is None else ("  meets target" if w["wall_s"] <= target else f"  (target {target} s wall)")
            )
            print(
                f"{name:14s} {tree:7s} warm {w['wall_s']:.3f} s wall {w['cpu_s']:.3f} s cpu   "
                f"cold {c['wall_s']:.3f} s wall {c['cpu_s']:.3f} s cpu{ok}",
                flush=True,
            )
    return cases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", type=Path, help="another source tree (holding fiscal_sim/ and scenarios/) to time too")
    ap.add_argument("--runs", type=int, default=RUNS)
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as caches:
        # each tree gets its own catalogue cache; PYTHONPATH puts a --before tree ahead of the editable install
        trees = {"after" if opts.before else "this": {**os.environ, "FISCAL_SIM_CACHE": f"{caches}/this"}}
        if opts.before:
            trees = {
                "before": {
                    **os.environ,
                    "FISCAL_SIM_CACHE": f"{caches}/before",
                    "PYTHONPATH": str(opts.before.resolve()),
                },
                **trees,
            }
        results = {
            "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
            "runs": opts.runs,
            "cases": measure(trees, opts.runs),
        }
    results["load_average_end"] = os.getloadavg()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"load average {results['load_average']} → {results['load_average_end']}", file=sys.stderr)


if __name__ == "__main__":
    main()
