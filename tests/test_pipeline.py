"""The simpy pipeline: exactness against the engine, a hand-checked case, conservation, appropriations."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import yaml

from fiscal_sim.catalogue.loader import load_catalogue
from fiscal_sim.engine.chunk import simulate_chunk
from fiscal_sim.errors import InputError
from fiscal_sim.pipeline import apply_pipelines, pipeline_programs
from fiscal_sim.pipeline.model import Applicants, Settings, pay_in_order, run_draw
from fiscal_sim.scenario import load_scenario

FIX = Path(__file__).parent / "fixtures" / "engine"
NO_ATTRITION = ("t.hnte", "t.contract")
PROGRAMS = ["t.hnte", "t.rent", "t.salary", "t.contract"]

BASE = {
    "name": "pipe",
    "programs": PROGRAMS,
    "horizon": {"start": 2025, "end": 2031},
    "draws": 60,
    "seed": 11,
    "chunk_size": 60,
    "block_size": 20,
    "shock": {"sigma": 0.2, "correlation": 0.5},
    "overrides": {
        "t.hnte": {"uptake.count.mean": 40},
        # a multi-year schedule starting a year after the award: 40/30/30 from year +1
        "t.contract": {
            "schedule": {"kind": "instalments", "fractions": [0.4, 0.3, 0.3], "lag": 1},
            "uptake.count.mean": 30,
        },
    },
}
OPEN = {
    "name": "open",
    "programs": PROGRAMS,
    "windows": "annual",
    "review": {"reviewers": None},
    "payment_months": [12],
    "lag_batches": 0,
}


@pytest.fixture(scope="module")
def fixture_catalogue():
    return load_catalogue(FIX)


def scenario(tmp_path: Path, catalogue, **pipeline):
    """The fixture scenario with one pipeline over every program (``pipeline`` overrides OPEN)."""
    spec = copy.deepcopy(BASE)
    spec["pipelines"] = [OPEN | pipeline]
    path = tmp_path / f"pipe-{abs(hash(repr(pipeline))) % 10**8}.yaml"
    path.write_text(yaml.safe_dump({"scenario": spec}, allow_unicode=True), encoding="utf-8")
    return load_scenario(path, catalogue)


def with_pipeline(scen, start=0, stop=None):
    stop = scen.spec.draws if stop is None else stop
    ledgers = simulate_chunk(scen, start, stop, keep_awards=pipeline_programs(scen))
    table = apply_pipelines(scen, ledgers, start, stop)
    return ledgers, table


def assert_same_cash(pipe, engine):
    """Equal draw by draw: bit for bit for one-off schedules, else up to summation order."""
    for pid in PROGRAMS:
        if pid == "t.hnte":
            np.testing.assert_array_equal(pipe[pid], engine[pid])
        else:
            np.testing.assert_allclose(pipe[pid], engine[pid], rtol=1e-12, atol=1e-6)


# ---------------------------------------------------------------- exactness against the vectorised engine


@pytest.mark.parametrize("reviewers", [None, 100_000])
def test_unbounded_pipeline_pays_exactly_the_engine_cash(tmp_path, fixture_catalogue, reviewers):
    """Capacity and appropriations unbounded, no lag: the pipeline's cash is the engine's, draw by draw."""
    scen = scenario(tmp_path, fixture_catalogue, review={"reviewers": reviewers})
    engine = {k: v.cash for k, v in simulate_chunk(scen, 0, scen.spec.draws).items()}  # a run without --pipeline
    ledgers, table = with_pipeline(scen)
    assert_same_cash({k: v.cash for k, v in ledgers.items()}, engine)
    assert sum(engine[p].sum() for p in PROGRAMS) > 0
    assert pc.max(table["arrears_cny"]).as_py() == 0
    np.testing.assert_allclose(table["paid_cny"].to_numpy(), table["entitled_cny"].to_numpy(), rtol=1e-12, atol=1e-6)


def test_lag_of_one_batch_is_the_engine_cash_one_year_later(tmp_path, fixture_catalogue):
    scen = scenario(tmp_path, fixture_catalogue, lag_batches=1)
    engine = {k: v.cash for k, v in simulate_chunk(scen, 0, scen.spec.draws).items()}
    ledgers, _ = with_pipeline(scen)
    for pid in PROGRAMS:
        assert not ledgers[pid].cash[:, :, 0].any()
    assert_same_cash({k: v.cash[:, :, 1:] for k, v in ledgers.items()}, {k: v[:, :, :-1] for k, v in engine.items()})


def test_award_decided_after_the_batch_slips_a_whole_year(tmp_path, fixture_catalogue):
    """Calls after the January batch: awards paying in their award year wait for next January, their
    schedule shifted as a whole; t.contract's schedule starts a year after the award anyway (no slip)."""
    scen = scenario(tmp_path, fixture_catalogue, windows=[{"open": 2, "close": 12}], payment_months=[1])
    engine = {k: v.cash for k, v in simulate_chunk(scen, 0, scen.spec.draws).items()}
    ledgers, _ = with_pipeline(scen)
    shifted = {k: np.concatenate([np.zeros_like(v[:, :, :1]), v[:, :, :-1]], axis=2) for k, v in engine.items()}
    shifted["t.contract"] = engine["t.contract"]
    assert_same_cash({k: v.cash for k, v in ledgers.items()}, shifted)


