"""One-shot commands (``calc``, ``programs list``) import only what they use: a structural check of start-up
cost (timings live in ``bench/startup.py``). With a warm catalogue cache they read no YAML either."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = (
    "pyarrow",
    "scipy",
    "matplotlib",
    "duckdb",
    "jinja2",
    "simpy",
    "dask",
    "openpyxl",
    "fiscal_sim.engine",
    "fiscal_sim.pipeline",
    "fiscal_sim.report",
)
CALC = ["calc", "jwf2017-4.innovation-salary", "-i", "tier=A", "-i", "term=long", "-i", "salary=200", "-j", "nanhu"]
# run the command in-process, then list which of the heavy modules (and yaml) it imported
PROBE = """
import json, sys
from fiscal_sim.cli import main
sys.argv = ["fiscal-sim", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
names = {heavy}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in names or m in names)))
"""


def loaded(args: list[str], cache: str) -> list[str]:
    code = PROBE.format(heavy=repr(set(HEAVY) | {"yaml"}))
    r = subprocess.run(
        [sys.executable, "-c", code, json.dumps(args)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "FISCAL_SIM_CACHE": cache},
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [CALC, ["programs", "list"]], ids=["calc", "programs-list"])
def test_one_shot_commands_import_no_heavy_module(args, tmp_path):
    cache = str(tmp_path / "cache")
    cold = loaded(args, cache)  # fills the cache: the catalogue is read from YAML
    assert not [m for m in cold if m != "yaml" and not m.startswith("yaml.")], cold
    assert loaded(args, cache) == []  # a cache hit: not even YAML
