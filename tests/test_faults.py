"""Bad inputs and faults, through the real CLI in a subprocess.

Every case checks the exit code, the words of the message, that no Python
traceback is printed, and a snapshot of the surrounding folders before and
after: nothing of the user's is lost and nothing is left behind. Add a case
here for every new fault found.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SMALL = REPO / "tests" / "scenarios" / "crn_base.yaml"
REFORM = REPO / "tests" / "scenarios" / "crn_cap.yaml"
CMD = [sys.executable, "-c", "import sys; sys.argv[0] = 'fiscal-sim'; from fiscal_sim.cli import main; main()"]
MPL = str(Path(tempfile.gettempdir()) / "fiscal-sim-tests-mpl")  # matplotlib's cache, outside the snapshots
SET = "programs.jzf2017-3.major-conversion.cap=1000,1500"


def cli(
    *args, cwd: Path, env: dict | None = None, preexec_fn=None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        CMD + [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", "MPLCONFIGDIR": MPL, **(env or {})},
        preexec_fn=preexec_fn,
    )


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below ``root``: kind, size and modification time (a symlink by its target)."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (
            ("link", os.readlink(p))
            if p.is_symlink()
            else ("dir",)
            if p.is_dir()
            else ("file", st.st_size, st.st_mtime_ns)
        )
    return out


def refused(r: subprocess.CompletedProcess, *words: str, code: int = 1) -> str:
    text = r.stdout + r.stderr
    assert r.returncode == code, text
    assert "Traceback" not in text, text
    for w in words:
        assert w.lower() in r.stderr.lower(), (w, r.stderr)
    return r.stderr


def no_leftovers(root: Path) -> None:
    left = [p for p in root.rglob(".*") if ".tmp-" in p.name or ".old-" in p.name]
    assert not left, left


@pytest.fixture(scope="module")
def a_run(tmp_path_factory) -> Path:
    """A run folder, copied into each case that reports on one."""
    folder = tmp_path_factory.mktemp("run")
    r = cli("run", SMALL, "--draws", 100, "-q", "--out", folder / "run", cwd=folder)
    assert r.returncode == 0, r.stderr
    return folder / "run"


@pytest.fixture
def place(tmp_path: Path, a_run: Path) -> dict[str, Path]:
    """A user's space: cwd/, home/, data/ with the scenario files and a run, and a spreadsheet folder."""
    (tmp_path / "cwd").mkdir()
    (tmp_path / "home").mkdir()
    data = tmp_path / "data" / "in"
    data.mkdir(parents=True)
    for f in SMALL.parent.iterdir():  # the scenarios with the register they read
        shutil.copy(f, data / f.name)
    (tmp_path / "cwd" / "budget").mkdir()
    (tmp_path / "cwd" / "budget" / "预算.xlsx").write_bytes(b"PK\x03\x04 workbook")
    (tmp_path / "cwd" / "notes.txt").write_text("keep me")
    shutil.copytree(a_run, tmp_path / "data" / "run")
    return {
        "root": tmp_path,
        "cwd": tmp_path / "cwd",
        "home": tmp_path / "home",
        "in": data,
        "base": data / SMALL.name,
        "reform": data / REFORM.name,
        "run": tmp_path / "data" / "run",
    }


def command(name: str, place: dict[str, Path], out) -> list:
    """The command line of ``name`` writing to ``--out out`` (report: of the run in cwd/run)."""
    base, reform = place["base"], place["reform"]
    return {
        "run": ["run", base, "--draws", 100, "-q", "--out", out],
        "compare": ["compare", base, reform, "--draws", 100, "-q", "--out", out],
        "sweep": ["sweep", base, "--set", SET, "--draws", 100, "-q", "--out", out],
        "sensitivity": ["sensitivity", base, "--draws", 100, "-q", "--out", out],
        "report": ["report", place["run"], "--out", out],
    }[name]


COMMANDS = ["run", "compare", "sweep", "sensitivity", "report"]


# ------------------------------------------------------------------ --out: what may be replaced

OUT_CASES = {
    "plain file": (lambda p: "notes.txt", ["is a file"]),
    "foreign folder": (lambda p: "budget", ["not a fiscal_sim result", "预算.xlsx"]),
    "dot": (lambda p: ".", ["working directory"]),
    "dotdot": (lambda p: "..", ["holds", "never replaces"]),
    "root": (lambda p: "/", ["root folder"]),
    "home": (lambda p: p["home"], ["home folder"]),
    "above home": (lambda p: p["root"], ["home folder"]),
    "input folder": (lambda p: p["read"], ["reads"]),
    "above input": (lambda p: p["read"].parent, ["reads"]),
    "symlink to foreign": (lambda p: "link", ["not a fiscal_sim result"]),
}


