"""The report's sections: each chart comes with the table of the numbers it draws."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fiscal_sim.report import charts
from fiscal_sim.report.data import ReportData, RunFolder
from fiscal_sim.report.money import WAN, YI, Unit, both, pct, unit_for

ALL = "ALL"
TOTALS = ("ALL", "ALL_EQUITY")


@dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    text_columns: int = 1
    """leading columns that are text (left-aligned); the rest are numbers"""
    css: str = ""
    """extra CSS class: ``programs`` gives the id and title columns room (the table may wrap below its chart)"""


@dataclass
class Chart:
    id: str
    title: str
    png: bytes
    table: Table
    alt: str = ""


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    template: str = ""
    """a partial template of templates/ that renders this section's ``data`` before its charts and tables"""
    data: dict[str, Any] = field(default_factory=dict)
    appendix: bool = False
    """printed after the main body, under the appendix heading"""


def program_label(run: RunFolder, pid: str, cjk: bool, width: int = 20) -> str:
    """Chart label of a program: its Chinese title when a CJK font is available, else its id."""
    if pid in TOTALS:
        return pid
    zh = run.programs.get(pid, {}).get("title_zh")
    if cjk and zh:
        return zh if len(zh) <= width else zh[: width - 1] + "…"
    return pid


def program_cells(run: RunFolder, pid: str) -> list[str]:
    p = run.programs.get(pid, {})
    kind = " (equity 股权出资)" if p.get("status") == "equity" else ""
    return [pid, (p.get("title_zh") or "") + kind, p.get("title_en") or "", p.get("document_number") or ""]


PROGRAM_COLUMNS = ["program", "名称", "title", "文号 document"]


def payers_with_cash(run: RunFolder) -> list[str]:
    """Payers whose expected grant cash is non-zero in some year: all payers, city, province, then places."""
    order = [ALL] + [p for p in run.payers if p != ALL]
    have = {r["payer"] for r in run.rows if r["program"] == ALL and r["measure"] == "cash" and r["mean_cny"]}
    return [p for p in order if p in have]


def unit_caption(unit: Unit) -> str:
    return f"金额单位：{unit.label}（amounts in {unit.label}; 1万元 = 10,000 yuan, 1亿元 = 100,000,000 yuan）"


def headline(d: ReportData) -> Section:
    """The answer up front (headline.json of the run, in the report's language), then horizon totals per payer."""
    from fiscal_sim import headline as hl

    h = hl.load(d.run.path)
    change = hl.compare_lines(d.compare or [], hl.load(d.baseline.path), h) if d.is_compare and d.baseline else []
    return Section(
        "headline", "Headline 结论", template="headline.html.j2", data={"headline": h, "change": change, "lang": d.lang}
    )


def horizon_table(run: RunFolder) -> Table:
    """Horizon totals per payer: mean, median, P90, P95, TVaR — in 万元 and 亿元."""
    rows = []
    for payer in payers_with_cash(run):
        r = run.horizon(ALL, payer)
        if r:
            rows.append(
                [
                    run.payer_label(payer, True),
                    both(r["mean_cny"]),
                    both(r["p50_cny"]),
                    both(r["p90_cny"]),
                    both(r["p95_cny"]),
                    both(r["tvar_cny"]),
                ]
            )
    years = run.years
    span = f"{years[0]}–{years[-1]}" if years else ""
    return Table(
        [
            "payer 财政",
            "mean 均值",
            "median 中位数",
            "P90",
            "P95",
            f"TVaR{int(100 * (run.rows[0].get('var_level') or 0.95))}",
        ],
        rows,
        f"Grant cash over {span} (program ALL), all draws. TVaR: mean of the worst tail of draws.",
    )