def test_results_do_not_depend_on_chunking_or_kept_awards(tmp_path, fixture_catalogue):
    scen = scenario(
        tmp_path,
        fixture_catalogue,
        review={"reviewers": 3, "days": {"dist": "uniform", "low": 1, "high": 9}},
        windows="quarterly",
        appropriations=[{"payer": "city", "amount": 300, "unit": "万元"}],
    )
    _, whole = with_pipeline(scen)
    parts = [with_pipeline(scen, a, a + 20)[1] for a in (0, 20, 40)]
    for name in whole.column_names:
        assert whole[name].to_pylist() == sum((p[name].to_pylist() for p in parts), []), name
    ledgers = simulate_chunk(scen, 0, 60)  # no kept awards: the pipeline simulates them again
    assert apply_pipelines(scen, ledgers, 0, 60).equals(whole)


# ---------------------------------------------------------------- a hand-checked case, the model alone


def settings(appropriation, reviewers=3, lag=0):
    """Two years (2025, 2026), one batch on 31 March: days 89 and 454 (instants 90 and 455), one payer."""
    return Settings(
        reviewers, lag, np.array([90.0, 455.0]), np.array([0, 1]), np.array([0, 1, 2]), np.array([appropriation], float)
    )


def test_calendar_of_the_hand_checked_case():
    """The settings above are the calendar of a March batch over 2025–2026 (dates from day numbers)."""
    import datetime as dt

    from fiscal_sim.pipeline.plan import calendar
    from fiscal_sim.pipeline_spec import PipelineSpec

    cal = calendar(PipelineSpec(name="x", programs=["p"], payment_months=[3], windows="quarterly"), [2025, 2026])
    np.testing.assert_array_equal(cal.batch_time, [90.0, 455.0])
    assert [str(dt.date(1970, 1, 1) + dt.timedelta(days=int(d))) for d in cal.dates32(cal.batch_day)] == [
        "2025-03-31",
        "2026-03-31",
    ]
    np.testing.assert_array_equal(cal.first_batch, [0, 1, 2])
    np.testing.assert_array_equal(cal.year_end, [365, 730])
    np.testing.assert_array_equal(cal.win_start[0], [0, 90, 181, 273])  # 1 Jan, 1 Apr, 1 Jul, 1 Oct 2025


def ten_applicants():
    arrival = np.array([0, 1, 2, 3, 4, 10, 20, 50, 60, 100], float)
    review = np.array([30, 30, 30, 10, 20, 5, 60, 10, 400, 1], float)
    approved = np.ones(10, bool)
    approved[2] = False
    cash = np.zeros((10, 2))
    cash[:, 0] = [100, 200, 300, 400, 500, 600, 700, 150, 900, 1000]
    cash[9, 1] = 1000  # the last applicant has a second instalment a year after the first
    return Applicants(arrival, review, approved, np.zeros(10, np.int64), np.zeros(10, np.int64), cash, np.ones((10, 1)))


