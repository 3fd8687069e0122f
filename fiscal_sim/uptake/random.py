"""Random streams keyed by what they are for, never by the order of work.

One root ``SeedSequence(seed)``. Draws are grouped in fixed *blocks* of
``block_size`` draws; the stream for (block, program) is the child with
``spawn_key = (block, program_key, purpose)``. Chunks are whole blocks, so the
same seed gives bit-identical draws whatever the chunk size or the number of
workers; and since the scenario is not in the key, a reform and its baseline
see the same applicants (common random numbers).
"""

from __future__ import annotations

import hashlib

import numpy as np

SHOCK = "__shared_shock__"


def stable_key(name: str) -> int:
    """A 32-bit integer from a name (sha256, not Python's salted ``hash()``)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "little")


def stream(seed: int, block: int, name: str, purpose: int = 0) -> np.random.Generator:
    """The generator for one block of draws and one named consumer (a program, the shared shock)."""
    ss = np.random.SeedSequence(seed, spawn_key=(block, stable_key(name), purpose))
    return np.random.Generator(np.random.PCG64(ss))


def gamma_mean_one(rng: np.random.Generator, cv: float, size) -> np.ndarray:
    """Gamma factors with mean 1 and coefficient of variation ``cv`` (1 everywhere when cv = 0)."""
    if cv <= 0:
        return np.ones(size)
    k = 1.0 / cv**2
    return rng.gamma(k, 1.0 / k, size)


def shared_shock(seed: int, block: int, n: int, years: int) -> np.ndarray:
    """Standard normal shock per draw and year, common to all programs (shape n × years)."""
    return stream(seed, block, SHOCK).standard_normal((n, years))
