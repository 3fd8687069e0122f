"""The planners' workbench through Starlette's TestClient: scenario form, runs, downloads, registry, security."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytest.importorskip("starlette")
pytest.importorskip("multipart")
from hypothesis import given, settings, strategies as st  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from fiscal_sim import headline  # noqa: E402
from fiscal_sim.errors import FiscalSimError  # noqa: E402
from fiscal_sim.web.app import create_app  # noqa: E402
from fiscal_sim.registry import Registry  # noqa: E402
from fiscal_sim.web.scenarios import Library, NotFound  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DRAWS = 200


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("workbench")


@pytest.fixture(scope="module")
def client(ws):
    with TestClient(create_app(ws, who="tester")) as c:
        c.get("/")  # the CSRF cookie
        yield c


def csrf(c: TestClient) -> str:
    return c.cookies.get("fs_csrf")


PLAN_2024 = "嘉政办发〔2024〕7号"


def form(c: TestClient, name: str, city_wan: str, renew: bool, **extra: str) -> dict[str, str]:
    """The fields a planner changes (the rest keep what the page showed); ``renew``: the 2024 plan after expiry."""
    data = {
        "csrf": csrf(c),
        "mode": "dup",
        "name": name,
        "description": "what-if from the test",
        "budgets.0.payer": "city",
        "budgets.0.program": "ALL",
        "budgets.0.amount": city_wan,
        "budgets.1.payer": "ALL",
        "budgets.1.program": "jwf2017-4.talent-housing",
        "budgets.1.amount": "10000",
    }
    return data | {f"expiry.{PLAN_2024}": "renew" if renew else "lapse"} | extra


def start(c: TestClient, src: str, name: str, draws: int = DRAWS) -> str:
    r = c.post("/runs", data={"csrf": csrf(c), "src": src, "name": name, "draws": str(draws)}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["location"].rsplit("/", 1)[1]


def wait(c: TestClient, run_id: str, timeout: float = 120) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        s = c.get(f"/runs/{run_id}/status.json").json()
        if s["status"] not in ("queued", "running"):
            return s
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still {s['status']} after {timeout}s")


def cli_summary(scenario: Path, out: Path, draws: int = DRAWS) -> list[dict]:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fiscal_sim.cli",
            "run",
            str(scenario),
            "--draws",
            str(draws),
            "--out",
            str(out),
            "--quiet",
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return sorted(pq.read_table(out / "summary.parquet").to_pylist(), key=_key)


def _key(r: dict) -> tuple:
    return tuple(str(r[k]) for k in ("program", "payer", "vintage", "measure", "period", "fiscal_year"))


def same_summary(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b) and [_key(r) for r in a] == [_key(r) for r in b]
    for ra, rb in zip(a, b):
        for k, v in ra.items():
            if isinstance(v, float):
                assert rb[k] == pytest.approx(v, rel=1e-12, abs=1e-6, nan_ok=True), (k, _key(ra))
            else:
                assert rb[k] == v, (k, _key(ra))


def test_create_edit_run_and_download_workbook(client, ws):
    r = client.post(
        "/scenarios/repo/baseline/save", data=form(client, "city3yi_lapse", "30000", False), follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/scenarios/ws/city3yi_lapse"
    import yaml

    saved = yaml.safe_load((ws / "scenarios" / "city3yi_lapse.yaml").read_text(encoding="utf-8"))["scenario"]
    assert saved["extends"] == str((REPO / "scenarios" / "baseline.yaml").resolve())
    assert saved["budgets"][0] == {"payer": "city", "program": "ALL", "amount": 30000, "unit": "万元"}
    renewals = {
        PLAN_2024: "lapse",
        "文号未载（嘉兴市人民政府 2023-03-30 通知）": "renew",
        "嘉政办发〔2024〕6号": "renew",
    }
    assert saved["timeline"] == {"after_expiry": renewals}  # the baseline's timeline with the one change
    assert saved["policy_basis"] is None  # one plan lapsing: no longer "current policy continues"
    assert "overrides" not in saved and "overlap" not in saved

    run_id = start(client, "ws", "city3yi_lapse")
    assert wait(client, run_id)["status"] == "done"
    folder = ws / "runs" / run_id
    h = headline.load(folder)
    city = next(b for b in h["budget_lines"] if b["payer"] == "city" and b["program"] == "ALL")
    assert city["budget_cny"] == 30000 * 10_000  # 3亿元 = 30000万元, in yuan
    page = client.get(f"/runs/{run_id}?lang=en").text
    shown = re.search(r'<pre id="headline">(.*?)</pre>', page, re.S).group(1)
    import html

    assert html.unescape(shown) == "\n".join(headline.text(h, "en"))
    assert "\n".join(headline.text(h, "zh")) in html.unescape(client.get(f"/runs/{run_id}?lang=zh").text)

    cash = client.get(f"/runs/{run_id}/cash.json").json()
    assert cash["payer"] == "city" and cash["budget_cny"] == [300_000_000.0] * 10
    rows = {
        r["fiscal_year"]: r
        for r in pq.read_table(folder / "summary.parquet").to_pylist()
        if (r["program"], r["payer"], r["vintage"], r["measure"], r["period"]) == ("ALL", "city", "ALL", "cash", "year")
    }
    assert cash["fiscal_year"] == sorted(rows)
    assert cash["p95_cny"] == [rows[y]["p95_cny"] for y in cash["fiscal_year"]]
    assert all(lo <= m <= hi for lo, m, hi in zip(cash["p05_cny"], cash["mean_cny"], cash["p95_cny"]))

    from openpyxl import load_workbook

    r = client.get(f"/runs/{run_id}/download/xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxml")
    sheet = load_workbook(io.BytesIO(r.content))["Headline 结论"]
    line = next(row for row in sheet.iter_rows(values_only=True) if row[0] == "budget line" and row[1] == "city")
    assert line[5] == pytest.approx(30000) and line[9] == pytest.approx(city["p_exceed"])
    for kind, member in (("csv", "summary.csv"), ("parquet", "summary.parquet"), ("report", "report.html")):
        import zipfile

        z = zipfile.ZipFile(io.BytesIO(client.get(f"/runs/{run_id}/download/{kind}").content))
        assert member in z.namelist()
    assert json.loads(client.get(f"/runs/{run_id}/status.json").text)["done_draws"] == DRAWS


def test_bad_form_value_shows_beside_field_and_saves_nothing(client, ws):
    before = sorted(p.name for p in (ws / "scenarios").iterdir())
    r = client.post("/scenarios/repo/baseline/save", data=form(client, "bad_amount", "lots", False))
    assert r.status_code == 422
    msg = re.search(r'<span class="err" data-field="budgets.0.amount">([^<]+)</span>', r.text)
    assert msg and "number" in msg.group(1)
    r = client.post(
        "/scenarios/repo/baseline/save", data=form(client, "bad_payer", "100", False, **{"budgets.0.payer": "atlantis"})
    )
    assert r.status_code == 422 and 'data-field="budgets.0.payer"' in r.text
    r = client.post(
        "/scenarios/repo/baseline/save",
        data=form(client, "bad_set", "100", False, sets="programs.no-such.formula.max=3"),
    )
    assert r.status_code == 422 and 'data-field="sets"' in r.text
    assert sorted(p.name for p in (ws / "scenarios").iterdir()) == before


def test_program_amount_set_is_saved_as_override(client, ws):
    from fiscal_sim.api import load

    r = client.post(
        "/scenarios/repo/baseline/save",
        follow_redirects=False,
        data=form(
            client,
            "intermediary_cap",
            "25000",
            False,
            sets="programs.jzbf2024-7.tech-intermediary-reward.parameters.cap=20",
        ),
    )
    assert r.status_code == 303, r.text
    scen = load(ws / "scenarios" / "intermediary_cap.yaml")
    assert scen.spec.overrides["jzbf2024-7.tech-intermediary-reward"] == {"parameters.cap": 20}


def test_two_runs_at_once_match_the_cli(client, ws, tmp_path):
    ids = [start(client, "repo", "baseline"), start(client, "repo", "lapse_2024_plan")]
    assert [wait(client, i)["status"] for i in ids] == ["done", "done"]
    for run_id, name in zip(ids, ("baseline", "lapse_2024_plan")):
        web = sorted(pq.read_table(ws / "runs" / run_id / "summary.parquet").to_pylist(), key=_key)
        same_summary(web, cli_summary(REPO / "scenarios" / f"{name}.yaml", tmp_path / name))


def test_cancel_a_running_run(client, ws):
    run_id = start(client, "repo", "baseline", draws=100_000)
    end = time.monotonic() + 300  # other tests' jobs may be ahead of it in the queue
    while client.get(f"/runs/{run_id}/status.json").json()["done_draws"] == 0 and time.monotonic() < end:
        time.sleep(0.1)
    r = client.post(f"/runs/{run_id}/cancel", data={"csrf": csrf(client)}, follow_redirects=False)
    assert r.status_code == 303
    s = wait(client, run_id, timeout=300)
    assert s["status"] == "cancelled" and 0 < s["done_draws"] < 100_000, s
    assert not (ws / "runs" / run_id).exists() and not list((ws / "runs").glob(f".{run_id}.tmp-*"))


def test_restart_marks_interrupted_runs_failed_and_missing_folders(tmp_path):
    reg = Registry(tmp_path)
    stuck = reg.add("baseline", "scenario: {}", {"draws": 10, "seed": None, "source": "repo/baseline"}, "x")
    reg.set_status(stuck, "running")
    staging = tmp_path / "runs" / f".{stuck}.tmp-0123abcd"  # what a run killed with its server leaves
    staging.mkdir(parents=True)
    (staging / "summary.parquet").write_bytes(b"half")
    other = tmp_path / "runs" / "not-ours"
    other.mkdir()
    gone = reg.add("baseline", "scenario: {}", {"draws": 10, "seed": None, "source": "repo/baseline"}, "x")
    reg.set_status(gone, "done", headline={"text": {"zh": ["要点一行"], "en": ["one headline line"]}})
    with TestClient(create_app(tmp_path)) as c:
        s = c.get(f"/runs/{stuck}/status.json").json()
        assert s["status"] == "failed" and "interrupted" in s["error"]
        assert "interrupted" in c.get(f"/runs/{stuck}").text
        assert not staging.exists() and other.is_dir()
        assert c.get(f"/runs/{gone}/status.json").json()["missing"] is True
        assert c.get("/").status_code == 200 and "one headline line" in c.get(f"/runs/{gone}?lang=en").text
        assert c.get(f"/runs/{gone}/download/xlsx").status_code == 404


def test_token_required_off_loopback(tmp_path):
    with pytest.raises(FiscalSimError, match="--token"):
        create_app(tmp_path, host="0.0.0.0")
    r = subprocess.run(
        [sys.executable, "-m", "fiscal_sim.cli", "serve", "--workspace", str(tmp_path), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert r.returncode != 0 and "--token" in r.stderr and "Traceback" not in r.stderr
    with TestClient(create_app(tmp_path, host="0.0.0.0", token="s3cret-token")) as c:
        r = c.get("/")
        assert r.status_code == 401 and "s3cret" not in r.text
        assert c.get("/", headers={"X-Fiscal-Sim-Token": "wrong"}).status_code == 401
        assert c.get("/", headers={"X-Fiscal-Sim-Token": "s3cret-token"}).status_code == 200
        r = c.get("/?token=s3cret-token&lang=en")
        assert r.status_code == 200 and "token=" not in str(r.url) and "s3cret" not in r.text
        assert c.get("/").status_code == 200  # the cookie from then on


def test_csrf_missing_or_wrong_is_403(client, ws):
    posts = ["/scenarios/repo/baseline/save", "/runs", "/runs/0123456789ab/cancel"]
    for url in posts:
        assert client.post(url, data={"name": "x"}).status_code == 403, url
        assert client.post(url, data={"name": "x", "csrf": "forged"}).status_code == 403, url
    assert not (ws / "scenarios" / "x.yaml").exists()


TRAVERSALS = ["..", "../..", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a/../../b", "baseline.yaml", "~root", "."]


def refused(r, url: str) -> None:
    """404, unless the client itself resolved a '..' before sending (then another page, never a file)."""
    normalised = r.request.url.raw_path.decode() != url
    assert r.status_code == 404 or (normalised and r.headers["content-type"].startswith("text/html")), url
    assert "Traceback" not in r.text and "root:x:0" not in r.text


def test_path_traversal_refused_everywhere(client, ws):
    for bad in TRAVERSALS:
        for url in (
            f"/scenarios/repo/{bad}",
            f"/scenarios/{bad}/baseline",
            f"/scenarios/ws/{bad}/form",
            f"/runs/{bad}",
            f"/runs/{bad}/status.json",
            f"/runs/{bad}/download/xlsx",
            f"/runs/{bad}/cash.json",
        ):
            refused(client.get(url), url)
        r = client.post("/runs", data={"csrf": csrf(client), "src": "repo", "name": bad})
        assert r.status_code == 404, bad
        r = client.post("/runs", data={"csrf": csrf(client), "src": bad, "name": "baseline"})
        assert r.status_code == 404, bad
        r = client.post("/scenarios/repo/baseline/save", data=form(client, bad, "100", False))
        assert r.status_code == 422 and 'data-field="name"' in r.text, bad
    done = Registry(ws).add("baseline", "", {"draws": 1, "seed": None, "source": "repo/baseline"}, "x")
    Registry(ws).set_status(done, "done", headline={})
    for kind in ("..", "summary.parquet", "..%2F..%2Fregistry.sqlite"):
        refused(client.get(f"/runs/{done}/download/{kind}"), f"/runs/{done}/download/{kind}")
    assert client.get("/compare?a=..&b=../x").status_code == 200  # a run id or nothing: never a path
    for bad in TRAVERSALS + ["repo/..", "ws/../../registry", "repo/../baseline"]:
        for a, b in ((bad, "repo/baseline"), ("repo/baseline", bad)):
            r = client.post("/compare", data={"csrf": csrf(client), "a": a, "b": b, "draws": "10"})
            assert r.status_code == 404, (a, b)
        r = client.post("/sweep", data={"csrf": csrf(client), "scenario": bad, "set": "shock.sigma=0.1,0.2"})
        assert r.status_code == 404, bad
        for url in (f"/runs/{bad}/payers.json", f"/runs/{bad}/ledger"):
            refused(client.get(url) if url.endswith(".json") else client.post(url, data={"csrf": csrf(client)}), url)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_scenario_names_never_leave_their_folder(name):
    lib = Library(REPO / "scenarios", REPO / "scenarios")
    try:
        p = lib.path("repo", name)
    except NotFound:
        return
    assert p.parent == (REPO / "scenarios").resolve() and p.suffix == ".yaml"


def test_oversized_request_is_refused(client):
    r = client.post("/runs", content=b"x" * (300 * 1024), headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413


def test_compare_job_shows_api_compare_by_year_and_payer(client):
    from fiscal_sim.api import compare

    data = {"csrf": csrf(client), "a": "repo/baseline", "b": "repo/lapse_2024_plan", "draws": "100"}
    r = client.post("/compare", data=data, follow_redirects=False)
    assert r.status_code == 303, r.text
    job = r.headers["location"].rsplit("/", 1)[1]
    assert wait(client, job)["status"] == "done"
    page = client.get(f"/runs/{job}?lang=en").text
    want = compare(REPO / "scenarios" / "baseline.yaml", REPO / "scenarios" / "lapse_2024_plan.yaml", draws=100)
    rows = {
        (r["payer"], r["fiscal_year"]): r
        for r in want.table.to_pylist()
        if (r["program"], r["measure"], r["period"]) == ("ALL", "cash", "year")
    }
    shown = re.findall(
        r"<tr><td>([a-zA-Z_]+)</td><td>(\d{4})</td>\s*<td>([-\d,]+)</td><td>([-\d,]+)</td><td>([-\d,]+)</td>"
        r"<td>([-\d,]+)</td>",
        page,
    )
    assert len(shown) == len(rows) > 0
    for payer, year, base, _reform, change, se in shown:
        r = rows[(payer, int(year))]
        for text, cny in ((base, r["baseline_mean_cny"]), (change, r["change_mean_cny"]), (se, r["change_se_cny"])):
            assert int(text.replace(",", "")) == pytest.approx(cny / 1e4, abs=0.5 + 1e-9)
    city_2030 = rows[("city", 2030)]
    assert city_2030["change_mean_cny"] < 0  # the 2024 plan lapsing removes city cash after 2027
    # a finished run's page links here with its scenario chosen
    assert client.get(f"/compare?a={job}").status_code == 200


def test_sweep_job_plots_worst_year_p_exceed_against_the_value(client):
    from fiscal_sim.api import sweep

    target = "uptake.jzbf2024-7.hnte-first-certification.mean"
    data = {"csrf": csrf(client), "scenario": "repo/baseline", "set": f"{target}=100,300", "draws": "100"}
    r = client.post("/sweep", data=data | {"payer": "city"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    job = r.headers["location"].rsplit("/", 1)[1]
    assert wait(client, job)["status"] == "done"
    page = client.get(f"/runs/{job}").text
    points = json.loads(html_unescape(re.search(r"data-points='([^']*)'", page).group(1)))
    table = sweep(REPO / "scenarios" / "baseline.yaml", [f"{target}=100,300"], draws=100)
    for i, p in enumerate(points):
        rows = [
            x
            for x in table.to_pylist()
            if x["point"] == i
            and (x["program"], x["payer"], x["vintage"], x["measure"], x["period"])
            == ("ALL", "city", "ALL", "cash", "year")
        ]
        worst = max(rows, key=lambda x: x["p_exceed"])
        assert p["value"] == [100, 300][i] and p["p_exceed"] == pytest.approx(worst["p_exceed"], abs=1e-12)
    bad = client.post("/sweep", data=data | {"set": "programs.no-such.formula.max=1,2", "payer": "city"})
    assert bad.status_code == 422 and 'data-field="set"' in bad.text
    bad = client.post("/sweep", data=data | {"payer": "atlantis"})
    assert bad.status_code == 422 and 'data-field="payer"' in bad.text
    assert client.post("/sweep", data={"set": "x=1"}).status_code == 403


def html_unescape(text: str) -> str:
    import html

    return html.unescape(text)


def test_edit_keeps_extends_and_name(client, ws):
    import yaml

    cap = "programs.jzbf2024-7.tech-intermediary-reward.parameters.cap=20"
    r = client.post(
        "/scenarios/repo/baseline/save", data=form(client, "to_edit", "25000", False, sets=cap), follow_redirects=False
    )
    assert r.status_code == 303
    page = client.get("/scenarios/ws/to_edit/form?mode=edit").text
    assert 'value="to_edit"' in page and 'name="mode" value="edit"' in page
    field = 'name="p.jzbf2024-7.tech-intermediary-reward.param.cap" value="20"'
    assert field in page  # the file's own override shows in its parameter's field
    r = client.post(
        "/scenarios/ws/to_edit/save", data=form(client, "to_edit", "26000", False, mode="edit"), follow_redirects=False
    )
    assert r.status_code == 303
    sc = yaml.safe_load((ws / "scenarios" / "to_edit.yaml").read_text(encoding="utf-8"))["scenario"]
    assert sc["extends"] == str((REPO / "scenarios" / "baseline.yaml").resolve())  # not itself
    assert sc["budgets"][0]["amount"] == 26000 and sc["timeline"]["after_expiry"][PLAN_2024] == "lapse"
    assert sc["overrides"] == {"jzbf2024-7.tech-intermediary-reward": {"parameters.cap": 20}}  # kept by the edit
    r = client.post("/scenarios/ws/to_edit/save", data=form(client, "renamed", "26000", True, mode="edit"))
    assert r.status_code == 422 and 'data-field="name"' in r.text and not (ws / "scenarios" / "renamed.yaml").exists()
    r = client.post(
        "/scenarios/repo/baseline/save", data=form(client, "baseline", "1", False, mode="edit"), follow_redirects=False
    )  # the repo's files are read-only: an "edit" there is a duplicate
    assert r.status_code == 303 and r.headers["location"] == "/scenarios/ws/baseline"
    assert "amount: 25000" in (REPO / "scenarios" / "baseline.yaml").read_text(encoding="utf-8")


def test_internal_error_page_has_no_traceback(tmp_path, monkeypatch):
    app = create_app(tmp_path, token="hush-hush")

    def boom():
        raise RuntimeError("secret detail hush-hush")

    monkeypatch.setattr(app.state.registry, "list", boom)
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/", headers={"X-Fiscal-Sim-Token": "hush-hush"})
    assert r.status_code == 500 and "internal error" in r.text
    assert "Traceback" not in r.text and "hush-hush" not in r.text and "RuntimeError" not in r.text


def test_structured_fields_save_only_what_changed(client, ws):
    """Counts, their uncertainty, named parameters, overlap shares and the timeline switches go to the places a
    scenario file keeps them; a field left as shown is not written; the CLI's loader reads the same values."""
    import yaml

    from fiscal_sim.api import load

    page = client.get("/scenarios/repo/baseline/form").text
    for field in (
        'name="p.jwf2017-4.talent-housing.count"',
        'name="p.jwf2017-4.talent-housing.rate_cv"',
        'name="p.jwf2017-4.top-talent.param.term1_amount" value="200"',
        'name="overlap.rd-institution-cross-document" value="0.25"',
        'name="validity.嘉政发〔2017〕3号" value=""',
        'name="family.leading-talent"',
        'name="lag"',
    ):
        assert field in page, field
    changes = {
        "p.jwf2017-4.talent-housing.count": "75",
        "p.jwf2017-4.talent-housing.rate_cv": "0.5",
        "p.jwf2017-4.top-talent.param.term1_amount": "250",
        "overlap.rd-institution-cross-document": "0.5",
        "validity.嘉政发〔2017〕3号": "2027-01-01",
        "family.leading-talent": "stack",
        "lag": "0",
        "sets": "programs.jzbf2024-7.rd-input-subsidy.parameters.cap=800@2027-01-01",
    }
    data = form(client, "structured", "25000", True, **changes)
    r = client.post("/scenarios/repo/baseline/save", data=data, follow_redirects=False)
    assert r.status_code == 303, re.findall(r'data-field="([^"]+)">([^<]*)', r.text)
    sc = yaml.safe_load((ws / "scenarios" / "structured.yaml").read_text(encoding="utf-8"))["scenario"]
    assert sc["overrides"] == {
        "jwf2017-4.talent-housing": {"uptake.count.mean": 75, "uptake.count.rate_cv": 0.5},
        "jwf2017-4.top-talent": {"parameters.term1_amount": 250},
    }
    assert sc["overlap"] == {"rd-institution-cross-document": 0.5}
    assert sc["dated_overrides"] == {"2027-01-01": {"jzbf2024-7.rd-input-subsidy": {"parameters.cap": 800}}}
    assert sc["timeline"] == {
        "after_expiry": {
            PLAN_2024: "renew",
            "文号未载（嘉兴市人民政府 2023-03-30 通知）": "renew",
            "嘉政办发〔2024〕6号": "renew",
        },
        "validity": {"嘉政发〔2017〕3号": {"status": "superseded", "from": "2027-01-01"}},
        "families": {"leading-talent": "stack"},
        "timing": {"default": {"lag": 0}},
    }
    scen = load(ws / "scenarios" / "structured.yaml")
    th = next(sp.prog.spec for sp in scen.programs if sp.id == "jwf2017-4.talent-housing")
    assert th.uptake.count.mean == 75 and th.uptake.count.rate_cv == 0.5
    assert next(g.overlap for g in scen.groups if g.name == "rd-institution-cross-document") == 0.5
    settings = {(a.kind, a.subject): a.setting for a in scen.assumptions}
    assert settings[("validity", "嘉政发〔2017〕3号")].startswith("superseded")
    assert settings[("timing", "default")] == "lag 0"