def test_hand_checked_three_reviewers_ten_applications():
    """3 reviewers, FIFO: decisions, batches, strict payment order, exhaustion and arrears, worked by hand.

    Reviews: 0,1,2 start at once (end 30, 31, 32); 3 waits for 0 (30→40), 4 for 1 (31→51), 5 for 2
    (32→37), 6 for 5 (37→97); 7 arrives to a free desk (50→60), 8 too (60→460), 9 to 6's (100→101).
    Batch 31 Mar 2025 (instant 90) pays decisions up to day 90 in decision order — 0 (100), 1 (200),
    5 (600), 3 (400) = 1,300 of 1,500 — then 4 (500) does not fit: the appropriation is exhausted and 4
    and 7 (150, which would fit) wait as arrears (no overtaking). 2 is rejected. Batch 31 Mar 2026
    (2,000): arrears first, 4 and 7 (650), then 6 (700) and 9's first instalment (1,000), which does
    not fit. 9's second instalment falls a year after its first batch (2027, after the horizon); 8 is
    decided on day 460, after the 2026 batch.
    """
    out = run_draw(ten_applicants(), settings([1500, 2000]))
    np.testing.assert_array_equal(out.decided, [30, 31, 32, 40, 51, 37, 97, 60, 460, 101])
    np.testing.assert_array_equal(out.due[:, 0], [0, 0, -1, 0, 0, 0, 1, 0, 2, 1])
    np.testing.assert_array_equal(out.paid[:, 0], [0, 0, -1, 0, 1, 0, 1, 1, -1, -1])
    assert out.due[9, 1] == 2 and out.paid[9, 1] == -1
    np.testing.assert_array_equal(out.exhausted, [[0, 1]])  # both years, at their batch
    np.testing.assert_allclose(out.left, [[200, 650]])
    cash = ten_applicants().cash
    arrears = [cash[(out.due >= 0) & (out.due <= b) & ((out.paid < 0) | (out.paid > b))].sum() for b in (0, 1)]
    assert arrears == [650, 1000]
    assert out.events > 40


def test_hand_checked_case_with_enough_money_pays_everything_due():
    out = run_draw(ten_applicants(), settings([np.inf, np.inf]))
    np.testing.assert_array_equal(out.paid[:, 0], [0, 0, -1, 0, 0, 0, 1, 0, -1, 1])
    np.testing.assert_array_equal(out.exhausted, [[-1, -1]])


def test_priority_queue_serves_lower_rank_first_then_fifo():
    """One reviewer busy until day 10; ranks 1, 0, 1, 0 arriving at days 1–4 are served 0-ranked first."""
    arrival = np.array([0, 1, 2, 3, 4], float)
    rank = np.array([0, 1, 0, 1, 0])
    app = Applicants(
        arrival, np.full(5, 10.0), np.ones(5, bool), rank, np.zeros(5, np.int64), np.ones((5, 1)), np.ones((5, 1))
    )
    out = run_draw(app, settings([np.inf, np.inf], reviewers=1))
    np.testing.assert_array_equal(out.decided, [10, 40, 20, 50, 30])
    fifo = run_draw(
        Applicants(
            arrival,
            np.full(5, 10.0),
            np.ones(5, bool),
            np.zeros(5, np.int64),
            np.zeros(5, np.int64),
            np.ones((5, 1)),
            np.ones((5, 1)),
        ),
        settings([np.inf, np.inf], 1),
    )
    np.testing.assert_array_equal(fifo.decided, [10, 20, 30, 40, 50])


def test_appropriation_exactly_covering_demand_leaves_no_arrears():
    app = ten_applicants()
    due_2025 = 100 + 200 + 400 + 500 + 600 + 150  # every approval decided by 31 March 2025
    out = run_draw(app, settings([due_2025, np.inf]))
    assert (out.paid[:, 0] == 0).sum() == 6 and out.exhausted[0, 0] == -1
    np.testing.assert_allclose(out.left[0, 0], 0.0, atol=1e-9)
    short = run_draw(app, settings([due_2025 - 0.01, np.inf]))
    assert short.exhausted[0, 0] == 0


def test_zero_appropriation_pays_nothing():
    out = run_draw(ten_applicants(), settings([0, 0]))
    assert (out.paid < 0).all()
    np.testing.assert_array_equal(out.exhausted, [[0, 1]])


def test_pay_in_order_fast_path_agrees_with_the_general_loop():
    from fiscal_sim.pipeline.model import _pay_loop

    rng = np.random.default_rng(3)
    for _ in range(200):
        k, P = int(rng.integers(1, 40)), 3
        parts = np.zeros((k, P))
        payer = rng.integers(0, P, k)
        parts[np.arange(k), payer] = rng.uniform(1, 100, k)
        parts[:, 0] += (rng.random(k) < 0.3) * rng.uniform(1, 100, k) * (payer != 0)  # some unbounded co-funding
        level = np.array([np.inf, rng.uniform(0, 800), rng.uniform(0, 800)])
        fast = pay_in_order(parts, level)
        bounded = np.flatnonzero(np.isfinite(level))
        slow = _pay_loop(
            parts[:, bounded], parts[:, bounded] > 0, level[bounded], bounded, np.ones(k, bool), np.zeros(P, bool), 1e-3
        )
        np.testing.assert_array_equal(fast[0], slow[0])
        np.testing.assert_array_equal(fast[1], slow[1])


