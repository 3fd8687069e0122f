"""The director's brief: one A4 page, Chinese by default, from a run folder.

:func:`write_brief` writes ``brief_<lang>.html`` (self-contained: inline CSS, the chart as base64 PNG) and,
when a headless Chromium is found, ``brief_<lang>.pdf`` printed by it. The page holds the budget holder's
headline (risk in the worst year, the appropriation holding the risk at 10% / 5% every year), one chart of
its cash by year with the P5–P95 band and the budget line, the drivers of the breach, the in-force caveats
and what the figures exclude. Every number comes from ``headline.json`` and ``summary.parquet``.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fiscal_sim import headline
from fiscal_sim.report.data import RunFolder, load_run
from fiscal_sim.report.money import pct

Lang = Literal["zh", "en"]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

WORDS = {
    "zh": {
        "colon": "：",
        "paren": "（{}）",
        "title": "财政支出风险简报",
        "draws": "次模拟",
        "holder": "预算单位",
        "line": "预算线（每年）",
        "worst": "最可能超支的年份",
        "risk": "超支概率",
        "over": "超支时平均超出",
        "hold10": "超支概率≤10%所需拨款",
        "hold5": "超支概率≤5%所需拨款",
        "every": "每年",
        "peak": "最高年份",
        "chart": "{name}资助资金现金支出（万元）",
        "mean": "均值",
        "band": "P5–P95 区间",
        "budget": "预算线",
        "p90": "P90（超支概率10%）",
        "drivers": "{year}年超支的来源（占超支额）",
        "program": "项目",
        "share": "占比",
        "mean_part": "每次超支中平均",
        "caveats": "注意",
        "excludes": "数字不包括",
        "totals": "十年合计（亿元）：均值 / P90",
        "all": "全部财政",
        "none": "情景未设置预算线：以下为{name}的现金支出",
        "mc": "蒙特卡洛误差：均值 ±{mean}亿元，超支概率 ±{p}",
        "wan": "万元",
        "yi": "亿元",
        "unsim": "{n}个未定价或未模拟的条款（金额由文件另定、一事一议等）",
        "book": "{parts}以外的既有承诺",
        "reg": "登记册 {path}（{rows}行）",
        "syn": "（合成数据，仅作示例）",
        "est": "{n}个项目按假设估算的以前年度奖励",
        "and": "及",
        "equity": "政府产业基金出资（单列，不计入资助资金）",
        "years": "{a}–{b}年以外的支出",
        "lapse": "{a}→{b}年超支概率 {pa}→{pb}：{doc}施行至{date}（奖励次年兑付）",
        "start": "{a}→{b}年超支概率 {pa}→{pb}：{doc}自{date}起施行",
        "source": "来源：fiscal-sim 运行 {run}（{scenario}，{draws:,}次模拟）；金额以元计算，以万元/亿元显示",
    },
    "en": {
        "colon": ": ",
        "paren": " ({})",
        "title": "Fiscal risk brief",
        "draws": "draws",
        "holder": "Budget holder",
        "line": "Budget line (a year)",
        "worst": "Worst year",
        "risk": "P(exceed)",
        "over": "Mean overrun when exceeded",
        "hold10": "Appropriation for ≤10% risk",
        "hold5": "Appropriation for ≤5% risk",
        "every": "every year",
        "peak": "peak year",
        "chart": "{name}: grant cash by year (万元)",
        "mean": "mean",
        "band": "P5–P95 band",
        "budget": "budget line",
        "p90": "P90 (10% risk)",
        "drivers": "What makes up the {year} overrun (share of it)",
        "program": "Program",
        "share": "Share",
        "mean_part": "Mean per overrun",
        "caveats": "Note",
        "excludes": "The figures exclude",
        "totals": "Ten-year total (亿元): mean / P90",
        "all": "All payers",
        "none": "No budget line in the scenario: {name}'s cash is shown",
        "mc": "Monte Carlo error: means ±{mean}亿元, P(exceed) ±{p}",
        "wan": "万元",
        "yi": "亿元",
        "unsim": "{n} provisions not priced or not simulated (amounts set case by case, etc.)",
        "book": "past awards beyond {parts}",
        "reg": "the register {path} ({rows} rows)",
        "syn": " (SYNTHETIC rows, an illustration)",
        "est": "the estimated earlier cohorts of {n} programs (an assumption)",
        "and": " and ",
        "equity": "government fund capital (shown apart, not grant spending)",
        "years": "spending outside {a}–{b}",
        "lapse": "P(exceed) {pa} in {a} → {pb} in {b}: {doc} in force until {date} (awards paid a year later)",
        "start": "P(exceed) {pa} in {a} → {pb} in {b}: {doc} in force from {date}",
        "source": "Source: fiscal-sim run {run} ({scenario}, {draws:,} draws); amounts computed in yuan, shown in 万元/亿元",
    },
}


@dataclass
class BriefResult:
    html: Path
    pdf: Path | None
    note: str | None
    """why there is no PDF, when there is none"""


def find_browser() -> str | None:
    """A headless-capable Chromium: ``$FISCAL_SIM_BROWSER``, else the first of :data:`BROWSERS` on the PATH."""
    env = os.environ.get("FISCAL_SIM_BROWSER")
    if env:
        return env if Path(env).is_file() else None
    return next((p for b in BROWSERS if (p := shutil.which(b))), None)


def _series(run: RunFolder, payer: str, program: str) -> dict[int, dict[str, Any]]:
    return {
        r["fiscal_year"]: r
        for r in run.rows
        if r["payer"] == payer and r["program"] == program and r["measure"] == "cash" and r["period"] == "year"
    }


def chart(
    years: list[int], rows: dict[int, dict[str, Any]], budget_cny: float | None, w: dict[str, str], title: str
) -> bytes:
    """The holder's cash by year in 万元: mean, P5–P95 band, P90 and the budget line (told apart in greyscale
    too: filled band, solid, dotted and dashed lines)."""
    import matplotlib.pyplot as plt
    import numpy as np

    from fiscal_sim.report.charts import style

    col = lambda k: np.array([rows[y][k] / 1e4 for y in years])  # noqa: E731
    with plt.rc_context(style(True)):
        fig, ax = plt.subplots(figsize=(6.6, 2.7))
        ax.fill_between(years, col("p05_cny"), col("p95_cny"), color="#9ecae1", label=w["band"])
        ax.plot(years, col("mean_cny"), color="#08306b", lw=2, marker="o", ms=3, label=w["mean"])
        ax.plot(years, col("p90_cny"), color="#08306b", lw=1, ls=":", label=w["p90"])
        if budget_cny is not None:
            ax.axhline(budget_cny / 1e4, color="#a50f15", lw=1.6, ls="--", label=w["budget"])
        ax.set_title(title, loc="left")
        ax.set_xticks(years)
        ax.set_ylim(bottom=0)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v:,.0f}")
        ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=130, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
    return buf.getvalue()


def content(folder: Path, lang: Lang) -> dict[str, Any]:
    """What the brief shows, every number from headline.json / summary.parquet."""
    run = load_run(folder)
    h = headline.load(folder)
    w = WORDS[lang]
    zh = lang == "zh"
    lines = [b for b in h["budget_lines"] if b["program"] == headline.ALL] or h["budget_lines"]
    b = lines[0] if lines else None
    payer = b["payer"] if b else "city" if any(p["payer"] == "city" for p in h["payers"]) else headline.ALL
    name = headline.payer_names(run.payers, payer)[0 if zh else 1]
    rows = _series(run, payer, b["program"] if b else headline.ALL)
    years = sorted(rows)
    png = chart(years, rows, b["budget_cny"] if b else None, w, w["chart"].format(name=name))
    caveats = [
        w["lapse" if c["change"] == "lapses" else "start"].format(
            a=c["from_year"],
            b=c["to_year"],
            pa=pct(c["p_from"]),
            pb=pct(c["p_to"]),
            doc=c["document_number"],
            date=c["date"],
        )
        for c in (b or {}).get("caveats") or []
    ]
    m = run.manifest
    excludes = [w["unsim"].format(n=len(m.get("programs_not_simulated", {})))]
    if any(r["program"] == headline.ALL_EQUITY for r in run.rows):
        excludes.append(w["equity"])
    if h["horizon"]:
        excludes.append(w["years"].format(a=h["horizon"][0], b=h["horizon"][1]))
    book, est = m.get("commitments"), m.get("estimated_pre_horizon")
    if book or est:  # what the existing commitments rest on, as the manifest states it
        parts = (
            [
                w["reg"].format(path=Path(book["path"]).name, rows=book["rows"])
                + (w["syn"] if book.get("synthetic") else "")
            ]
            if book
            else []
        )
        parts += [w["est"].format(n=len(est.get("award_years", {})))] if est else []
        excludes.append(w["book"].format(parts=w["and"].join(parts)))
    conv = h["convergence"]
    totals = [
        (p["name_zh"] if zh else p["name_en"], p["mean_cny"], p["p90_cny"])
        for p in h["payers"]
        if p["payer"] in (headline.ALL, payer)
    ]
    return {
        "lang": lang,
        "w": w,
        "h": h,
        "b": b,
        "name": name,
        "png": png,
        "caveats": caveats,
        "excludes": excludes,
        "totals": totals,
        "drivers": [
            (d["title_zh"] if zh else d["title_en"], d["share"], d["overrun_mean_cny"])
            for d in (b or {}).get("drivers") or []
        ],
        "mc": w["mc"].format(mean=f"{conv['max_2mcse_cny'] / 1e8:,.2f}", p=pct(conv["max_interval_width"] / 2)),
        "source": w["source"].format(run=m.get("run_id", "?"), scenario=h["scenario"], draws=h["draws"] or 0),
    }


def html(c: dict[str, Any]) -> str:
    from fiscal_sim.report.html import environment

    return environment().get_template("brief.html.j2").render(**c) + "\n"


def _atomic_write(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(data)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def print_pdf(browser: str, html_file: Path, pdf: Path, timeout: float = 120) -> str | None:
    """Print ``html_file`` to ``pdf`` with headless Chromium (A4 from the page's CSS); an error line or None."""
    with tempfile.TemporaryDirectory(prefix="fiscal-sim-brief-") as profile:
        part = pdf.with_name(f".{pdf.name}.part")
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={part}",
            html_file.resolve().as_uri(),
        ]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            part.unlink(missing_ok=True)
            return f"{browser} could not print the PDF: {e}"
        if res.returncode != 0 or not part.is_file() or part.stat().st_size == 0:
            part.unlink(missing_ok=True)
            return f"{browser} could not print the PDF (exit {res.returncode}): {res.stderr.strip()[-300:]}"
        os.replace(part, pdf)
    return None


def write_brief(folder: Path | str, lang: Lang = "zh", out: Path | str | None = None) -> BriefResult:
    """Write ``brief_<lang>.html`` (and ``.pdf`` when a browser is found) into ``out`` (default ``RUN/brief``)."""
    folder = Path(folder)
    dest = Path(out) if out is not None else folder / "brief"
    c = content(folder, lang)
    dest.mkdir(parents=True, exist_ok=True)
    page = dest / f"brief_{lang}.html"
    _atomic_write(page, html(c).encode("utf-8"))
    browser = find_browser()
    if browser is None:
        return BriefResult(
            page,
            None,
            "no headless Chromium found (chromium, google-chrome or $FISCAL_SIM_BROWSER): wrote the HTML only",
        )
    pdf = dest / f"brief_{lang}.pdf"
    note = print_pdf(browser, page, pdf)
    return BriefResult(page, None if note else pdf, note)
