"""Workbench benchmark (``make bench``): wall time from submitting a 1,000-draw what-if on the baseline to its
headline, with the server warm (one run done first); prints the median of 3 and the machine.

It drives a real ``fiscal-sim serve`` over HTTP (urllib: the form post with its CSRF cookie, then polling the
run's status as the page does), in a temporary workspace. Results go to ``bench/results/workbench.json``.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results"
DRAWS, RUNS = 1000, 3


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    port = _port()
    base = f"http://127.0.0.1:{port}"
    jar = http.cookiejar.CookieJar()
    http_ = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with tempfile.TemporaryDirectory(prefix="fiscal-sim-bench-") as ws:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fiscal_sim.cli", "serve", "--workspace", ws, "--port", str(port)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        try:
            end = time.monotonic() + 30
            while True:
                try:
                    http_.open(base + "/", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > end:
                        raise SystemExit("the workbench did not start") from None
                    time.sleep(0.2)
            csrf = next(c.value for c in jar if c.name == "fs_csrf")

            def one() -> float:
                t0 = time.perf_counter()
                body = urllib.parse.urlencode({"csrf": csrf, "src": "repo", "name": "baseline", "draws": DRAWS})
                resp = http_.open(base + "/runs", data=body.encode(), timeout=30)
                run_id = resp.url.rstrip("/").rsplit("/", 1)[1]
                while json.loads(http_.open(f"{base}/runs/{run_id}/status.json").read())["status"] in (
                    "queued",
                    "running",
                ):
                    time.sleep(0.05)
                page = http_.open(f"{base}/runs/{run_id}").read().decode()
                assert re.search(r'<pre id="headline">', page), "no headline on the result page"
                return time.perf_counter() - t0

            one()  # warm: imports, catalogue cache
            times = [one() for _ in range(RUNS)]
        finally:
            proc.terminate()
            proc.wait(10)
    result = {
        "what": f"submit a {DRAWS:,}-draw baseline run → headline shown (server warm)",
        "runs_s": times,
        "median_s": statistics.median(times),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "python": platform.python_version(),
    }
    OUT.mkdir(exist_ok=True)
    (OUT / "workbench.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"workbench: {result['what']}: median {result['median_s']:.2f} s of {RUNS} "
        f"({', '.join(f'{t:.2f}' for t in times)}) on {result['machine']}"
    )


if __name__ == "__main__":
    main()
