"""What one chunk's pipeline run hands from the model (:mod:`.apply`) to the money by year (:mod:`.measures`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fiscal_sim.pipeline.model import Applicants

EVENTS_KEY = b"fiscal_sim.pipeline.simpy_events"


@dataclass
class ChunkApplicants:
    """A pipeline's applicants for a chunk of draws, sorted by draw (then program, then engine order)."""

    draw: np.ndarray
    program: np.ndarray
    jur: np.ndarray
    year: np.ndarray
    arrival: np.ndarray
    review: np.ndarray
    approved: np.ndarray
    rank: np.ndarray
    cash: np.ndarray
    share: np.ndarray
    """(n × P) each payer's share of the applicant's instalments"""
    bounds: np.ndarray
    """(n + 1,) first row of each draw"""

    def draw_slice(self, d: int) -> Applicants:
        s = slice(self.bounds[d], self.bounds[d + 1])
        return Applicants(
            self.arrival[s], self.review[s], self.approved[s], self.rank[s], self.year[s], self.cash[s], self.share[s]
        )


@dataclass
class ChunkOutcome:
    """The model's outcomes for all draws of a chunk, concatenated like :class:`ChunkApplicants`."""

    decided: np.ndarray
    due: np.ndarray
    paid: np.ndarray
    exhausted: np.ndarray
    """(n × P × Y)"""
    left: np.ndarray
    """(n × P × Y)"""
    events: int