def test_bad_structured_values_show_beside_their_fields_and_save_nothing(client, ws):
    before = sorted(p.name for p in (ws / "scenarios").iterdir())
    bad = {
        "p.jwf2017-4.talent-housing.count": "lots",
        "overlap.rd-institution-cross-document": "1.5",
        "validity.嘉政发〔2017〕3号": "next year",
        "lag": "9",
    }
    r = client.post("/scenarios/repo/baseline/save", data=form(client, "bad_structured", "25000", True, **bad))
    assert r.status_code == 422
    for field in bad:
        assert f'data-field="{field}"' in r.text, field
    assert 'id="problems"' in r.text
    assert sorted(p.name for p in (ws / "scenarios").iterdir()) == before


def test_uploads_are_checked_as_the_cli_checks_them(client, ws):
    import yaml

    from fiscal_sim.api import load

    r = client.post("/scenarios/repo/baseline/save", data=form(client, "with_register", "25000", True))
    assert r.status_code in (200, 303)
    register = (REPO / "scenarios" / "commitments" / "illustrative_register.csv").read_bytes()

    def upload(kind: str, name: str, content: bytes, scenario: str = "with_register"):
        return client.post(
            f"/scenarios/ws/{scenario}/upload",
            data={"csrf": csrf(client), "kind": kind},
            files={"file": (name, content, "text/csv")},
            follow_redirects=False,
        )

    r = upload("register", "../../etc/passwd.csv", register)
    assert r.status_code == 303 and r.headers["location"] == "/scenarios/ws/with_register"
    kept = ws / "uploads" / "with_register.register.csv"
    assert kept.read_bytes() == register and not (ws / "etc").exists()
    sc = yaml.safe_load((ws / "scenarios" / "with_register.yaml").read_text(encoding="utf-8"))["scenario"]
    assert sc["commitments"]["register"] == "../uploads/with_register.register.csv"
    assert sc["commitments"]["estimate_before"] == {"from": 2017, "programs": "uncovered"}  # kept from the base
    assert load(ws / "scenarios" / "with_register.yaml").register is not None
    before = (ws / "scenarios" / "with_register.yaml").read_text(encoding="utf-8")
    for kind, name, content, words in (
        ("register", "r.csv", b"program,nonsense\nx,1\n", "register"),
        ("register", "r.exe", register, ".exe"),
        ("history", "h.csv", b"not,a,history\n", "history"),
    ):
        r = upload(kind, name, content)
        assert r.status_code == 422 and f'data-field="{kind}"' in r.text, (name, r.text[-800:])
        assert words in r.text and "Traceback" not in r.text
    assert (ws / "scenarios" / "with_register.yaml").read_text(encoding="utf-8") == before
    assert kept.read_bytes() == register and not list((ws / "uploads").glob(".*"))
    history = (REPO / "scenarios" / "history" / "awards_synthetic.csv").read_bytes()
    r = upload("history", "awards.csv", history)
    assert r.status_code == 303 and r.headers["location"] == "/scenarios/ws/with_register_calibrated"
    assert client.get("/scenarios/ws/with_register_calibrated").status_code == 200
    assert upload("register", "r.csv", register, scenario="../baseline").status_code in (404, 405)  # normalised
    assert upload("register", "r.csv", register, scenario="..%2F..%2Fbaseline").status_code == 404
    assert client.post("/scenarios/repo/baseline/upload", data={"csrf": csrf(client)}).status_code == 404