def overview(d: ReportData, cjk: bool) -> Section:
    """One chart: total grant cash by year, P5–P95 band, budget line; existing vs new commitments when the
    summary has a ``vintage`` dimension."""
    run = d.run
    s = Section(
        "overview",
        "Total cash by year 分年度资金支出总览",
        "Grant cash of all payers (program ALL) by fiscal year: the band holds 90% of the draws (P5–P95), "
        "the line is the mean, the red line the budget line.",
    )
    # the budget holder's series when the budget line is the city's (a line drawn on another total would mislead)
    payer = next(
        (p for p in (ALL, "city") if any(r["budget_cny"] is not None for r in run.by_year(ALL, p, "cash"))), ALL
    )
    rows = run.by_year(ALL, payer, "cash")
    if not rows:
        return s
    if payer != ALL:
        s.intro = s.intro.replace("of all payers", f"of {run.payer_label(payer, True)} (the budget holder)")
    unit = unit_for(r["p95_cny"] for r in rows)
    q = {k: [r[f"{k}_cny"] for r in rows] for k in ("p05", "p95", "mean")}
    budget = [r["budget_cny"] for r in rows]
    parts = None
    if run.vintages:
        parts = []
        for v in run.vintages:
            by = {
                r["fiscal_year"]: r["mean_cny"]
                for r in run.vintage_rows
                if r["vintage"] == v
                and r["program"] == ALL
                and r["payer"] == payer
                and r["measure"] == "cash"
                and r["period"] == "year"
            }
            parts.append((f"{v} (mean)", [by.get(r["fiscal_year"]) for r in rows]))
        s.intro += " Shaded areas: the mean split into existing commitments and new awards (vintage)."
    title = f"Grant cash 资金支出 — {run.payer_label(payer, cjk)} ({unit.label})"
    png = charts.overview([r["fiscal_year"] for r in rows], q, unit, title, cjk, budget=budget, parts=parts)
    cols = ["year 年度", "mean 均值", "P5", "P95", "budget 预算"] + [lb for lb, _ in parts or []]
    trows = [
        [str(r["fiscal_year"]), unit.fmt(r["mean_cny"]), unit.fmt(r["p05_cny"]), unit.fmt(r["p95_cny"]), unit.fmt(b)]
        + [unit.fmt(v[i]) for _, v in parts or []]
        for i, (r, b) in enumerate(zip(rows, budget))
    ]
    s.charts.append(Chart("overview", title, png, Table(cols, trows, unit_caption(unit)), "total cash by year"))
    return s


def payer_grid(d: ReportData, cjk: bool) -> Section:
    """Small multiples: one compact grid of every payer's cash by year (band, mean, budget line)."""
    run = d.run
    s = Section(
        "payers",
        "Cash by payer 分财政资金支出",
        "One panel per payer, on the same unit: the band holds 90% of the draws, the line is the mean, "
        "the red line the budget line.",
    )
    s.tables.append(horizon_table(run))
    payers = [p for p in payers_with_cash(run) if p != ALL]
    if not payers:
        return s
    years = run.years
    series = {p: run.by_year(ALL, p, "cash") for p in payers}
    unit = unit_for(r["p95_cny"] for p in payers for r in series[p])
    panels = [
        (
            run.payer_label(p, cjk),
            {k: [r[f"{k}_cny"] for r in series[p]] for k in ("p05", "p95", "mean")},
            [r["budget_cny"] for r in series[p]],
        )
        for p in payers
    ]
    png = charts.small_multiples(years, panels, unit, cjk)
    by = {p: {r["fiscal_year"]: r for r in series[p]} for p in payers}
    table = Table(
        ["payer 财政"] + [str(y) for y in years],
        [[run.payer_label(p, True)] + [unit.fmt(by[p].get(y, {}).get("mean_cny")) for y in years] for p in payers],
        unit_caption(unit) + " Mean cash by year.",
    )
    s.charts.append(Chart("payers", "Cash by payer and year", png, table, "small multiples of cash by payer"))
    return s