SOME_CASES = ["plain file", "foreign folder", "input folder"]


@pytest.mark.parametrize(
    "name,case", [("run", c) for c in OUT_CASES] + [(n, c) for n in COMMANDS[1:] for c in SOME_CASES]
)
def test_out_refused(name, case, place):
    """Every case for ``run``; the others share the same check (io/outdir), so a few cases each prove the wiring."""
    place["read"] = place["run"] if name == "report" else place["in"]
    (place["cwd"] / "link").symlink_to(place["cwd"] / "budget")
    target, words = OUT_CASES[case]
    before = snapshot(place["root"])
    r = cli(*command(name, place, target(place)), cwd=place["cwd"], env={"HOME": str(place["home"])})
    refused(r, "--out", *words)
    assert snapshot(place["root"]) == before


@pytest.mark.parametrize("name", COMMANDS)
def test_out_replaces_only_a_clean_result_of_its_kind(name, place):
    cwd = place["cwd"]
    r = cli(*command(name, place, "res"), cwd=cwd)
    assert r.returncode == 0, r.stderr
    m = json.loads((cwd / "res" / "manifest.json").read_text())
    assert m["kind"] == name and "manifest.json" in m["written"]
    r = cli(*command(name, place, "res"), cwd=cwd)  # its own previous result: replaced
    assert r.returncode == 0, r.stderr
    (cwd / "res" / "mine.csv").write_text("1,2")  # a foreign file beside it: refused, kept
    before = snapshot(place["root"])
    refused(cli(*command(name, place, "res"), cwd=cwd), "did not write", "mine.csv")
    assert snapshot(place["root"]) == before
    other = place["run"] if name == "sweep" else cwd / "swept"  # a result of another kind is refused
    if name != "sweep":
        shutil.copytree(place["run"], other)
        m = json.loads((other / "manifest.json").read_text())
        (other / "manifest.json").write_text(json.dumps(m | {"kind": "sweep"}))
    before = snapshot(place["root"])
    refused(cli(*command(name, place, other), cwd=cwd), "fiscal_sim", "result")
    assert snapshot(place["root"]) == before
    no_leftovers(place["root"])


