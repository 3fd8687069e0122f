"""The simulation engine: draws → awards → schedules → payers → ledger; chunking and workers."""

from fiscal_sim.engine import memory as _memory

_memory.keep_freed_memory()