def timeline(d: ReportData) -> Section | None:
    """Every policy-timeline and payment-timing assumption of the run, and cash already owed vs new."""
    m = d.run.manifest
    if not m.get("timeline"):
        return None
    s = Section(
        "timeline",
        "Policy timeline, payment timing, existing commitments 政策时间线、支付时点、存量承诺",
        "What applies when, what replaces what, and when awards are paid: each assumption with its basis "
        "(a quote of the documents, or a labelled assumption) and whether the catalogue or this scenario set it.",
    )
    s.tables.append(
        Table(
            ["kind 类别", "subject 对象", "setting 设定", "basis 依据", "set by", "text 说明"],
            [[a["kind"], a["subject"], a["setting"], a["basis"], a["set_by"], a["text"]] for a in m["timeline"]],
            "catalogue/timeline.yaml and the scenario's timeline: block",
            text_columns=6,
        )
    )
    reg, est = m.get("commitments"), m.get("estimated_pre_horizon")
    cash = [r for r in d.run.vintage_rows if r["payer"] == ALL and r["measure"] == "cash"]
    if (reg or est) and cash:
        book = " and ".join(
            (
                [
                    f"the {'SYNTHETIC (illustrative, not real) ' if reg.get('synthetic') else ''}register "
                    f"{reg['path']} ({reg['rows']} rows)"
                ]
                if reg
                else []
            )
            + (
                [
                    f"estimated pre-horizon cohorts of {len(est['award_years'])} programs (cohort years) the register does not cover "
                    "(an assumption)"
                ]
                if est
                else []
            )
        )
        by = {(r["vintage"], r["fiscal_year"]): r["mean_cny"] for r in cash}
        years = sorted({r["fiscal_year"] for r in cash})
        unit = unit_for(by.values())
        s.tables.append(
            Table(
                ["vintage"] + [str(y) for y in years],
                [[v] + [unit.fmt(by.get((v, y), 0.0)) for y in years] for v in ("existing", "new")],
                f"Expected grant cash, all payers. {unit_caption(unit)}. Existing = {book}, "
                "new = awards simulated from the horizon on.",
            )
        )
    return s


def fan_table(rows: list[dict[str, Any]], unit: Unit, reference: list[dict[str, Any]] | None = None) -> Table:
    cols = ["year 年度", "mean 均值", "P5", "P10", "P50 中位数", "P90", "P95", "budget 预算", "P(exceed) 超预算概率"]
    if reference is not None:
        cols.insert(2, "baseline mean 基准均值")
    out = []
    ref = {r["fiscal_year"]: r for r in reference or []}
    for r in rows:
        cells = [
            str(r["fiscal_year"]),
            unit.fmt(r["mean_cny"]),
            unit.fmt(r["p05_cny"]),
            unit.fmt(r["p10_cny"]),
            unit.fmt(r["p50_cny"]),
            unit.fmt(r["p90_cny"]),
            unit.fmt(r["p95_cny"]),
            unit.fmt(r["budget_cny"]),
            pct(r["p_exceed"]),
        ]
        if reference is not None:
            cells.insert(2, unit.fmt(ref.get(r["fiscal_year"], {}).get("mean_cny")))
        out.append(cells)
    return Table(cols, out, unit_caption(unit))


def fan(
    run: RunFolder, payer: str, measure: str, cjk: bool, chart_id: str, title: str, reference: RunFolder | None = None
) -> Chart | None:
    rows = run.by_year(ALL, payer, measure)
    if not rows or not any(r["mean_cny"] for r in rows):
        return None
    ref = reference.by_year(ALL, payer, measure) if reference else None
    unit = unit_for(r["p95_cny"] for r in rows)
    q = {k: [r[f"{k}_cny"] for r in rows] for k in ("p05", "p10", "p50", "p90", "p95", "mean")}
    refmean = None
    if ref is not None:
        by = {r["fiscal_year"]: r["mean_cny"] for r in ref}
        refmean = [by.get(r["fiscal_year"]) for r in rows]
    png = charts.fan_chart(
        [r["fiscal_year"] for r in rows], q, unit, title, cjk, budget=[r["budget_cny"] for r in rows], reference=refmean
    )
    return Chart(chart_id, title, png, fan_table(rows, unit, ref), f"fan chart: {title}")