def test_symlink_lands_at_its_target(place):
    cwd = place["cwd"]
    (cwd / "elsewhere").mkdir()
    (cwd / "ln").symlink_to(cwd / "elsewhere" / "res")
    r = cli(*command("run", place, "ln"), cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert (cwd / "ln").is_symlink() and (cwd / "elsewhere" / "res" / "summary.parquet").is_file()


def test_report_writes_beside_the_run_and_keeps_it(place):
    cwd, run = place["cwd"], place["run"]
    run_files = snapshot(run)
    for _ in range(2):
        r = cli("report", run, cwd=cwd)
        assert r.returncode == 0, r.stderr
    assert (run / "report" / "report.html").is_file()
    assert {k: v for k, v in snapshot(run).items() if not k.startswith("report")} == run_files
    before = snapshot(place["root"])
    refused(cli("report", run, "--out", run, cwd=cwd), "reads")
    assert snapshot(place["root"]) == before


@contextmanager
def tmpfs(folder: Path, options: str, why_skip: str):
    """A small tmpfs mounted on ``folder`` for the block; skip the test where mounting is not allowed."""
    folder.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {why_skip}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_mount_point_refused(place):
    with tmpfs(place["cwd"] / "mnt", "size=1m", "the mount-point rule is not exercised") as mnt:
        refused(cli(*command("run", place, mnt), cwd=place["cwd"]), "mount point")


def test_stale_temporary_folders_are_swept(place):
    cwd = place["cwd"]
    dead = cwd / ".res.tmp-deadbeef"
    dead.mkdir()
    (dead / ".fiscal_sim-partial").write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    users = cwd / ".res.tmp-mine"  # same pattern, no fiscal_sim marker: not ours, kept
    users.mkdir()
    r = cli(*command("run", place, "res"), cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert not dead.exists() and users.is_dir()


# ------------------------------------------------------------------ faults while writing


def _limit_file_size(limit: int):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_disk_full_keeps_previous_result(place):
    cwd = place["cwd"]
    assert cli(*command("run", place, "res"), cwd=cwd).returncode == 0
    before = snapshot(place["root"])
    r = cli(*command("run", place, "res"), cwd=cwd, preexec_fn=_limit_file_size(20_000))
    refused(r, "writing res failed", "previous result in res kept")
    assert snapshot(place["root"]) == before
    no_leftovers(place["root"])


def test_disk_full_on_a_tiny_tmpfs(place):
    with tmpfs(
        place["cwd"] / "small", "size=64k", "test_disk_full_keeps_previous_result covers it with ulimit -f"
    ) as mnt:
        refused(cli(*command("run", place, mnt / "res"), cwd=place["cwd"]), "disk full", "not created")
        assert list(mnt.iterdir()) == []


def test_read_only_folder(place):
    ro = place["cwd"] / "ro"
    if os.geteuid() == 0:  # root ignores permission bits: a read-only mount is the only read-only folder
        with tmpfs(ro, "ro,size=64k", "running as root, where permissions do not bind"):
            refused(cli(*command("run", place, ro / "res"), cwd=place["cwd"]), "read-only", "nothing written")
        return
    ro.mkdir()
    ro.chmod(0o555)
    try:
        refused(cli(*command("run", place, ro / "res"), cwd=place["cwd"]), "permission denied", "nothing written")
    finally:
        ro.chmod(0o755)


def test_non_finite_statistics_keep_previous_result(place):
    cwd = place["cwd"]
    assert cli(*command("run", place, "res"), cwd=cwd).returncode == 0
    huge = _scenario(
        place,
        lambda s: s["overrides"].update(
            {"jwf2017-4.talent-housing": {"parameters.purchase_amount_by_tier.national": 1e300}}
        ),
    )
    before = snapshot(place["root"])
    r = cli("run", huge, "--draws", 100, "-q", "--out", "res", cwd=cwd)
    refused(r, "infinite or nan", "previous result in res kept")
    assert "RuntimeWarning" not in r.stderr
    snap = snapshot(place["root"])
    assert {k: v for k, v in snap.items() if "huge" not in k} == {k: v for k, v in before.items() if "huge" not in k}


def test_unreadable_inputs(place):
    cwd = place["cwd"]
    refused(cli("run", "missing.yaml", "--out", "x", cwd=cwd), "missing.yaml", "no such file")
    refused(cli("run", place["in"], "--out", "x", cwd=cwd), "is a folder")
    assert not (cwd / "x").exists()


def test_debug_shows_the_traceback(place):
    r = cli("--debug", "run", "missing.yaml", cwd=place["cwd"])
    assert r.returncode == 1 and "Traceback" in r.stderr


# ------------------------------------------------------------------ interrupts and crashes


def _start_workers(place, out="res"):
    """A 2-worker run far too long to finish during the test (it is interrupted or killed)."""
    p = subprocess.Popen(
        CMD
        + [
            "run",
            str(SMALL),
            "--draws",
            "2000000",
            "--chunk-size",
            "2000",
            "--workers",
            "2",
            "-q",
            "--no-draws-ledger",
            "--out",
            out,
        ],
        cwd=place["cwd"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        kids = _children(p.pid)
        if len(kids) >= 2 and list(place["cwd"].glob(f".{out}.tmp-*")):
            time.sleep(0.5)
            return p, kids
        assert p.poll() is None, p.communicate()
        time.sleep(0.2)
    p.kill()
    pytest.fail("workers did not start")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def test_ctrl_c_on_two_workers(place):
    cwd = place["cwd"]
    assert cli(*command("run", place, "res"), cwd=cwd).returncode == 0
    before = snapshot(cwd / "res")
    p, kids = _start_workers(place)
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    took = time.monotonic() - t
    assert p.returncode == 130 and "Traceback" not in err, err
    assert "interrupted; nothing written; previous result in res kept" in err
    assert took < 5, took  # about 2 s asked; slack for a loaded CI machine
    assert snapshot(cwd / "res") == before
    no_leftovers(cwd)
    time.sleep(0.5)
    assert not [k for k in kids if _running(k)]


def test_kill_parent_workers_exit(place):
    p, kids = _start_workers(place)
    p.kill()
    p.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(_running(k) for k in kids):
        time.sleep(0.1)
    assert not [k for k in kids if _running(k)], "orphan workers"
    assert list(place["cwd"].glob(".res.tmp-*"))  # left by the killed run ...
    assert cli(*command("run", place, "res"), cwd=place["cwd"]).returncode == 0
    no_leftovers(place["cwd"])  # ... and removed by the next run into the same place


def test_kill_worker(place):
    cwd = place["cwd"]
    assert cli(*command("run", place, "res"), cwd=cwd).returncode == 0
    before = snapshot(cwd / "res")
    p, kids = _start_workers(place)
    os.kill(kids[0], signal.SIGKILL)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1 and "Traceback" not in err, err
    assert "worker process died" in err and "previous result in res kept" in err
    assert snapshot(cwd / "res") == before
    no_leftovers(cwd)


# ------------------------------------------------------------------ hostile or careless input


def _scenario(place, change, name="huge.yaml") -> Path:
    data = yaml.safe_load(place["base"].read_text(encoding="utf-8"))
    data["scenario"].setdefault("overrides", {})
    change(data["scenario"])
    path = place["in"] / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_alias_bomb_is_refused_in_little_memory(place):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    bomb = place["in"] / "bomb.yaml"
    bomb.write_text("\n".join(lines) + "\nscenario: *a9\n")
    assert bomb.stat().st_size < 1024
    # a small Python in between starts the command and reports its peak memory: a child forked straight from
    # this (large) test process would count our own resident size in its ru_maxrss (Linux keeps it across exec)
    probe = (
        "import os, subprocess, sys; p = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL); "
        "_, status, usage = os.wait4(p.pid, 0); print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)"
    )
    r = subprocess.run(
        [sys.executable, "-c", probe, *CMD, "validate", str(bomb)], cwd=place["cwd"], capture_output=True, text=True
    )
    code, maxrss_kb = map(int, r.stdout.split())
    text = r.stderr
    assert code == 1 and "Traceback" not in text
    assert "aliases" in text and "bomb.yaml" in text
    assert maxrss_kb < 400 * 1024, maxrss_kb  # kilobytes: the 10^10 values were never built


@pytest.mark.parametrize(
    "text,words",
    [
        ("scenario: &a\n  name: *a\n", ["alias refers to itself"]),
        ("scenario: " + "[" * 50_000 + "]" * 50_000 + "\n", ["nested too deeply"]),
        ("# padding\n" * 500_000 + "scenario: {}\n", ["larger than"]),
    ],
)
def test_hostile_yaml(place, text, words):
    bad = place["in"] / "bad.yaml"
    bad.write_text(text)
    refused(cli("run", bad, "--out", "x", cwd=place["cwd"]), "bad.yaml", *words)
    assert not (place["cwd"] / "x").exists()


def test_encodings(place):
    text = place["base"].read_text(encoding="utf-8").replace("description:", "description: 测试 —")
    gbk = place["in"] / "gbk.yaml"
    gbk.write_bytes(text.encode("gb18030"))
    refused(
        cli("run", gbk, "--out", "x", cwd=place["cwd"]),
        "gbk.yaml",
        "not UTF-8 (looks like GBK/GB18030)",
        "save it as UTF-8",
    )
    bom = place["in"] / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    r = cli("run", bom, "--draws", 100, "-q", "--out", "x", cwd=place["cwd"])
    assert r.returncode == 0, r.stderr


def test_gbk_register_is_named(place):
    reg = place["in"] / "crn_register.csv"
    reg.write_bytes(reg.read_text(encoding="utf-8").replace("SYNTHETIC test row", "测试").encode("gb18030"))
    refused(cli("run", place["base"], "--out", "x", cwd=place["cwd"]), "crn_register.csv", "looks like GBK")
    assert not (place["cwd"] / "x").exists()


def test_gbk_program_file_is_named(place, tmp_path):
    root = tmp_path / "scen"
    shutil.copytree(REPO / "scenarios" / "catalogue", root / "catalogue")
    shutil.copytree(REPO / "scenarios" / "programs", root / "programs")
    prog = root / "programs" / "jiazhengfa_2017_3.yaml"
    prog.write_bytes(prog.read_text(encoding="utf-8").encode("gb18030"))
    shutil.copy(SMALL, root / "s.yaml")
    refused(cli("run", root / "s.yaml", "--out", "x", cwd=place["cwd"]), "jiazhengfa_2017_3.yaml", "looks like GBK")


NON_FINITE = [  # (change, field named in the message); the file-level fields are checked before the overrides
    {
        "budget amount": (lambda s: s["budgets"][0].update(amount=float("inf")), "budgets[0].amount"),
        "shock sigma": (lambda s: s["shock"].update(sigma=float("nan")), "shock.sigma"),
        "cost sharing": (
            lambda s: s.update(cost_sharing={"existing_regime": {"city_proper": {"city": float("inf"), "local": 0.4}}}),
            "cost_sharing.existing_regime.city_proper.city",
        ),
    },
    {
        "override": (
            lambda s: s["overrides"].update({"jzf2017-3.major-conversion": {"parameters.cap": float("-inf")}}),
            "parameters.cap",
        ),
        "uptake override": (
            lambda s: s["overrides"].update({"jwf2017-4.talent-housing": {"uptake.count.growth": float("nan")}}),
            "uptake.count.growth",
        ),
    },
]


@pytest.mark.parametrize("cases", NON_FINITE, ids=["file fields", "overrides"])
def test_inf_nan_in_scenario(place, cases):
    def change(s):
        for f, _ in cases.values():
            f(s)

    bad = _scenario(place, change, "bad.yaml")
    err = refused(cli("validate", bad, cwd=place["cwd"]), f"{len(cases)} problem(s)")
    lines = [ln for ln in err.splitlines() if "bad.yaml" in ln]
    for _, field in cases.values():
        assert any(field in ln and "finite number" in ln for ln in lines), (field, err)


@pytest.mark.parametrize(
    "args,words",
    [
        (["--set", "programs.jzf2017-3.major-conversion.cap=300,.inf"], ["not a finite number"]),
        (["--set", "programs.jzf2017-3.major-conversion.cap=nan"], ["not a finite number"]),
        (["--range", "programs.jzf2017-3.major-conversion.cap=0:inf", "--design", "lhs", "--samples", "2"], ["finite"]),
    ],
)
def test_inf_nan_in_sweep(place, args, words):
    refused(cli("sweep", place["base"], *args, "--out", "x", cwd=place["cwd"]), *words)
    assert not (place["cwd"] / "x").exists()


@pytest.mark.parametrize(
    "program,value,words",
    [
        ("jzf2017-3.major-conversion", "fai=500美元", ["unknown unit '美元'", "万元"]),
        ("jzf2017-3.major-conversion", "fai=-5", ["negative"]),
        ("jzf2017-3.major-conversion", "fai=inf", ["not a finite number"]),
        ("jzf2017-3.major-conversion", "fai=1e400", ["not a finite number"]),
        ("jzf2017-3.rd-headquarters", "grant_share=1.5", ["outside 0–1"]),
        ("jzf2017-3.rd-headquarters", "grant_share=nan", ["not a finite number"]),
    ],
)
def test_calc_inputs(place, program, value, words):
    refused(cli("calc", program, "-i", value, cwd=place["cwd"]), "jiazhengfa_2017_3.yaml", "inputs.", *words)


@pytest.mark.parametrize(
    "lines,words",
    [
        (
            [
                {"payer": "city", "program": "ALL", "amount": 1, "year": 2040},
                {"payer": "city", "program": "ALL", "amount": 1, "unit": "美元"},
                {"payer": "city", "program": "jzbf2024-6.nri-performance-reward", "amount": 1},
            ],
            [
                "3 problem(s)",
                "budgets[2].year",
                "outside the horizon",
                "budgets[3].unit",
                "unknown unit",
                "budgets[4].program",
                "not in the scenario",
            ],
        ),
        (
            [{"payer": "province", "program": "jwf2017-4.talent-housing", "amount": 1}],
            ["1 problem(s)", "budgets[2].payer", "pays nothing"],
        ),
    ],
    ids=["year, unit, program", "payer"],
)
def test_budget_lines_that_match_nothing(place, lines, words):
    bad = _scenario(place, lambda s: s["budgets"].extend(lines), "bad.yaml")
    refused(cli("validate", bad, cwd=place["cwd"]), "bad.yaml", *words)


def test_workers_and_chunk_size(place):
    cwd = place["cwd"]
    refused(cli(*command("run", place, "x"), "--workers", 0, cwd=cwd), "--workers 0", "at least 1")
    r = cli(*command("run", place, "x"), "--workers", 4096, cwd=cwd)
    assert r.returncode == 0 and "using" in r.stderr and "CPU" in r.stderr, r.stderr
    refused(
        cli("run", place["base"], "--draws", 10_000_000, "--chunk-size", 10_000_000, "--out", "y", cwd=cwd),
        "--chunk-size 10000000",
        "GB",
        "available",
    )
    assert not (cwd / "y").exists()
