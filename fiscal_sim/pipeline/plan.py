"""A pipeline in simulation units: the calendar (days), payer shares, appropriations in yuan.

Time in the model is in days from 1 January of the horizon's first year
(``day 0``). A call window covers whole months: from the first instant of its
opening month to the end of its closing month. A payment batch is paid on the
last day of its month; its *instant* is the end of that day, so everything
approved during the month is in it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fiscal_sim.pipeline_spec import PipelineSpec, parse_pipelines

if TYPE_CHECKING:
    from fiscal_sim.scenario import Scenario

EPOCH = dt.date(1970, 1, 1)


def _day(origin: dt.date, d: dt.date) -> int:
    return (d - origin).days


def _month_start(year: int, month: int) -> dt.date:
    return dt.date(year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


@dataclass
class Calendar:
    """Windows, batches and year ends of a pipeline over the horizon, in days from ``origin``."""

    origin: dt.date
    year_end: np.ndarray
    """(Y,) the instant each fiscal year ends (1 January of the next year, 00:00)"""
    win_start: np.ndarray
    """(Y × W) first instant of each call window"""
    win_end: np.ndarray
    """(Y × W) end of each call window (exclusive)"""
    win_cum: np.ndarray
    """(W,) cumulative share of applicants by window"""
    batch_time: np.ndarray
    """(B,) batch instants, ascending (end of the payment day)"""
    batch_day: np.ndarray
    """(B,) the payment day of each batch (days from origin)"""
    batch_year: np.ndarray
    """(B,) year index of each batch"""
    first_batch: np.ndarray
    """first batch index of each year index 0..Y (index Y and beyond: B, i.e. after the horizon)"""

    @property
    def n_years(self) -> int:
        return self.year_end.size

    def dates32(self, days: np.ndarray) -> np.ndarray:
        """Days from origin → days since 1970-01-01 (Arrow date32)."""
        return days + _day(EPOCH, self.origin)


def calendar(spec: PipelineSpec, years: list[int]) -> Calendar:
    origin = dt.date(years[0], 1, 1)
    wins = spec.window_list()
    win_start = np.array([[_day(origin, _month_start(y, o)) for o, _ in wins] for y in years], float)
    win_end = np.array([[_day(origin, _month_start(y, c + 1)) for _, c in wins] for y in years], float)
    days, year_idx = [], []
    for t, y in enumerate(years):
        for m in spec.payment_months:
            days.append(_day(origin, _month_start(y, m + 1)) - 1)  # last day of the month
            year_idx.append(t)
    batch_day = np.array(days, dtype=np.int64)
    batch_year = np.array(year_idx, dtype=np.int64)
    B, Y = batch_day.size, len(years)
    first = np.full(Y + 1, B, dtype=np.int64)
    for t in range(Y):
        first[t] = np.flatnonzero(batch_year == t)[0]
    return Calendar(
        origin,
        np.array([_day(origin, dt.date(y + 1, 1, 1)) for y in years], float),
        win_start,
        win_end,
        np.cumsum(spec.window_shares()),
        batch_day + 1.0,
        batch_day,
        batch_year,
        first,
    )


@dataclass
class Plan:
    """One pipeline compiled against a scenario (picklable: plain arrays and the validated spec)."""

    spec: PipelineSpec
    programs: list[str]
    sim_index: list[int]
    """index of each program in ``scen.programs``"""
    payers: list[int]
    """geography payer indices the pipeline's programs put money on (P)"""
    share: np.ndarray
    """(K × J_geo × P) payer shares of each program by geography jurisdiction"""
    rank: np.ndarray
    """(K,) queue rank of each program (0 first)"""
    appropriation: np.ndarray
    """(P × Y) yuan per payer and year; inf = unbounded"""
    cal: Calendar

    @property
    def name(self) -> str:
        return self.spec.name


def compile_plan(scen: Scenario, spec: PipelineSpec) -> Plan:
    ids = [sp.id for sp in scen.programs]
    sim_index = [ids.index(pid) for pid in spec.programs]
    geo = scen.geography
    Jg, Pg, Y = len(geo.jurisdictions), len(geo.payers), len(scen.years)
    full = np.zeros((len(sim_index), Jg, Pg))
    for k, s in enumerate(sim_index):
        sp = scen.programs[s]
        full[k, sp.jur] = sp.shares
    payers = [int(p) for p in np.flatnonzero(full.sum(axis=(0, 1)) > 0)]
    approp = np.full((len(payers), Y), np.inf)
    for a in sorted(spec.appropriations, key=lambda a: a.year is not None):  # year-specific entries win
        p = geo.payers.index(a.payer)
        if p not in payers:
            continue
        cols = range(Y) if a.year is None else [scen.years.index(a.year)]
        for t in cols:
            approp[payers.index(p), t] = a.amount_cny
    rank = np.array([spec.rank(pid) for pid in spec.programs], dtype=np.int64)
    return Plan(
        spec, list(spec.programs), sim_index, payers, full[:, :, payers], rank, approp, calendar(spec, scen.years)
    )


def compile_pipelines(scen: Scenario) -> list[Plan]:
    """Every pipeline of the scenario, compiled."""
    return [compile_plan(scen, spec) for spec in parse_pipelines(scen.spec.pipelines)]