def outstanding(d: ReportData, cjk: bool) -> Section:
    run = d.run
    s = Section(
        "outstanding",
        "Outstanding commitments at year end 年末已承诺未支付",
        "Awards made but not yet paid (multi-year rent and salary subsidies, instalments) at each year end: "
        "what later budgets already owe.",
    )
    for payer in [p for p in (ALL, "city") if p in payers_with_cash(run)]:
        title = f"Outstanding 未兑现承诺 — {run.payer_label(payer, cjk)}"
        c = fan(run, payer, "outstanding", cjk, f"outstanding-{payer}", title, d.baseline)
        if c:
            s.charts.append(c)
    if not s.charts:
        s.intro += " No outstanding commitments in this run."
    return s


def top_programs(d: ReportData, cjk: bool, k: int) -> Section:
    run = d.run
    rows = [
        r
        for r in run.rows
        if r["program"] not in TOTALS
        and r["payer"] == ALL
        and r["measure"] == "cash"
        and r["period"] == "horizon"
        and r["mean_cny"]
    ]
    s = Section(
        "programs",
        "Top programs 主要政策项目",
        "Grant cash over the horizon, all payers. Expected cost ranks by the mean; tail risk by P95 "
        "(the amount exceeded in 1 draw in 20).",
    )
    for key, label, marker, mlabel in (
        ("mean_cny", "expected cost 预期支出", "p95_cny", "P95"),
        ("p95_cny", "tail risk P95 尾部风险", "mean_cny", "mean"),
    ):
        best = sorted(rows, key=lambda r: -r[key])[:k]
        if not best:
            continue
        unit = unit_for(r[key] for r in best)
        title = f"Top {len(best)} programs by {label}"
        png = charts.bar_chart(
            [program_label(run, r["program"], cjk) for r in best],
            [r[key] for r in best],
            unit,
            title,
            cjk,
            markers=[r[marker] for r in best],
            marker_label=mlabel,
            bar_label="P95" if key == "p95_cny" else "mean",
        )
        table = Table(
            ["#"] + PROGRAM_COLUMNS + ["mean 均值", "P95", "TVaR", "sd 标准差"],
            [
                [str(i + 1)]
                + program_cells(run, r["program"])
                + [unit.fmt(r["mean_cny"]), unit.fmt(r["p95_cny"]), unit.fmt(r["tvar_cny"]), unit.fmt(r["sd_cny"])]
                for i, r in enumerate(best)
            ],
            unit_caption(unit),
            text_columns=5,
            css="programs",
        )
        s.charts.append(Chart(f"top-{key.split('_')[0]}", title, png, table, title))
    return s


def exceedance(d: ReportData, cjk: bool) -> Section:
    run = d.run
    s = Section(
        "exceedance",
        "Probability of exceeding the budget line 超预算概率",
        "Share of draws in which the amount exceeds the budget line, with its 95% (Wilson) interval.",
    )
    lines: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in run.rows:
        if r["period"] == "year" and r["p_exceed"] is not None:
            lines.setdefault((r["program"], r["payer"], r["measure"]), []).append(r)
    if not lines:
        s.intro = "The scenario sets no budget lines (add `budgets:` to the scenario to see P(exceed))."
        return s
    years = run.years
    chart_lines, cols, table_rows = [], ["year 年度"], {y: [str(y)] for y in years}
    for (prog, payer, measure), rows in lines.items():
        by = {r["fiscal_year"]: r for r in rows}
        label = f"{program_label(run, prog, cjk, 14)} · {payer} · {measure}"
        chart_lines.append(
            (
                label,
                [by.get(y, {}).get("p_exceed") for y in years],
                [by.get(y, {}).get("p_exceed_lo") for y in years],
                [by.get(y, {}).get("p_exceed_hi") for y in years],
            )
        )
        unit = unit_for(r["budget_cny"] for r in rows)
        cols += [f"{prog} · {payer} · {measure}: budget ({unit.label})", "P(exceed) [95% CI]"]
        for y in years:
            row = by.get(y)
            table_rows[y] += (
                [
                    unit.fmt(row["budget_cny"]),
                    f"{pct(row['p_exceed'])} [{pct(row['p_exceed_lo'])}–{pct(row['p_exceed_hi'])}]",
                ]
                if row
                else ["", ""]
            )
    png = charts.exceed_chart(years, chart_lines, "P(exceed budget) by year 分年度超预算概率", cjk)
    s.charts.append(
        Chart(
            "exceedance",
            "P(exceed budget) by year",
            png,
            Table(cols, list(table_rows.values()), "Budget lines as set in the scenario."),
            "exceedance probability by year",
        )
    )
    return s


