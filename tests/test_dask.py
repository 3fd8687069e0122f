"""Executors: a Dask LocalCluster gives the local pool's results bit for bit, whatever the completion order,
even when a worker dies mid-run; what workers send back pickles again."""

from __future__ import annotations

import os
import pickle
import random
import signal
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from fiscal_sim.analysis.compare import compare
from fiscal_sim.analysis.sweep import plan, sweep
from fiscal_sim.orchestrate.executors import Executor, PoolExecutor
from fiscal_sim.orchestrate.run import run, simulate
from fiscal_sim.scenario import load_scenario
from fiscal_sim.stats import Accumulator

HERE = Path(__file__).parent / "scenarios"
BASE, CAP = HERE / "crn_base.yaml", HERE / "crn_cap.yaml"


@pytest.fixture(scope="module")
def base():
    return load_scenario(BASE).with_settings(draws=400, chunk_size=100)


@pytest.fixture(scope="module")
def dask_ex():
    pytest.importorskip("distributed")
    from fiscal_sim.orchestrate.executors import DaskExecutor

    ex = DaskExecutor(2)
    yield ex
    ex.close()


def parts(folder: Path) -> dict[str, object]:
    return {str(p.relative_to(folder)): pq.read_table(p) for p in sorted(folder.rglob("part-*.parquet"))}


def same_parts(a: Path, b: Path) -> None:
    pa_, pb = parts(a), parts(b)
    assert pa_ and list(pa_) == list(pb)
    for k in pa_:
        assert pa_[k].equals(pb[k]), k


def test_run_on_dask_equals_the_pool(base, dask_ex, tmp_path):
    pool = run(base, tmp_path / "pool", workers=2)
    dask = run(base, tmp_path / "dask", executor=dask_ex)
    assert dask.summary.equals(pool.summary)
    same_parts(tmp_path / "pool" / "draws", tmp_path / "dask" / "draws")
    names = [p.name for p in (tmp_path / "dask" / "draws").rglob("*.parquet")]
    assert set(names) == {f"part-{s:09d}.parquet" for s in range(0, 400, 100)}


def test_compare_and_sweep_on_dask_equal_the_pool(base, dask_ex, tmp_path):
    reform = load_scenario(CAP)
    a = compare(base, reform, tmp_path / "cp", workers=2)
    b = compare(base, reform, tmp_path / "cd", executor=dask_ex)
    assert a.table.equals(b.table)
    same_parts(tmp_path / "cp" / "compare_draws", tmp_path / "cd" / "compare_draws")
    small = base.with_settings(draws=200)
    p = plan(small, ["uptake.jwf2017-4.talent-housing.growth=0,0.05"], [])
    assert sweep(small, p, tmp_path / "sp", workers=2).table.equals(
        sweep(small, p, tmp_path / "sd", executor=dask_ex).table
    )


def test_a_worker_killed_mid_run_gives_the_same_results(base, dask_ex, tmp_path):
    ref = run(base, tmp_path / "ref", workers=1)
    pids = list(dask_ex.client.run(os.getpid).values())
    killed = []

    def kill_once(_n: int) -> None:  # after the first chunk comes back, one worker dies (its nanny restarts it)
        if not killed:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    got = run(base, tmp_path / "killed", executor=dask_ex, progress=kill_once)
    assert killed and got.summary.equals(ref.summary)
    same_parts(tmp_path / "ref" / "draws", tmp_path / "killed" / "draws")


class Shuffled(Executor):
    """Runs the tasks in a random order (chunks completing out of order)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def map(self, fn, state, tasks, window=None):
        tasks = list(tasks)
        self.rng.shuffle(tasks)
        for t in tasks:
            yield fn(state, *t)


@pytest.mark.parametrize("seed", [1, 2])
def test_chunks_completing_in_shuffled_order_give_identical_statistics(base, seed):
    ref, lay, _ = simulate(base, executor=PoolExecutor(1))
    got, _, _ = simulate(base, executor=Shuffled(seed))
    for a, b in zip(ref.moments(), got.moments()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref.counts(), got.counts())
    np.testing.assert_array_equal(ref.quantiles([0.5, 0.9], 0.95)[0], got.quantiles([0.5, 0.9], 0.95)[0])


def test_accumulator_round_trips_through_pickle_twice():
    rng = np.random.default_rng(0)
    acc = Accumulator(5)
    acc.add([(0, 0, 30), (1, 30, 20)], np.where(rng.random((5, 50)) < 0.5, rng.lognormal(10, 2, (5, 50)), 0.0))
    twice = pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(acc))))
    once = acc.detached()
    for other in (twice, once):
        merged = Accumulator(5)
        merged.merge(other)
        np.testing.assert_array_equal(merged.counts(), acc.counts())
        np.testing.assert_array_equal(merged.moments()[0], acc.moments()[0])
    acc.reset()  # a worker's reset must not reach copies already handed out
    assert once.n == 50 and twice.n == 50


def test_the_driver_gives_parts_in_task_order_whatever_the_completion_order():
    from fiscal_sim.orchestrate.driver import drive

    seen = []
    got = list(drive(Shuffled(3), _square, 10, [(i,) for i in range(12)], progress=seen.append))
    assert [t for t, _ in got] == [(i,) for i in range(12)] and [p for _, p in got] == [10 + i * i for i in range(12)]
    assert sorted(seen) == [(i,) for i in range(12)] and seen != sorted(seen)  # progress in completion order


def _square(offset: int, i: int) -> int:
    return offset + i * i


@pytest.mark.parametrize("ex", ["dask", "shuffled"])
def test_sensitivity_and_backtest_on_any_executor_equal_in_process(base, ex, request, tmp_path):
    """The jobs moved onto the driver: sensitivity's per-draw matrices and the backtest's forecast draws are the
    same bit for bit on Dask and in shuffled completion order as in this process."""
    from fiscal_sim.analysis.sensitivity import collect
    from fiscal_sim.calibrate.backtest import run_backtest
    from fiscal_sim.calibrate.history import read_history

    executor = request.getfixturevalue("dask_ex") if ex == "dask" else Shuffled(5)
    ref = collect(base)
    got = collect(base, executor=executor)
    for a, b in zip(ref[2:], got[2:]):
        np.testing.assert_array_equal(a, b)
    assert ref[:2] == got[:2]
    root = Path(__file__).parents[1] / "scenarios"
    scen = load_scenario(root / "baseline.yaml")
    hist = read_history(root / "history" / "awards_synthetic.csv", scen.catalogue)
    a = run_backtest(hist, scen, 2023, tmp_path / "a", draws=120)
    b = run_backtest(hist, scen, 2023, tmp_path / "b", draws=120, executor=executor)
    assert a.table.equals(b.table)


def test_sensitivity_command_takes_a_dask_executor(tmp_path):
    """`fiscal-sim sensitivity --executor dask` writes the same table as the local pool."""
    pytest.importorskip("distributed")
    from typer.testing import CliRunner

    from fiscal_sim.cli import app

    for kind in ("dask", "pool"):
        r = CliRunner().invoke(
            app,
            [
                "sensitivity",
                str(BASE),
                "--draws",
                "300",
                "--executor",
                kind,
                "--workers",
                "2",
                "--out",
                str(tmp_path / kind),
                "-q",
            ],
        )
        assert r.exit_code == 0, r.output
    a, b = (pq.read_table(tmp_path / k / "sensitivity.parquet") for k in ("dask", "pool"))
    assert a.num_rows > 0 and a.equals(b)