def test_joint_payment_needs_every_bounded_payer():
    """An instalment shared by two bounded payers waits when either lacks money; the payer that lacked
    it stops (no overtaking, even by a claim it could pay), the other keeps paying."""
    parts = np.array([[50.0, 50.0], [10.0, 0.0], [0.0, 10.0]])
    paid, short = pay_in_order(parts, np.array([100.0, 40.0]))
    np.testing.assert_array_equal(paid, [False, True, False])
    np.testing.assert_array_equal(short, [False, True])


# ---------------------------------------------------------------- conservation and appropriations in scenarios


def year_cumsum(table, column):
    """(draw, program, payer) × year matrix of a column, years ascending."""
    for name in ("pipeline", "program", "payer"):
        table = table.set_column(table.schema.get_field_index(name), name, table[name].cast(pa.string()))
    t = table.sort_by(
        [
            ("pipeline", "ascending"),
            ("program", "ascending"),
            ("payer", "ascending"),
            ("draw", "ascending"),
            ("fiscal_year", "ascending"),
        ]
    )
    return t, t[column].to_numpy().reshape(-1, len(set(t["fiscal_year"].to_pylist())))


def test_conservation_in_every_draw(tmp_path, fixture_catalogue):
    """committed = paid + cancelled (lapses, rejections) + arrears + not yet due, cumulated, every draw and year."""
    scen = scenario(
        tmp_path,
        fixture_catalogue,
        windows="quarterly",
        approval_rate=0.8,
        lag_batches=0,
        review={"reviewers": 2, "days": {"dist": "triangular", "low": 2, "mode": 5, "high": 20}},
        payment_months=[6, 12],
        appropriations=[
            {"payer": "city", "amount": 300, "unit": "万元"},
            {"payer": "nanhu", "year": 2026, "amount": 0, "unit": "万元"},
        ],
    )
    ledgers, table = with_pipeline(scen)
    t, committed = year_cumsum(table, "committed_cny")
    paid = year_cumsum(table, "paid_cny")[1].cumsum(axis=1)
    cancelled = year_cumsum(table, "cancelled_cny")[1].cumsum(axis=1)
    arrears, nyd = year_cumsum(table, "arrears_cny")[1], year_cumsum(table, "not_yet_due_cny")[1]
    gap = committed.cumsum(axis=1) - paid - cancelled - arrears - nyd
    programs = np.array(t["program"].to_pylist()).reshape(gap.shape)[:, 0]
    exact = np.isin(programs, NO_ATTRITION + ("ALL",)) & (programs != "ALL")
    np.testing.assert_allclose(gap[exact], 0, atol=1e-4)
    assert (gap[~exact] > -1e-4).all()  # with attrition: commitments that will lapse, booked later by the engine
    assert arrears.max() > 0 and nyd.max() > 0 and pc.sum(table["backlog_applications"]).as_py() > 0
    rejected = sum(v.cancelled.sum() for k, v in ledgers.items() if k in NO_ATTRITION)
    assert rejected > 0  # rejections are cancelled (t.hnte and t.contract have no attrition)
    for pid in PROGRAMS:  # the ledger keeps its identity: outstanding = committed − paid − cancelled
        L = ledgers[pid]
        np.testing.assert_allclose(L.outstanding, np.cumsum(L.committed - L.cash - L.cancelled, axis=2))


def test_zero_appropriation_turns_every_due_payment_into_arrears(tmp_path, fixture_catalogue):
    payers = ["city"] + list(fixture_catalogue.geography.jurisdictions)
    scen = scenario(
        tmp_path,
        fixture_catalogue,
        appropriations=[
            {"payer": p, "amount": 0, "unit": "万元"}
            for p in payers
            if p in {"city", "nanhu", "xiuzhou", "jetz", "haining", "jiashan", "haiyan", "pinghu", "tongxiang", "port"}
        ],
    )
    ledgers, table = with_pipeline(scen)
    assert all(not L.cash.any() for L in ledgers.values())
    _, entitled = year_cumsum(table, "entitled_cny")
    _, arrears = year_cumsum(table, "arrears_cny")
    np.testing.assert_allclose(arrears, entitled.cumsum(axis=1), rtol=1e-12, atol=1e-6)
    all_rows = table.filter(pc.equal(table["program"], "ALL"))
    due = all_rows.filter(pc.greater(all_rows["entitled_cny"], 0))
    assert due.num_rows > 0 and all(due["exhausted"].to_pylist())
    assert all(d is not None for d in due["exhausted_on"].to_pylist())