def factor_label(run: RunFolder, r: dict[str, Any], cjk: bool) -> str:
    if r["factor_kind"] == "rate_factor":
        return f"uptake rate: {program_label(run, r['program'], cjk, 16)}"
    if r["factor_kind"] == "shared_shock":
        return f"shared shock {r['factor_year']}"
    return r["factor"]


def swing(r: dict[str, Any]) -> tuple[float, float]:
    """Change of the target from its mean when the parameter is in its lowest / highest 10% of draws (yuan)."""
    return r.get("swing_low_cny") or 0.0, r.get("swing_high_cny") or 0.0  # absent in files of older versions


def sensitivity(d: ReportData, cjk: bool, k: int) -> Section | None:
    if not d.sensitivity:
        return None
    run = d.run
    s = Section(
        "sensitivity",
        "Which assumptions drive the risk 敏感性分析（龙卷风图）",
        "For each uncertain parameter drawn per draw (a program's uptake rate, the shared uptake shock of a "
        "year): how far total grant cash over the horizon moves from its mean in the draws where that "
        "parameter is in its lowest and in its highest 10% (measured over the draws, not approximated). "
        "Ranked by Spearman ρ. Joint R² of ranks: what all parameters explain together; the rest is "
        "applicant-level randomness.",
    )
    n_sens, n_run = d.sensitivity[0]["draws"], d.run.manifest.get("draws")
    if n_run and n_sens != n_run:
        s.intro += f" Note: computed from {n_sens:,} draws, while this run has {n_run:,}."
    for payer in (ALL, "city"):
        rows = sorted(
            (r for r in d.sensitivity if r["payer"] == payer and r["period"] == "horizon"), key=lambda r: r["rank"]
        )[:k]
        if not rows:
            continue
        sw = [swing(r) for r in rows]
        unit = unit_for(max(abs(lo), abs(hi)) for lo, hi in sw)
        title = f"Tornado — total cash, {run.payer_label(payer, cjk)} ({unit.label})"
        png = charts.tornado(
            [factor_label(run, r, cjk) for r in rows], [lo for lo, _ in sw], [hi for _, hi in sw], unit, title, cjk
        )
        table = Table(
            [
                "rank",
                "parameter 参数",
                "program",
                f"swing, lowest → highest 10% ({unit.label})",
                "ρ",
                "95% CI",
                "first-order share",
            ],
            [
                [
                    str(r["rank"]),
                    factor_label(run, r, True),
                    r["program"] or "",
                    unit.fmt(hi - lo, True),
                    f"{r['spearman_rho']:+.3f}",
                    f"[{r['rho_ci_lo']:+.2f}, {r['rho_ci_hi']:+.2f}]",
                    pct(r["first_order_index"]),
                ]
                for r, (lo, hi) in zip(rows, sw)
            ],
            f"{rows[0]['draws']:,} draws; joint R² of ranks {rows[0]['target_rank_r2']:.2f}. " + unit_caption(unit),
            text_columns=3,
        )
        s.charts.append(Chart(f"tornado-{payer}", title, png, table, title))
    return s


