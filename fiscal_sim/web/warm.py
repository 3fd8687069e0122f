"""Imported once by the job queue's forkserver so every job's process starts warm: the modules a job uses
(pandas, which pyarrow imports on first use, and scipy among them) and the compiled catalogue."""

from __future__ import annotations

import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401

import fiscal_sim.engine.chunk  # noqa: F401
import fiscal_sim.headline  # noqa: F401
import fiscal_sim.orchestrate.executors  # noqa: F401
import fiscal_sim.orchestrate.run  # noqa: F401
import fiscal_sim.terminal  # noqa: F401
from fiscal_sim import api

try:
    api.load_catalogue()
except Exception:  # a broken catalogue is reported by the job that needs it, with its own message
    pass
