"""Report: a self-contained HTML page whose every chart has its data table; rendered in headless Chromium."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fiscal_sim.analysis.compare import compare
from fiscal_sim.analysis.sensitivity import sensitivity
from fiscal_sim.cli import app
from fiscal_sim.orchestrate.run import run
from fiscal_sim.report import NotARunFolder, write_report
from fiscal_sim.scenario import load_scenario

HERE = Path(__file__).parent
BASE, CAP = HERE / "scenarios" / "crn_base.yaml", HERE / "scenarios" / "crn_cap.yaml"
CHROMIUM = Path("/usr/bin/chromium")
SETUP = HERE / "setup_browser.sh"


class Page(HTMLParser):
    """Collects images, data tables, scripts and external references of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.tables: list[dict] = []
        self.scripts = 0
        self.external: list[str] = []
        self.body: dict = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        elif tag == "table":
            self.tables.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag == "body":
            self.body = a
        for key in ("src", "href"):
            v = a.get(key) or ""
            if v.startswith(("http:", "https:", "//")) or (tag == "link" and key == "href"):
                self.external.append(v)


def parse(html: str) -> Page:
    p = Page()
    p.feed(html)
    return p


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    scen = load_scenario(BASE).with_settings(draws=200)
    out = tmp_path_factory.mktemp("report") / "run"
    run(scen, out, write_draws=False)
    sensitivity(scen, out)
    return out


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory):
    base = load_scenario(BASE).with_settings(draws=200)
    out = tmp_path_factory.mktemp("report") / "cmp"
    compare(base, load_scenario(CAP), out, write_draws=False)
    return out


@pytest.fixture(scope="module")
def report(run_dir):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = write_report(run_dir)
    missing = [str(w.message) for w in caught if "missing from" in str(w.message)]  # matplotlib's missing glyph
    assert not missing, missing
    return result


def check_page(html: str, images: list[Path]) -> Page:
    page = parse(html)
    assert page.scripts == 0 and page.external == []
    charts = [i for i in page.images if i.get("data-chart")]
    assert charts and len(charts) == len(page.images) == len(images)
    tables = {t.get("data-chart") for t in page.tables}
    for img in charts:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert img["data-chart"] in tables, f"chart {img['data-chart']} has no data table"
    for f in images:
        assert f.is_file() and f.read_bytes()[:4] == b"\x89PNG"
    return page


def test_report_is_self_contained_and_every_chart_has_its_table(report):
    html = report.html.read_text(encoding="utf-8")
    page = check_page(html, report.images)
    ids = {i["data-chart"] for i in page.images}
    assert {"overview", "payers", "outstanding-ALL", "top-mean", "top-p95", "exceedance", "tornado-ALL"} <= ids
    # the order a director reads: headline first, overview next, technical details (hashes, seed) last
    order = [
        html.index(f'<section id="{i}"')
        for i in ("headline", "overview", "payers", "sensitivity", "convergence", "run")
    ]
    assert order == sorted(order)
    assert "@page{size:A4" in html and "@media print" in html
    # amounts in 万元/亿元, Chinese titles with English
    assert "万元" in html and "亿元" in html
    assert "重大科技成果转化项目固定资产投资补助" in html and "Major technology-conversion projects" in html


def test_compared_run_shows_the_change(compare_dir):
    r = write_report(compare_dir, compare_dir / "rep")
    html = r.html.read_text(encoding="utf-8")
    ids = {i["data-chart"] for i in check_page(html, r.images).images}
    assert {"change-ALL", "change-city", "change-exceedance", "change-programs"} <= ids
    assert "vs baseline" in html and "common random numbers" in html
    # the change opens the headline: all payers' horizon cash, baseline → reform, from compare.parquet
    import pyarrow.parquet as pq

    row = next(
        x
        for x in pq.read_table(compare_dir / "compare.parquet").to_pylist()
        if x["program"] == "ALL" and x["payer"] == "ALL" and x["measure"] == "cash" and x["period"] == "horizon"
    )
    first = html[: html.index('<section id="overview"')]
    assert f"all payers: {row['baseline_mean_cny'] / 1e8:,.2f} → {row['reform_mean_cny'] / 1e8:,.2f}" in first


def test_without_a_cjk_font_labels_fall_back_and_tables_keep_chinese(run_dir, tmp_path):
    r = write_report(run_dir, tmp_path / "plain", cjk=False)
    assert r.cjk_font is None
    html = r.html.read_text(encoding="utf-8")
    check_page(html, r.images)
    assert "高端人才、高级人才购房补贴或租房补贴" in html


