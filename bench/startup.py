"""Start-up benchmark (``make bench``): wall time of one-shot commands in fresh processes, medians of 7 runs.

Targets (issue 11): ``fiscal-sim calc …`` ≤ 0.4 s and ``fiscal-sim programs list`` ≤ 0.5 s on this machine,
with a warm compiled-catalogue cache (``fiscal_sim/catalogue/cache.py``); the cold figure (cache off) is
shown beside it. Results go to ``bench/results/startup.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXE = REPO / ".venv" / "bin" / "fiscal-sim"
OUT = REPO / "bench" / "results"
RUNS = 7
CASES = {
    "calc": ([str(EXE), "calc", "jwf2017-4.innovation-salary", "-i", "tier=A", "-i", "term=long", "-i", "salary=200",
              "-j", "nanhu", "--date", "2025-03-01"], 0.4),
    "programs list": ([str(EXE), "programs", "list"], 0.5),
    "--version": ([str(EXE), "--version"], None),
}


def wall(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=REPO)
    return time.perf_counter() - t


def main() -> None:
    results = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
               "python": platform.python_version(), "load_average": os.getloadavg(), "runs": RUNS, "cases": {}}
    for name, (cmd, target) in CASES.items():
        row = {"target_s": target}
        for label, extra in (("cold_s", {"FISCAL_SIM_CACHE": "off"}), ("warm_s", {})):
            env = {**os.environ, **extra}
            wall(cmd, env)  # warm the OS file cache (and the catalogue cache)
            row[label] = round(statistics.median(wall(cmd, env) for _ in range(RUNS)), 3)
        results["cases"][name] = row
        ok = "" if target is None else ("  meets target" if row["warm_s"] <= target else f"  target {target} s")
        print(f"{name:15s} cold {row['cold_s']:.3f} s   warm {row['warm_s']:.3f} s{ok}", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "startup.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