def pipeline(d: ReportData, cjk: bool) -> Section | None:
    """The administrative pipeline (``--pipeline`` runs): P(appropriation runs out) by year, when, arrears."""
    rows = d.run.pipeline
    if not rows:
        return None
    s = Section(
        "pipeline",
        "Appropriations and arrears 拨款用尽与欠付",
        "From the simpy review and payment pipeline: the probability that a bounded appropriation runs out "
        "before year end (95% Wilson interval), the median day it does, and the expected arrears "
        "(instalments due but unpaid at year end).",
    )
    idx = {(r["measure"], r["fiscal_year"], r["pipeline"], r["program"], r["payer"]): r for r in rows}
    trows = []
    for r in sorted(
        (r for r in rows if r["measure"] == "exhausted" and r["program"] == ALL),
        key=lambda r: (r["pipeline"], r["payer"], r["fiscal_year"]),
    ):
        key = (r["fiscal_year"], r["pipeline"], ALL, r["payer"])
        day = idx.get(("exhausted_day_of_year",) + key)
        arrears = idx.get(("arrears_cny",) + key)
        trows.append(
            [
                r["pipeline"],
                d.run.payer_label(r["payer"], True),
                str(r["fiscal_year"]),
                f"{pct(r['mean'])} [{pct(r['p_lo'])}–{pct(r['p_hi'])}]",
                f"day {day['p50']:.0f}" if day and day.get("p50") is not None else "",
                WAN.fmt(arrears["mean"]) if arrears else "",
            ]
        )
    s.tables.append(
        Table(
            [
                "pipeline",
                "payer 财政",
                "year 年度",
                "P(runs out) 用尽概率",
                "median day 中位用尽日",
                "arrears 欠付 (万元)",
            ],
            trows,
            "Bounded appropriations only.",
            text_columns=3,
        )
    )
    return s


def convergence(d: ReportData, cjk: bool) -> Section:
    """Monte Carlo standard errors of the headline figures, and whether more draws would change them."""
    from fiscal_sim import headline as hl

    h = hl.load(d.run.path)
    s = Section(
        "convergence",
        "Convergence 模拟收敛性",
        "Monte Carlo standard error (MCSE = sd / √draws) of each headline mean, and the 95% interval of each "
        f"P(exceed). More draws always narrow these; they would change the answer only where ±2 MCSE exceeds "
        f"{100 * hl.REL_SETTLED:.0f}% of the mean or the interval exceeds ±{100 * hl.P_SETTLED:.0f} points. "
        + hl.convergence_text(h, False),
    )
    rows = [
        [
            p["name_zh"] + " " + p["name_en"],
            "mean over the horizon",
            YI.fmt(p["mean_cny"]) + "亿元",
            f"±{YI.fmt(2 * p['mcse_cny'])}亿元 ({pct(2 * p['mcse_cny'] / p['mean_cny'])})",
            "yes" if 2 * p["mcse_cny"] > hl.REL_SETTLED * p["mean_cny"] else "no",
        ]
        for p in h["payers"]
    ]
    rows += [
        [
            b["label_zh"],
            f"P(exceed) {b['worst_year']}",
            pct(b["p_exceed"]),
            f"[{pct(b['p_exceed_lo'])}–{pct(b['p_exceed_hi'])}]",
            "yes" if (b["p_exceed_hi"] - b["p_exceed_lo"]) / 2 > hl.P_SETTLED else "no",
        ]
        for b in h["budget_lines"]
    ]
    s.tables.append(
        Table(
            ["figure 指标", "statistic", "value", "±2 MCSE / 95% interval", "more draws would change it"],
            rows,
            f"{h['draws']:,} draws.",
            text_columns=2,
        )
    )
    return s