def test_output_types_for_bi(tmp_path, fixture_catalogue):
    scen = scenario(tmp_path, fixture_catalogue, appropriations=[{"payer": "city", "amount": 100, "unit": "万元"}])
    _, table = with_pipeline(scen)
    assert table.schema.field("fiscal_year").type == pa.int16()
    assert table.schema.field("exhausted_on").type == pa.date32()
    assert pa.types.is_dictionary(table.schema.field("program").type)
    city = table.filter(pc.and_(pc.equal(table["program"], "ALL"), pc.equal(table["payer"], "city")))
    assert city["appropriation_cny"].to_pylist()[0] == 100 * 1e4
    rows_per_draw = table.num_rows // scen.spec.draws
    assert table.num_rows == rows_per_draw * scen.spec.draws  # dense: every draw has every row


# ---------------------------------------------------------------- validation


def bad(tmp_path, catalogue, pipelines, draws=10):
    spec = copy.deepcopy(BASE) | {"pipelines": pipelines, "draws": draws}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"scenario": spec}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InputError) as e:
        load_scenario(path, catalogue)
    return [str(p) for p in e.value.problems]


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"programs": ["t.nope"]}, "programs[0]", "not simulated"),
        (
            {"appropriations": [{"payer": "mars", "amount": 1, "unit": "万元"}]},
            "appropriations[0].payer",
            "unknown payer",
        ),
        (
            {"appropriations": [{"payer": "province", "amount": 1, "unit": "万元"}]},
            "appropriations[0].payer",
            "pays nothing",
        ),
        (
            {"appropriations": [{"payer": "city", "year": 2040, "amount": 1, "unit": "万元"}]},
            "appropriations[0].year",
            "outside the horizon",
        ),
        ({"appropriations": [{"payer": "city", "amount": 1, "unit": "美元"}]}, "appropriations[0]", "unknown unit"),
        ({"appropriations": [{"payer": "city", "amount": 1}]}, "appropriations[0].unit", "required field is missing"),
        ({"windows": [{"open": 3, "close": 6}, {"open": 5, "close": 8}]}, "windows", "overlap"),
        ({"windows": [{"open": 6, "close": 3}]}, "windows[0]", "closes"),
        ({"discipline": "priority"}, "priority", "needs 'priority'"),
        ({"priority": {"t.hnte": 0}}, "priority", "only used with discipline: priority"),
        ({"payment_months": [12, 6]}, "payment_months", "ascending"),
        ({"review": {"reviewers": 0}}, "review.reviewers", "greater than or equal to 1"),
        ({"review": {"days": {"dist": "uniform", "low": -3, "high": 5}}}, "review", "cannot be negative"),
        ({"payment_months": [13]}, "payment_months[0]", "less than or equal to 12"),
        ({"approval_rate": 1.5}, "approval_rate", "less than or equal to 1"),
    ],
)
def test_bad_pipelines_name_file_pipeline_and_field(tmp_path, fixture_catalogue, change, field, words):
    problems = bad(tmp_path, fixture_catalogue, [OPEN | change])
    assert problems, "expected a problem"
    text = "\n".join(problems)
    assert "bad.yaml" in text and "pipeline 'open'" in text and f"scenario.pipelines[0].{field}" in text
    assert words in text


def test_a_program_in_two_pipelines_is_refused(tmp_path, fixture_catalogue):
    problems = bad(tmp_path, fixture_catalogue, [OPEN, OPEN | {"name": "other", "programs": ["t.hnte"]}])
    assert any("already in pipeline 'open'" in p and "pipelines[1].programs[0]" in p for p in problems)


def test_pipeline_programs_are_simulated_per_applicant(tmp_path, fixture_catalogue):
    scen = scenario(tmp_path, fixture_catalogue, programs=["t.hnte"])
    flags = {sp.id: sp.per_applicant for sp in scen.programs}
    assert flags["t.hnte"] and not flags["t.rent"]
