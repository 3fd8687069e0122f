"""Checks of ``--workers`` and ``--chunk-size`` against the machine, before a run starts."""

from __future__ import annotations

import os
from pathlib import Path

from fiscal_sim.errors import FiscalSimError

BASE_BYTES = 400 * 2**20
"""a process's memory before its first chunk (Python, numpy, pyarrow, the compiled catalogue)"""


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask, not the machine's total)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def available_memory() -> int | None:
    """Bytes a new allocation can get: MemAvailable, or the cgroup's room when that is smaller; None if unknown."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_workers(workers: int) -> tuple[int, str | None]:
    """``workers`` capped at the CPU count, with a note when capped; refuse fewer than 1."""
    if workers < 1:
        raise FiscalSimError(f"--workers {workers}: need at least 1 worker")
    n = cpu_count()
    if workers > n:
        return n, f"--workers {workers}: this machine has {n} CPU(s) for this process; using {n}"
    return workers, None


def bytes_per_draw(scen) -> int:
    """Rough peak bytes one draw of a chunk holds: its series values (and their sums) and the program ledgers."""
    from fiscal_sim.engine.ledger import layout

    ledger_cells = sum(len(sp.jur) for sp in scen.programs) * len(scen.years)
    return 8 * (2 * layout(scen).size + ledger_cells)


def check_chunk_memory(scen, workers: int) -> None:
    """Refuse a chunk size whose estimated memory (bytes per draw × chunk × workers) exceeds what is available."""
    avail = available_memory()
    if avail is None:
        return
    B = scen.spec.block_size
    chunk = min(-(-scen.spec.chunk_size // B) * B, -(-scen.spec.draws // B) * B)
    per_draw = bytes_per_draw(scen)
    need = workers * (BASE_BYTES + per_draw * chunk)
    if need > avail:
        fit = max((avail // workers - BASE_BYTES) // per_draw // B * B, 0)
        advice = f"use --chunk-size {fit} or less" if fit >= B else "use fewer --workers"
        raise FiscalSimError(
            f"--chunk-size {scen.spec.chunk_size} × --workers {workers} needs about "
            f"{need / 2**30:.1f} GB ({per_draw / 1024:.0f} KB per draw) but {avail / 2**30:.1f} GB "
            f"is available: {advice}"
        )