def test_restart_takes_up_queued_jobs_again(tmp_path):
    reg = Registry(tmp_path)
    path = REPO / "scenarios" / "baseline.yaml"
    text = path.read_text(encoding="utf-8")
    queued = reg.add("baseline", text, {"draws": 50, "seed": None, "path": str(path), "source": "repo/baseline"}, "x")
    changed = reg.add("baseline", "an older text", {"draws": 50, "seed": None, "path": str(path)}, "x")
    with TestClient(create_app(tmp_path)) as c:
        assert wait(c, queued)["status"] == "done"
        s = c.get(f"/runs/{changed}/status.json").json()
        assert s["status"] == "failed" and "changed" in s["error"]
    same_summary(
        sorted(pq.read_table(tmp_path / "runs" / queued / "summary.parquet").to_pylist(), key=_key),
        cli_summary(path, tmp_path / "cli", draws=50),
    )


def test_ledger_job_and_the_run_page(client, ws):
    """A run's page offers the assumption ledger; once computed, the page shows its headline lines."""
    from fiscal_sim import headline as hl

    run_id = start(client, "repo", "baseline", draws=60)
    assert wait(client, run_id)["status"] == "done"
    page = client.get(f"/runs/{run_id}?lang=en").text
    for part in ('id="budget-lines"', 'id="vintage-chart"', 'id="multiples"', 'id="top-tail"', 'id="ledger-form"'):
        assert part in page, part
    payers = client.get(f"/runs/{run_id}/payers.json").json()
    cash = client.get(f"/runs/{run_id}/cash.json?payer=city").json()
    city = next(p for p in payers if p["payer"] == "city")
    assert city["mean_cny"] == cash["mean_cny"]
    for e, n, m in zip(city["existing_mean_cny"], city["new_mean_cny"], city["mean_cny"]):
        assert e + n == pytest.approx(m, rel=1e-9)  # existing and new awards make the total
    h = headline.load(ws / "runs" / run_id)
    table = re.search(r'<table id="budget-lines">(.*?)</table>', page, re.S).group(1)
    rows = re.findall(
        r"<tr><td>[^<]*</td><td>(\d{4})</td><td>([\d,.]+)</td>\s*<td>([\d.]+)%.*?<td>([\d,]+|–)</td>\s*<td>([\d,.]+)",
        table,
        re.S,
    )
    assert len(rows) == len(h["budget_lines"]) > 0
    for (year, budget, p, overrun, hold), b in zip(rows, h["budget_lines"]):
        assert int(year) == b["worst_year"] and budget == f"{b['budget_cny'] / 1e8:,.2f}"
        assert p == f"{100 * b['p_exceed']:.1f}" and hold == f"{b['hold']['p90_cny'] / 1e8:,.2f}"
        assert overrun == (
            "–" if b["overrun_if_exceeded_cny"] is None else f"{b['overrun_if_exceeded_cny'] / 1e4:,.0f}"
        )
    tail = re.findall(
        r'<span class="note">([^<]+)</span></td><td>([\d,.]+)</td><td>([\d,.]+)</td>', page.split('id="top-tail"')[1]
    )
    assert [t[0] for t in tail] == [p["program"] for p in h["top_tail"]]
    for (_, mean, tail_mean), p in zip(tail, h["top_tail"]):
        assert (mean, tail_mean) == (f"{p['mean_cny'] / 1e8:,.2f}", f"{p['tail_mean_cny'] / 1e8:,.2f}")
    r = client.post(f"/runs/{run_id}/ledger", data={"csrf": csrf(client), "draws": "20"}, follow_redirects=False)
    ledger = r.headers["location"].rsplit("/", 1)[1]
    assert wait(client, ledger, timeout=600)["status"] == "done"
    rows = pq.read_table(ws / "runs" / ledger / "assumptions.parquet").to_pylist()
    budgets = pq.read_table(ws / "runs" / ledger / "assumptions_budgets.parquet").to_pylist()
    shown = re.search(r'<pre id="ledger-lines">(.*?)</pre>', client.get(f"/runs/{run_id}?lang=en").text, re.S)
    assert html_unescape(shown.group(1)) == "\n".join(hl.assumption_lines(rows, budgets, "en"))
    page = client.get(f"/runs/{ledger}?lang=en").text  # the ledger's own page: its table against the Parquet
    shown_rows = re.findall(
        r"<tr><td>(\d+)</td><td>([^<]+)<br>.*?<td>([-\d,.]+)</td><td>([-\d,.]+)</td><td>([-\d,.]+)</td>", page, re.S
    )
    want = sorted(rows, key=lambda r: r["rank"])
    assert len(shown_rows) == len(want) > 0
    for (rank, alt, all_, se, city), r in zip(shown_rows, want):
        assert (int(rank), alt) == (r["rank"], r["alternative"])
        for text, cny in (
            (all_, r["change_horizon_cash_all_cny"]),
            (se, r["change_horizon_cash_all_se_cny"]),
            (city, r["change_horizon_cash_city_cny"]),
        ):
            assert text == f"{cny / 1e8:,.2f}"