@pytest.mark.parametrize("case", ["empty", "missing", "file", "other", "no_manifest"])
def test_not_a_run_folder_is_a_clear_error(tmp_path, case):
    target = tmp_path / "x"
    if case == "empty":
        target.mkdir()
    elif case == "file":
        target.write_text("hello")
    elif case == "other":
        target.mkdir()
        (target / "notes.txt").write_text("hi")
    elif case == "no_manifest":
        target.mkdir()
        (target / "summary.parquet").write_bytes(b"")
    with pytest.raises(NotARunFolder) as e:
        write_report(target)
    assert str(target) in str(e.value)
    assert {
        "empty": "is empty",
        "missing": "no such folder",
        "file": "is a file",
        "other": "no summary.parquet",
        "no_manifest": "no manifest.json",
    }[case] in str(e.value)
    res = CliRunner().invoke(app, ["report", str(target)])
    assert res.exit_code == 1 and "error" in res.output


# ------------------------------------------------------------------ headless Chromium

PROBE = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push((e.target && e.target.tagName) ? e.target.tagName + ':' + (e.target.alt || '') : String(e.message));
}, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var tables = {};
  Array.prototype.forEach.call(document.querySelectorAll('table.data[data-chart]'), function (t) {
    if (t.rows.length > 1) { tables[t.getAttribute('data-chart')] = 1; }
  });
  var missing = imgs.filter(function (i) { return !tables[i.getAttribute('data-chart')]; });
  document.body.setAttribute('data-probe-images', String(imgs.length));
  document.body.setAttribute('data-probe-loaded', String(ok.length));
  document.body.setAttribute('data-probe-missing-tables', String(missing.length));
  document.body.setAttribute('data-probe-errors', window.__errors.join('|'));
});
</script>"""


def chromium() -> Path:
    """The browser, installing it with tests/setup_browser.sh when we may (root with apt-get); else skip."""
    if (
        not CHROMIUM.exists()
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
        and shutil.which("apt-get")
        and not os.environ.get("FISCAL_SIM_NO_BROWSER_INSTALL")
    ):
        subprocess.run(["sh", str(SETUP)], check=False, capture_output=True, timeout=900)
    if not CHROMIUM.exists():
        pytest.skip(
            "headless Chromium is absent (/usr/bin/chromium) and could not be installed: "
            "run tests/setup_browser.sh as root (Debian package 'chromium')"
        )
    return CHROMIUM


def browse(html_file: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        str(chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *extra,
        html_file.as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.browser
def test_report_renders_in_headless_chromium(report, tmp_path):
    html = report.html.read_text(encoding="utf-8")
    n_charts = len(parse(html).images)
    probe = report.html.parent / "probe.html"
    probe.write_text(html.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    try:
        res = browse(probe, tmp_path / "profile", "--virtual-time-budget=10000", "--dump-dom")
    finally:
        probe.unlink()
    assert res.returncode == 0, res.stderr[-2000:]
    body = parse(res.stdout).body
    assert body.get("data-probe-images") == str(n_charts), res.stderr[-2000:]
    assert body.get("data-probe-loaded") == str(n_charts)  # every chart image decoded
    assert body.get("data-probe-missing-tables") == "0"
    assert body.get("data-probe-errors") == ""
    assert "net::ERR_" not in res.stderr and "Uncaught" not in res.stderr
    shot = tmp_path / "page.png"
    res = browse(report.html, tmp_path / "profile2", "--window-size=1280,2400", f"--screenshot={shot}")
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 20_000


@pytest.mark.browser
def test_first_screen_shows_the_headline_numbers(report, run_dir, tmp_path):
    """The page text (as Chromium renders it) holds the headline's numbers from headline.json and summary.parquet."""
    import json

    import duckdb

    h = json.loads((run_dir / "headline.json").read_text(encoding="utf-8"))
    res = browse(report.html, tmp_path / "profile", "--virtual-time-budget=5000", "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    first = res.stdout[: res.stdout.index('<section id="overview"')]  # the headline comes before everything else
    total = duckdb.sql(
        f"SELECT mean_cny, p90_cny FROM '{run_dir}/summary.parquet' WHERE program = 'ALL' AND "
        "payer = 'ALL' AND vintage = 'ALL' AND measure = 'cash' AND period = 'horizon'"
    ).fetchall()[0]
    assert f"{total[0] / 1e8:,.2f}" in first and f"{total[1] / 1e8:,.2f}" in first
    for b in h["budget_lines"]:
        assert f"{100 * b['p_exceed']:.1f}" in first
    city = next(b for b in h["budget_lines"] if b["payer"] == "city")
    # the drivers of the city's worst-year breach and the holding appropriation, in Chinese
    assert city["drivers"] and city["drivers"][0]["title_zh"] in first
    assert f"{city['hold']['p90_cny'] / 1e4:,.0f} / {city['hold']['p95_cny'] / 1e4:,.0f}万元" in first
    assert h["text"]["zh"][-1] in first and h["text"]["en"][-1] not in first  # the headline once, in Chinese
    shot = tmp_path / "first.png"
    res = browse(report.html, tmp_path / "profile2", "--window-size=1280,1000", f"--screenshot={shot}")
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 20_000


def test_the_report_says_when_no_cjk_font_file_is_found(run_dir, tmp_path, monkeypatch):
    from fiscal_sim.report import charts

    monkeypatch.setattr(charts, "cjk_font_file", lambda: None)
    r = write_report(run_dir, tmp_path / "nofont", cjk=False)
    html = r.html.read_text(encoding="utf-8")
    assert "No CJK font file" in html and "未找到中文字体" in html


def test_the_cjk_font_is_registered_from_its_file():
    from matplotlib import font_manager

    from fiscal_sim.report import charts

    path = charts.cjk_font_file()
    if path is None:
        pytest.skip("no Noto CJK / WenQuanYi font file on this machine (Debian: fonts-noto-cjk)")
    assert any(f.fname == path for f in font_manager.fontManager.ttflist)
    assert charts.cjk_font() == font_manager.FontProperties(fname=path).get_name()


def test_existing_vs_new_commitments_when_the_summary_has_a_vintage(run_dir, tmp_path):
    """With a `vintage` column (existing commitments / new awards, and their ALL total) the overview chart splits
    the mean by vintage, and the headline reads only the all-vintage rows."""
    import json
    import shutil

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from fiscal_sim import headline

    folder = tmp_path / "vintage"
    shutil.copytree(run_dir, folder, ignore=shutil.ignore_patterns("report", "draws"))
    s = pq.read_table(folder / "summary.parquet")
    if "vintage" in s.column_names:  # the run's own split, if any, is replaced by a synthetic one
        s = s.filter(pc.equal(s["vintage"].cast(pa.string()), "ALL")).drop_columns(["vintage"])
    parts = [s.append_column("vintage", pa.array(["ALL"] * s.num_rows))]
    for v, share in (("existing", 0.3), ("new", 0.7)):
        t = s.set_column(s.column_names.index("mean_cny"), "mean_cny", pc.multiply(s["mean_cny"], share))
        parts.append(t.append_column("vintage", pa.array([v] * s.num_rows)))
    pq.write_table(pa.concat_tables(parts), folder / "summary.parquet")
    plain = json.loads((run_dir / "headline.json").read_text(encoding="utf-8"))
    assert headline.from_folder(folder)["payers"] == plain["payers"]
    r = write_report(folder, tmp_path / "rep")
    html = r.html.read_text(encoding="utf-8")
    assert "existing (mean)" in html and "new (mean)" in html and "vintage" in html


@pytest.mark.browser
def test_the_report_prints_on_a4(report, tmp_path):
    import re

    pdf = tmp_path / "report.pdf"
    res = browse(report.html, tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    assert res.returncode == 0 and pdf.is_file(), res.stderr[-2000:]
    boxes = {
        tuple(round(float(x)) for x in b.split()) for b in re.findall(rb"/MediaBox\s*\[([^\]]*)\]", pdf.read_bytes())
    }
    assert boxes == {(0, 0, 595, 842)}  # A4 in points, every page


def test_chart_colours_differ_in_greyscale():
    """Bands, stacked parts and the series drawn together differ in lightness (a greyscale print tells them apart),
    and series on one chart differ in line style too."""
    from matplotlib.colors import to_rgb

    from fiscal_sim.report import charts

    def grey(c: str) -> float:  # relative luminance (ITU-R BT.709 on sRGB, linearised)
        lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in to_rgb(c)]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    for group in ((charts.BAND_OUTER, charts.BAND_INNER, charts.DARK), charts.PARTS, (charts.BLUE, charts.RED)):
        levels = sorted(grey(c) for c in group)
        assert all(b - a > 0.04 for a, b in zip(levels, levels[1:])), group
    assert len({ls for _, ls, _ in charts.LINES}) == len(charts.LINES)
    assert len({m for _, _, m in charts.LINES}) == len(charts.LINES)


@pytest.mark.browser
def test_main_body_prints_within_six_a4_pages(tmp_path):
    """The baseline's report, printed by Chromium: the main body (everything before "Appendix 附录") fits six A4
    pages; the appendix follows on its own pages."""
    from typer.testing import CliRunner

    from fiscal_sim.cli import app
    from tests.test_brief import pdf_pages

    browser = chromium()
    run = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "run",
            str(HERE.parent / "scenarios" / "baseline.yaml"),
            "--draws",
            "300",
            "--out",
            str(run),
            "--no-draws-ledger",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    html = write_report(run, tmp_path / "report").html.read_text(encoding="utf-8")
    assert html.count("Appendix 附录") == 1 and html.index('id="headline"') < html.index('id="appendix"')
    main = tmp_path / "main.html"
    main.write_text(html[: html.index('<h2 class="appendix-title"')] + html[html.index("</main>") :], encoding="utf-8")
    pages = {}
    for name, page in (("main", main), ("full", tmp_path / "report" / "report.html")):
        pdf = tmp_path / f"{name}.pdf"
        cmd = [
            str(browser),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={pdf}",
            page.as_uri(),
        ]
        assert subprocess.run(cmd, capture_output=True, timeout=120).returncode == 0
        pages[name] = pdf_pages(pdf)
    assert pages["main"] <= 6 and pages["full"] > pages["main"], pages
