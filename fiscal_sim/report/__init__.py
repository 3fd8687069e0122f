"""HTML report of a run (or a comparison): the headline first, then total cash, payers, programs, budget lines,
drivers, pipeline, convergence; technical details last.

``write_report(RUN_DIR)`` writes ``RUN_DIR/report/report.html`` — one
self-contained file (inline CSS, images embedded as base64 PNG, no scripts,
nothing fetched from the network) — and the same charts as PNG files beside
it. Every chart has the table of its numbers next to it; amounts are in 万元
or 亿元 as the bureau writes them, programs carry their Chinese and English titles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fiscal_sim.io.outdir import check_target, replace_dir
from fiscal_sim.report import charts, sections
from fiscal_sim.report.data import NotARunFolder, ReportData, load
from fiscal_sim.report.html import page

__all__ = ["write_report", "ReportResult", "NotARunFolder"]


@dataclass
class ReportResult:
    html: Path
    images: list[Path]
    charts: int
    cjk_font: str | None


SectionMaker = Callable[[ReportData, bool, int], "sections.Section | None"]


def _backtest(d: ReportData) -> "sections.Section | None":
    from fiscal_sim.report.backtest import report_section

    return report_section(d)


def _ledger(d: ReportData) -> "sections.Section | None":
    from fiscal_sim.report.ledger import report_section

    return report_section(d)


SECTIONS: list[SectionMaker] = [
    lambda d, cjk, top: sections.headline(d),
    lambda d, cjk, top: sections.overview(d, cjk),
    sections.change,
    lambda d, cjk, top: sections.payer_grid(d, cjk),
    lambda d, cjk, top: sections.top_programs(d, cjk, top),
    lambda d, cjk, top: sections.exceedance(d, cjk),
    sections.sensitivity,
    lambda d, cjk, top: sections.pipeline(d, cjk),
    lambda d, cjk, top: sections.timeline(d),
    lambda d, cjk, top: sections.outstanding(d, cjk),
    lambda d, cjk, top: sections.convergence(d, cjk),
    lambda d, cjk, top: _backtest(d),  # the backtest in RUN/backtest/, if any
    lambda d, cjk, top: _ledger(d),  # the assumption ledger in RUN/assumptions/, if any
]
"""The report's sections in order, after the header and before the technical details: each maker returns a
section or None (nothing to show). Add a section by inserting its maker here."""


APPENDIX = ("timeline", "outstanding", "pipeline", "convergence", "backtest")
"""Sections printed after the main body, under "Appendix" (details a reader looks up, not the answer)."""


def build_sections(d: ReportData, cjk: bool, top: int) -> list[sections.Section]:
    """The sections in reading order: the main body first, then the appendix (:data:`APPENDIX`)."""
    made = [s for make in SECTIONS if (s := make(d, cjk, top)) is not None]
    for s in made:
        s.appendix = s.id in APPENDIX
    return [s for s in made if not s.appendix] + [s for s in made if s.appendix]


def meta_rows(d: ReportData) -> list[tuple[str, str]]:
    m = d.run.manifest
    sc = m.get("scenario", {})
    hz = m.get("horizon", {})
    progs = [p for p in d.run.programs.values() if not p.get("is_total")]
    rows = [
        ("scenario", f"{sc.get('name', '')} — {sc.get('description', '')}".strip(" —")),
        ("scenario file", f"{sc.get('path', '')} (sha256 {str(sc.get('sha256', ''))[:12]}…)"),
        ("horizon", f"{hz.get('start', '')}–{hz.get('end', '')}"),
        ("draws · seed", f"{m.get('draws', '')} · {m.get('seed_entropy', '')}"),
        ("run", f"{m.get('run_id', '')}, {m.get('created', '')}, engine {m.get('engine_version', '')}"),
        (
            "programs",
            f"{sum(1 for p in progs if p.get('simulated'))} simulated; "
            f"{sum(1 for p in progs if not p.get('simulated'))} listed but not priced (programs.parquet)",
        ),
        ("quantiles", str(m.get("quantile_method", ""))),
    ]
    if d.is_compare and d.baseline is not None:
        bm = d.baseline.manifest.get("scenario", {})
        rows.insert(1, ("baseline", f"{bm.get('name', '')} — {bm.get('description', '')}".strip(" —")))
    return rows


def write_report(
    run_dir: Path | str, out: Path | str | None = None, top: int = 10, cjk: bool | None = None, lang: str = "zh"
) -> ReportResult:
    """Write the report of ``run_dir`` into ``out`` (default ``run_dir/report``); return what was written.

    ``cjk``: Chinese chart labels (default: when a CJK font is installed); ``lang``: the headline's language.
    """
    target = Path(out) if out else Path(run_dir) / "report"
    check_target(target, "report", [run_dir])  # before any work
    d = load(run_dir)
    d.lang = lang
    use_cjk = bool(charts.cjk_font()) if cjk is None else (cjk and bool(charts.cjk_font()))
    secs = build_sections(d, use_cjk, top)
    name = d.run.name
    title = (
        f"{name} vs {d.baseline.name}: fiscal commitments report 财政承诺测算报告"
        if d.is_compare and d.baseline
        else f"{name}: fiscal commitments report 财政承诺测算报告"
    )
    subtitle = [
        "嘉兴市科技创新与人才政策财政资金测算 — Monte Carlo simulation of subsidy outlays by payer and year",
        "金额单位见各表（万元 / 亿元）",
    ]
    footer = (
        "Generated by fiscal-sim from the Parquet outputs in this folder; every chart's numbers are in the table "
        "beside it. Quantiles come from a log-spaced histogram (relative error below 2.3%)."
    )
    font_note = (
        ""
        if charts.cjk_font_file()
        else (
            "No CJK font file (Noto Sans CJK / WenQuanYi) was found on this machine: "
            "chart labels are in English; the tables carry the Chinese titles. "
            "未找到中文字体，图表标签使用英文。"
        )
    )
    html = page(title, subtitle, meta_rows(d), secs, footer, font_note)
    images: list[Path] = []
    n = 0
    with replace_dir(target, "report", [run_dir]) as tmp:
        for s in secs:
            for c in s.charts:
                n += 1
                path = tmp / f"{n:02d}-{c.id}.png"
                path.write_bytes(c.png)
                images.append(target / path.name)
        (tmp / "report.html").write_text(html, encoding="utf-8")
    return ReportResult(target / "report.html", images, n, charts.cjk_font() if use_cjk else None)
