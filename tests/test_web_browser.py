"""The workbench end to end in a real browser: Playwright driving the system Chromium against a live
``fiscal-sim serve`` (uvicorn, the job queue, its child processes).

With FISCAL_SIM_SCREENSHOTS=FOLDER set, the main pages are saved there as PNGs (docs/ holds the shipped ones).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
PLAN_2024 = "嘉政办发〔2024〕7号"
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(ws: Path, *extra: str, host: str = "127.0.0.1") -> Iterator[str]:
    """``fiscal-sim serve`` on a free port until the block ends (SIGINT, as Ctrl-C)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fiscal_sim.cli", "serve", "--workspace", str(ws), "--port", str(port)]
        + ["--host", host, *extra],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=1)
                break
            except urllib.error.HTTPError:  # up, and asking for a token
                break
            except OSError:
                if time.monotonic() > end or proc.poll() is not None:
                    raise AssertionError("the workbench did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("no system chromium on PATH (Debian package 'chromium'; tests/setup_browser.sh installs it)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield ctx.new_page()
    ctx.close()


def shot(page, name: str) -> None:
    folder = os.environ.get("FISCAL_SIM_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"workbench_{name}.png"), full_page=True)


def wait_done(page, timeout: float = 120_000) -> str:
    page.wait_for_function(
        "document.getElementById('status') && !['queued','running'].includes("
        "document.getElementById('status').dataset.status)",
        timeout=timeout,
    )
    return page.get_attribute("#status", "data-status")


def test_plan_run_compare_sweep_and_download(page, tmp_path):
    """Create a scenario from the baseline (budget line, the 2024 plan lapsing, a count), run it, see the headline
    and charts, download the workbook and read it back, compare it with the baseline, sweep a parameter."""
    with serving(tmp_path / "ws") as url:
        page.goto(url + "/?lang=en")
        shot(page, "index")
        page.click("a[href='/scenarios/repo/baseline']")
        page.click("#duplicate")
        page.fill("input[name=name]", "browser_whatif")
        page.fill("input[name='budgets.0.amount']", "28000")
        page.select_option(f"select[name='expiry.{PLAN_2024}']", "lapse")
        page.click("summary:has-text('嘉委发〔2017〕4号')")
        page.fill("input[name='p.jwf2017-4.talent-housing.count']", "100")
        shot(page, "form")
        page.click("#save")
        page.wait_for_url("**/scenarios/ws/browser_whatif")
        text = page.inner_text("pre")
        assert "lapse" in text and "uptake.count.mean: 100" in text and "amount: 28000" in text
        page.fill("input[name=draws]", "200")
        page.click("#start")
        assert wait_done(page) == "done"
        headline = page.inner_text("#headline")
        assert "browser_whatif 2025–2034, 200 draws" in headline
        page.wait_for_selector("#chart .main-svg", timeout=20_000)  # plotly drew the cash chart
        page.wait_for_selector("#vintage-chart .main-svg", timeout=20_000)
        page.wait_for_function("document.querySelectorAll('#multiples .main-svg').length >= 3", timeout=20_000)
        assert "2.80" in page.inner_text("#budget-lines")  # the 28000万元 line, in 亿元
        shot(page, "run")
        with page.expect_download() as dl:
            page.click("#dl-xlsx")
        from openpyxl import load_workbook

        assert dl.value.suggested_filename.endswith(".xlsx")
        book = tmp_path / dl.value.suggested_filename
        dl.value.save_as(book)
        sheet = load_workbook(book)["Headline 结论"]
        line = next(r for r in sheet.iter_rows(values_only=True) if r[0] == "budget line" and r[1] == "city")
        assert line[5] == pytest.approx(28000)  # the budget line typed in the form, 万元

        page.click("#compare-this")
        page.select_option("select[name=b]", "ws/browser_whatif")
        page.select_option("select[name=a]", "repo/baseline")
        page.fill("input[name=draws]", "200")
        page.click("#run-compare")
        assert wait_done(page) == "done"
        page.wait_for_selector("#compare-chart .main-svg", timeout=20_000)
        assert page.locator("#diff tr").count() > 10
        shot(page, "compare")

        page.goto(url + "/sweep?lang=en")
        page.select_option("select[name=scenario]", "ws/browser_whatif")
        page.fill("input[name=set]", "uptake.jwf2017-4.talent-housing.mean=50,100,200")
        page.fill("input[name=draws]", "100")
        page.click("#run-sweep")
        assert wait_done(page) == "done"
        page.wait_for_selector("#sweep-chart .main-svg", timeout=20_000)  # P(exceed) against the value
        assert page.locator("#points tr").count() == 4  # header + three points
        shot(page, "sweep")
        page.goto(url + "/?lang=zh")
        assert page.locator("#runs tr").count() == 4  # header + run, comparison, sweep
        shot(page, "index_zh")


def test_bad_values_show_beside_their_fields_and_nothing_is_saved(page, tmp_path):
    ws = tmp_path / "ws"
    with serving(ws) as url:
        page.goto(url + "/scenarios/repo/baseline/form?lang=en")
        page.fill("input[name=name]", "bad_one")
        page.fill("input[name='budgets.0.amount']", "lots")
        page.fill("input[name='validity.嘉政发〔2017〕3号']", "someday")
        page.click("#save")
        page.wait_for_selector("#problems")
        assert "number" in page.inner_text("span.err[data-field='budgets.0.amount']")
        assert "YYYY-MM-DD" in page.inner_text("span.err[data-field='validity.嘉政发〔2017〕3号']")
        assert page.input_value("input[name='budgets.0.amount']") == "lots"  # what was typed stays to be fixed
    assert not (ws / "scenarios" / "bad_one.yaml").exists()


def test_two_runs_at_once_and_cancel(browser, tmp_path):
    """Two planners start runs at the same time: both finish; a third, long one is cancelled from its page."""
    with serving(tmp_path / "ws") as url:
        pages = [browser.new_page() for _ in range(3)]
        for p, draws in zip(pages, ("150", "150", "100000")):
            p.goto(url + "/scenarios/repo/baseline?lang=en")
            p.fill("input[name=draws]", draws)
        for p in pages:
            p.click("#start")
        pages[2].wait_for_function("parseFloat(document.getElementById('progress').style.width) > 0", timeout=120_000)
        pages[2].click("#cancel")
        assert wait_done(pages[2]) == "cancelled"
        assert [wait_done(p, 180_000) for p in pages[:2]] == ["done", "done"]
        assert pages[0].inner_text("#headline") == pages[1].inner_text("#headline")  # same scenario, same seed
        for p in pages:
            p.close()


def test_a_stopped_server_marks_its_run_and_the_next_start_recovers(page, tmp_path):
    ws = tmp_path / "ws"
    with serving(ws) as url:
        page.goto(url + "/scenarios/repo/baseline?lang=en")
        page.fill("input[name=draws]", "100000")
        page.click("#start")
        page.wait_for_function("parseFloat(document.getElementById('progress').style.width) > 0", timeout=120_000)
        run_url = page.url
    assert not list((ws / "runs").glob(".*.tmp-*"))  # nothing half-written left behind
    with serving(ws) as url2:
        page.goto(url2 + urlparse(run_url).path + "?lang=en")
        assert page.get_attribute("#status", "data-status") in ("failed", "cancelled")
        page.goto(url2 + "/?lang=en")
        assert page.locator("#runs tr").count() == 2


def test_token_off_loopback_and_paths_refused(page, tmp_path):
    ws = tmp_path / "ws"
    r = subprocess.run(
        [sys.executable, "-m", "fiscal_sim.cli", "serve", "--workspace", str(ws), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert r.returncode != 0 and "--token" in r.stderr and "Traceback" not in r.stderr
    with serving(ws, "--token", "open-sesame-42", host="0.0.0.0") as url:
        resp = page.goto(url + "/")
        assert resp.status == 401 and "open-sesame" not in page.content()
        page.goto(url + "/?token=open-sesame-42&lang=en")
        assert "token=" not in page.url and page.locator("#scenarios").count() == 1
        for bad in (
            "/scenarios/repo/..%2F..%2Fetc%2Fpasswd",
            "/runs/..%2Fregistry.sqlite",
            "/scenarios/ws/%2E%2E/form",
        ):
            resp = page.goto(url + bad)
            assert resp.status == 404 and "root:x:0" not in page.content() and "Traceback" not in page.content()
