"""The workbench end to end in a real browser: Playwright driving the system Chromium against a live server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``fiscal-sim serve`` on a free loopback port (a real process: uvicorn, the worker, its child runs)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fiscal_sim.cli", "serve", "--workspace", str(tmp_path / "ws"), "--port", str(port)],
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
            except OSError:
                if time.monotonic() > end or proc.poll() is not None:
                    raise AssertionError("the workbench did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def test_create_a_scenario_run_it_see_the_headline_and_sweep(server, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("no system chromium on PATH (Debian package 'chromium'; tests/setup_browser.sh installs it)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(server + "/?lang=en")
            page.click("a[href='/scenarios/repo/baseline']")
            page.click("#duplicate")
            page.fill("input[name=name]", "browser_whatif")
            page.fill("input[name='budgets.0.amount']", "28000")
            page.check("input[name=renew]")
            page.click("#save")
            page.wait_for_url("**/scenarios/ws/browser_whatif")
            page.fill("input[name=draws]", "200")
            page.click("#start")
            page.wait_for_selector("#headline", timeout=90_000)
            text = page.inner_text("#headline")
            assert "browser_whatif 2025–2034, 200 draws" in text
            page.wait_for_selector("#chart .main-svg", timeout=20_000)  # plotly drew the cash chart
            assert page.inner_text("#status").endswith("done")
            with page.expect_download() as dl:
                page.click("#dl-xlsx")
            from openpyxl import load_workbook

            assert dl.value.suggested_filename.endswith(".xlsx")
            book = tmp_path / dl.value.suggested_filename
            dl.value.save_as(book)
            sheet = load_workbook(book)["Headline 结论"]
            line = next(r for r in sheet.iter_rows(values_only=True) if r[0] == "budget line" and r[1] == "city")
            assert line[5] == pytest.approx(28000)  # the budget line typed in the form, 万元
            page.goto(server + "/sweep?lang=en")
            page.select_option("select[name=scenario]", "ws/browser_whatif")
            page.fill("input[name=set]", "programs.jzbf2024-7.tech-intermediary-reward.parameters.cap=10,40")
            page.fill("input[name=draws]", "100")
            page.click("#run-sweep")
            page.wait_for_selector("#sweep-chart .main-svg", timeout=60_000)  # P(exceed) against the value
            assert page.locator("#points tr").count() == 3  # header + two points
        finally:
            browser.close()