def change(d: ReportData, cjk: bool, k: int) -> Section | None:
    """For a comparison: change in cash by year, in P(exceed), and by program."""
    if not d.is_compare or d.baseline is None:
        return None
    run, rows = d.run, d.compare or []
    base = d.baseline
    man = d.compare_manifest or {}
    crn = (
        "with common random numbers (the same applicants in both)"
        if man.get("common_random_numbers", True)
        else "with independent draws"
    )
    s = Section(
        "change",
        f"Reform {run.name} vs baseline {base.name} 政策调整对比",
        f"Change = reform − baseline, computed draw by draw {crn}; ± is the Monte Carlo standard error of the "
        f"mean change.",
    )
    cash = [r for r in rows if r["program"] == ALL and r["measure"] == "cash"]
    payers = [
        p
        for p in payers_with_cash(run)
        if p in (ALL, "city")
        or any(r["payer"] == p and r["period"] == "horizon" and r["change_mean_cny"] for r in cash)
    ]
    for payer in payers[:4]:
        yr = sorted((r for r in cash if r["payer"] == payer and r["period"] == "year"), key=lambda r: r["fiscal_year"])
        if not yr:
            continue
        unit = unit_for([r["change_mean_cny"] for r in yr] + [r["change_p05_cny"] for r in yr])
        title = f"Change in cash 现金支出变化 — {run.payer_label(payer, cjk)}"
        png = charts.change_chart(
            [r["fiscal_year"] for r in yr],
            [r["change_mean_cny"] for r in yr],
            [r["change_p05_cny"] for r in yr],
            [r["change_p95_cny"] for r in yr],
            unit,
            title,
            cjk,
        )
        table = Table(
            [
                "year 年度",
                "baseline 基准",
                "reform 调整后",
                "change 变化",
                "± se",
                "P5 of change",
                "P95 of change",
                "change %",
            ],
            [
                [
                    str(r["fiscal_year"]),
                    unit.fmt(r["baseline_mean_cny"]),
                    unit.fmt(r["reform_mean_cny"]),
                    unit.fmt(r["change_mean_cny"], True),
                    unit.fmt(r["change_se_cny"]),
                    unit.fmt(r["change_p05_cny"], True),
                    unit.fmt(r["change_p95_cny"], True),
                    pct(r["change_pct"], True),
                ]
                for r in yr
            ],
            unit_caption(unit),
        )
        s.charts.append(Chart(f"change-{payer}", title, png, table, title))
    budget = [r for r in rows if r["period"] == "year" and r["change_p_exceed"] is not None]
    if budget:
        keys = sorted({(r["program"], r["payer"], r["measure"]) for r in budget})
        years = sorted({r["fiscal_year"] for r in budget})
        by = {(r["program"], r["payer"], r["measure"], r["fiscal_year"]): r for r in budget}
        lines, trows = [], []
        for key in keys:
            for side in ("baseline", "reform"):
                ps = [by.get(key + (y,), {}).get(f"{side}_p_exceed") for y in years]
                lines.append((f"{program_label(run, key[0], cjk, 14)} · {key[1]} · {side}", ps, ps, ps))
            for y in years:
                r = by.get(key + (y,))
                if r:
                    trows.append(
                        [
                            " · ".join(key),
                            str(y),
                            pct(r["baseline_p_exceed"]),
                            pct(r["reform_p_exceed"]),
                            f"{pct(r['change_p_exceed'], True)} ± {pct(r['change_p_exceed_se'])}",
                        ]
                    )
        png = charts.exceed_chart(years, lines, "P(exceed budget): baseline and reform", cjk)
        s.charts.append(
            Chart(
                "change-exceedance",
                "Change in P(exceed budget)",
                png,
                Table(
                    ["budget line", "year", "baseline", "reform", "change ± se"],
                    trows,
                    "Budget lines of each scenario.",
                    text_columns=2,
                ),
                "change in exceedance",
            )
        )
    progs = sorted(
        (
            r
            for r in rows
            if r["program"] not in TOTALS
            and r["payer"] == ALL
            and r["measure"] == "cash"
            and r["period"] == "horizon"
            and r["change_mean_cny"]
        ),
        key=lambda r: -abs(r["change_mean_cny"]),
    )[:k]
    if progs:
        unit = unit_for(r["change_mean_cny"] for r in progs)
        title = "Programs with the largest change 变化最大的项目"
        png = charts.bar_chart(
            [program_label(run, r["program"], cjk) for r in progs],
            [r["change_mean_cny"] for r in progs],
            unit,
            title,
            cjk,
            bar_label="mean change",
        )
        table = Table(
            ["#"] + PROGRAM_COLUMNS + ["baseline 基准", "reform 调整后", "change 变化", "± se"],
            [
                [str(i + 1)]
                + program_cells(run, r["program"])
                + [
                    unit.fmt(r["baseline_mean_cny"]),
                    unit.fmt(r["reform_mean_cny"]),
                    unit.fmt(r["change_mean_cny"], True),
                    unit.fmt(r["change_se_cny"]),
                ]
                for i, r in enumerate(progs)
            ],
            unit_caption(unit) + " Over the horizon, all payers.",
            text_columns=5,
            css="programs",
        )
        s.charts.append(Chart("change-programs", title, png, table, title))
    return s
