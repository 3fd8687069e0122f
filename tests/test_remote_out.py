"""``--out`` as a URL: a run on a real S3 API (moto's server on 127.0.0.1) equals a local run bit for bit, writes
``_SUCCESS`` last, leaves no ``_SUCCESS`` when it fails, and a retried chunk overwrites its own part."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from fiscal_sim.analysis.compare import compare
from fiscal_sim.analysis.sweep import plan, sweep
from fiscal_sim.errors import FiscalSimError, Interrupted
from fiscal_sim.io import target
from fiscal_sim.io.outdir import OutputFolderError
from fiscal_sim.export import write_csv
from fiscal_sim.io.target import LATEST, SUCCESS, Remote, parse, readable, remote_files
from fiscal_sim.orchestrate.executors import Executor
from fiscal_sim.orchestrate.run import run
from fiscal_sim.scenario import load_scenario

HERE = Path(__file__).parent / "scenarios"
BASE = HERE / "crn_base.yaml"
BUCKET = "fiscal-sim-test"
ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}


@pytest.fixture(scope="module")
def s3():
    """A URL maker for prefixes in a bucket on a moto S3 server (dummy credentials in the environment, so
    worker processes started after this have them too)."""
    boto3 = pytest.importorskip("boto3")
    server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in ENV.items():
            mp.setenv(k, v)
        srv = server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        srv.start()
        host, port = srv.get_host_and_port()
        boto3.client("s3", endpoint_url=f"http://{host}:{port}").create_bucket(Bucket=BUCKET)
        yield lambda prefix, bucket=BUCKET: f"s3://{bucket}/{prefix}?endpoint_override={host}:{port}&scheme=http"
        srv.stop()


@pytest.fixture(scope="module")
def base():
    return load_scenario(BASE).with_settings(draws=400, chunk_size=100)


@pytest.fixture(scope="module")
def local(base, tmp_path_factory):
    folder = tmp_path_factory.mktemp("local") / "run"
    return folder, run(base, folder, workers=1)


def fs_path(r: Remote, *names: str):
    fs, path = r.fs_path
    return fs, "/".join([path, *names])


def read_json(r: Remote, name: str) -> dict:
    fs, path = fs_path(r, name)
    with fs.open_input_stream(path) as f:
        return json.loads(f.read())


def parts(location: Path | Remote) -> dict[str, object]:
    """Every per-draw part, by its path below ``draws/``."""
    if isinstance(location, Path):
        return {
            p.relative_to(location / "draws").as_posix(): pq.read_table(p)
            for p in sorted((location / "draws").rglob("*.parquet"))
        }
    fs, path = fs_path(location, "draws")
    return {f: pq.read_table(f"{path}/{f}", filesystem=fs) for f in remote_files(location.child("draws"))}


def same_parts(a: Path | Remote, b: Path | Remote) -> None:
    pa_, pb = parts(a), parts(b)
    assert pa_ and list(pa_) == list(pb)
    for k in pa_:
        assert pa_[k].equals(pb[k]), k


def test_parse_local_paths_and_urls(tmp_path):
    assert parse("outputs/x") == Path("outputs/x")
    assert parse(f"file://{tmp_path}/x") == tmp_path / "x"
    assert isinstance(parse("s3://bucket/prefix?region=us-east-1"), Remote)
    for bad, words in (
        ("bogus://x/y", "not a folder or a storage URL"),
        ("s3://b/p?nonsense=1", "nonsense"),
        ("s3://", "names no bucket"),
    ):
        with pytest.raises(OutputFolderError) as e:
            parse(bad)
        assert f"--out {bad}" in str(e.value) and words in str(e.value) and "\n" not in str(e.value)


def test_secrets_in_a_url_are_masked():
    assert target.shown("s3://AK:SECRET@b/p?endpoint_override=h:1") == "s3://***@b/p?endpoint_override=h:1"
    assert target.shown("gs://b/p?access_token=TOKEN&scheme=http") == "gs://b/p?access_token=***&scheme=http"
    assert target.shown("s3://b/p?region=x") == "s3://b/p?region=x"


def test_run_on_s3_equals_a_local_run(s3, base, local):
    folder, here = local
    there = run(base, s3("eq/runs"), workers=2)
    assert isinstance(there.out, Remote) and there.out.uri == s3(f"eq/runs/{there.run_id}")
    fs, path = fs_path(there.out)
    for name in ("summary", "programs", "payers", "jurisdictions", "cost_shares"):
        assert pq.read_table(f"{path}/{name}.parquet", filesystem=fs).equals(pq.read_table(folder / f"{name}.parquet"))
    same_parts(folder, there.out)
    # the hive dataset as BI tools read it over S3 (pyarrow.dataset), queried with DuckDB
    con = duckdb.connect()
    con.register("remote", ds.dataset(f"{path}/draws", filesystem=fs, partitioning="hive"))
    got = con.sql("SELECT * EXCLUDE (fiscal_year), fiscal_year::INT FROM remote ORDER BY ALL").fetchall()
    want = con.sql(
        f"SELECT * EXCLUDE (fiscal_year), fiscal_year::INT FROM read_parquet('{folder}/draws/**/*.parquet', "
        "hive_partitioning = true) ORDER BY ALL"
    ).fetchall()
    assert len(got) > 1000 and got == want
    assert read_json(there.out, "headline.json") == json.loads((folder / "headline.json").read_text())
    assert there.headline["top_tail"][0]["ranked_by"] == "tail_mean"
    ok = read_json(there.out, SUCCESS)
    listed = remote_files(there.out)
    assert ok["run_id"] == there.run_id and ok["written"] == listed and ok["kind"] == "run"
    m = read_json(there.out, "manifest.json")
    assert m["written"] == listed and m["run_id"] == there.run_id and m["location"] == str(there.out)
    assert read_json(Remote(s3("eq/runs")), LATEST)["run_id"] == there.run_id


def test_success_is_the_last_object_written_then_latest(s3, base, monkeypatch):
    order: list[str] = []
    real = target._output

    def recording(fs, path):
        order.append(path)
        return real(fs, path)

    monkeypatch.setattr(target, "_output", recording)
    result = run(base, s3("order"), executor=Executor())  # in this process: the workers' writes are recorded too
    _, prefix = fs_path(result.out)
    mine = [p for p in order if p.startswith(prefix + "/")]
    assert len(mine) == len(remote_files(result.out)) and mine[-1] == f"{prefix}/{SUCCESS}"
    assert order[-1] == fs_path(Remote(s3("order")), LATEST)[1] and order[-2] == mine[-1]
    assert mine.index(f"{prefix}/manifest.json") > max(i for i, p in enumerate(mine) if "/draws/" in p)


def test_a_failed_write_leaves_no_success_and_deletes_nothing(s3, base, monkeypatch):
    real = target._output
    calls = []

    def failing(fs, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("When uploading part: AWS Error SLOW_DOWN\nReduce your request rate.")
        return real(fs, path)

    monkeypatch.setattr(target, "_output", failing)
    with pytest.raises(FiscalSimError) as e:
        run(base, s3("fail-write"), executor=Executor())
    msg = str(e.value)
    assert "\n" not in msg and "SLOW_DOWN" in msg and f"without {SUCCESS}" in msg
    left = remote_files(Remote(s3("fail-write")))
    assert len(left) == 2 and all("/draws/" in f for f in left)  # what it wrote is still there
    assert not any(f.endswith(SUCCESS) or f == LATEST for f in left)


def test_an_error_in_a_chunk_leaves_no_success(s3, base, monkeypatch):
    import fiscal_sim.orchestrate.run as orun

    real = orun.simulate_chunk

    def broken(scen, start, stop, **kw):
        if start == 200:
            raise ValueError("chunk 200 broke")
        return real(scen, start, stop, **kw)

    monkeypatch.setattr(orun, "simulate_chunk", broken)
    with pytest.raises(FiscalSimError, match=f"chunk 200 broke.*without {SUCCESS}, so readers ignore it"):
        run(base, s3("fail-chunk"), executor=Executor())
    left = remote_files(Remote(s3("fail-chunk")))
    assert left and not any(f.endswith(SUCCESS) for f in left) and LATEST not in left


def test_ctrl_c_leaves_no_success(s3, base, monkeypatch):
    import fiscal_sim.orchestrate.run as orun

    def interrupted(scen, start, stop, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(orun, "simulate_chunk", interrupted)
    with pytest.raises(Interrupted, match=f"^interrupted; s3://.*without {SUCCESS}") as e:
        run(base, s3("ctrl-c"), executor=Executor())
    assert e.value.exit_code == 130 and remote_files(Remote(s3("ctrl-c"))) == []


class Retrying(Executor):
    """Runs every task twice, as Dask does when a worker is lost after writing its parts: the retry's result
    counts."""

    def map(self, fn, state, tasks, window=None):
        for t in tasks:
            fn(state, *t)
            yield fn(state, *t)


def test_a_retried_chunk_overwrites_its_own_part(s3, base, local):
    result = run(base, s3("retry"), executor=Retrying())
    assert result.summary.equals(local[1].summary)
    same_parts(local[0], result.out)  # one part per chunk and year: no duplicates


def test_dask_workers_write_their_parts_to_s3(s3, base, local):
    pytest.importorskip("distributed")
    from fiscal_sim.orchestrate.executors import DaskExecutor

    ex = DaskExecutor(2)  # its worker processes inherit the credentials; they open the filesystem from the URL
    try:
        result = run(base, s3("dask"), executor=ex)
    finally:
        ex.close()
    assert result.summary.equals(local[1].summary)
    same_parts(local[0], result.out)


def test_check_refuses_a_missing_bucket_and_a_foreign_latest(s3):
    with pytest.raises(OutputFolderError, match="bucket no-such-bucket not found"):
        target.check(parse(s3("p", bucket="no-such-bucket")), "run")
    fs, path = fs_path(Remote(s3("foreign")), LATEST)
    with fs.open_output_stream(path) as f:
        f.write(b"someone else's file")
    with pytest.raises(OutputFolderError, match="LATEST that fiscal_sim did not write"):
        target.check(parse(s3("foreign")), "run")


def test_readers_read_a_complete_run_only(s3, base, local, tmp_path):
    result = run(base, s3("read"), workers=1)
    write_csv(local[0], tmp_path / "local")
    for where in (s3("read"), result.out.uri):  # the prefix (its LATEST run), or the run itself
        with readable(where) as folder:
            assert not (folder / "draws").exists()  # readers of a run folder need only its small files
            write_csv(folder, tmp_path / "remote")
        for f in (tmp_path / "local").glob("*.csv"):
            assert f.read_bytes() == (tmp_path / "remote" / f.name).read_bytes(), f.name
    fs, path = fs_path(Remote(s3("partial/0123456789ab/draws")), "part-000000000.parquet")
    with fs.open_output_stream(path) as f:
        f.write(b"a part of a run that failed")
    for where in (s3("partial"), s3("partial/0123456789ab")):
        with pytest.raises(OutputFolderError, match=f"no complete run there.*a run that failed has no {SUCCESS}"):
            with readable(where):
                pass


def test_compare_and_sweep_on_s3_equal_local_ones(s3, base, tmp_path):
    reform = load_scenario(HERE / "crn_cap.yaml")
    here = compare(base, reform, tmp_path / "cmp", executor=Executor())
    there = compare(base, reform, s3("cmp"), executor=Executor())
    assert isinstance(there.out, Remote) and there.table.equals(here.table)
    with readable(s3("cmp")) as folder:  # the compare's small files, through LATEST
        for f in ("compare.parquet", "baseline/summary.parquet", "reform/summary.parquet"):
            assert pq.read_table(folder / f).equals(pq.read_table(tmp_path / "cmp" / f)), f
    fs, path = fs_path(there.out, "compare_draws")
    names = remote_files(there.out.child("compare_draws"))
    assert names == sorted(p.name for p in (tmp_path / "cmp" / "compare_draws").glob("*.parquet"))
    for n in names:
        assert pq.read_table(f"{path}/{n}", filesystem=fs).equals(pq.read_table(tmp_path / "cmp" / "compare_draws" / n))
    assert read_json(there.out, SUCCESS)["kind"] == "compare"
    small = base.with_settings(draws=100)
    p = plan(small, ["uptake.jwf2017-4.talent-housing.growth=0,0.05"], [])
    swept = sweep(small, p, s3("sweep"), executor=Executor())
    assert swept.table.equals(sweep(small, p, tmp_path / "sweep", executor=Executor()).table)
    assert {"sweep.parquet", "points.parquet", "point-0/summary.parquet", SUCCESS} <= set(remote_files(swept.out))


def cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "fiscal-sim"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **ENV})


def test_cli_runs_to_a_url_and_refuses_a_bad_one(s3, tmp_path):
    url = s3("cli").replace("s3://", "s3://testing:TOPSECRET@")  # credentials in the URL: never shown or recorded
    r = cli("run", str(BASE), "--draws", "200", "-q", "--out", url)
    assert r.returncode == 0, r.stderr
    latest = read_json(Remote(s3("cli")), LATEST)
    run_prefix = Remote(s3(f"cli/{latest['run_id']}"))
    assert f"cli/{latest['run_id']}" in r.stdout and "TOPSECRET" not in r.stdout
    m = read_json(run_prefix, "manifest.json")
    assert "TOPSECRET" not in json.dumps(m) and any("s3://***@" in a for a in m["command"])
    r = cli("compare", str(BASE), str(HERE / "crn_cap.yaml"), "--draws", "200", "--out", s3("cli-compare"))
    assert r.returncode == 0 and "cli-compare/" in r.stdout and "all payers:" in r.stdout, r.stderr  # its headline
    assert read_json(Remote(s3("cli-compare")), LATEST)["run_id"] in r.stdout
    r = cli("export", s3("cli"), "--csv", str(tmp_path / "csv"))
    assert r.returncode == 0 and (tmp_path / "csv" / "summary.csv").is_file(), r.stderr
    r = cli("report", s3("cli"))
    assert (
        r.returncode == 1
        and r.stderr.strip() == f"error: RUN_DIR {s3('cli')} is a URL: give --out FOLDER for the report"
    )
    for bad, words in (
        ("bogus://x/y", "--out bogus://x/y: not a folder or a storage URL"),
        (s3("p", bucket="no-such-bucket"), "bucket no-such-bucket not found"),
    ):
        r = cli("run", str(BASE), "--draws", "200", "-q", "--out", bad)
        assert r.returncode == 1 and "Traceback" not in r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], r.stderr


def test_bi_tools_read_the_ledger_in_place_with_pyarrow_and_duckdb(s3, base, local):
    """The README's way to read a run's ledger at a URL: a pyarrow hive dataset, queried by DuckDB, equals the
    local run's ledger."""
    folder, _ = local
    there = run(base, s3("bi"), executor=Executor())
    fs, path = fs_path(there.out, "draws")
    remote = ds.dataset(path, filesystem=fs, partitioning="hive", format="parquet")  # noqa: F841 (read by DuckDB by name)
    ((n, cash),) = duckdb.sql("SELECT count(*), sum(cash_cny) FROM remote").fetchall()
    here = ds.dataset(folder / "draws", partitioning="hive", format="parquet")  # noqa: F841 (read by DuckDB by name)
    ((n_local, cash_local),) = duckdb.sql("SELECT count(*), sum(cash_cny) FROM here").fetchall()
    assert n == n_local > 0 and cash == pytest.approx(cash_local, rel=1e-12)