def test_cli_runs_into_the_workspace_are_in_the_registry(tmp_path):
    path = REPO / "scenarios" / "baseline.yaml"
    r = subprocess.run(
        [sys.executable, "-m", "fiscal_sim.cli", "run", str(path), "--draws", "40", "--workspace", str(tmp_path), "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    (run,) = Registry(tmp_path).list()
    assert run["status"] == "done" and run["settings"]["draws"] == 40 and run["settings"]["source"].startswith("cli")
    assert run["scenario_text"] == path.read_text(encoding="utf-8") and run["headline"]["draws"] == 40
    with TestClient(create_app(tmp_path)) as c:
        assert run["id"] in c.get("/").text and c.get(f"/runs/{run['id']}/cash.json").status_code == 200


def test_jobs_on_a_dask_scheduler_given_at_start_up(tmp_path):
    """``fiscal-sim serve --scheduler ADDRESS``: the job runs on that cluster and writes what the CLI writes."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with TestClient(create_app(tmp_path / "ws", scheduler=cluster.scheduler_address)) as c:
            c.get("/")
            run_id = start(c, "repo", "baseline", draws=100)
            s = wait(c, run_id, timeout=300)
            assert s["status"] == "done", s
    web = sorted(pq.read_table(tmp_path / "ws" / "runs" / run_id / "summary.parquet").to_pylist(), key=_key)
    same_summary(web, cli_summary(REPO / "scenarios" / "baseline.yaml", tmp_path / "cli", draws=100))
