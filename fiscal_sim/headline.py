"""The answer up front: will we exceed the budget, by how much, because of what, and what would hold it.

:func:`compute` reads a run folder's summary (and its pipeline summary when the
run had ``--pipeline``) and returns the headline as a dict of sections (add a
section by adding a key; :data:`KEYS` lists the ones a stored headline must
have): horizon grant cash by payer (mean, P90); each budget line's worst year
(P(exceed) with its Wilson interval and the expected overrun when exceeded),
the programs driving that year's breach (their share of the overrun in the
draws exceeding the line, kept by the run as it simulates), the appropriation
holding the risk at 10% / 5% every year (the line's P90 / P95) and the
in-force caveats; the three programs that weigh most in the worst 5% of draws;
each bounded appropriation's risk of running out — with the same text in
Chinese and English. ``headline.json`` in a run folder holds it; the CLI
prints its text; the HTML report and the brief open with it. Every number is
read from the summary tables (drivers and tail means kept by the run), never
recomputed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

ALL, ALL_EQUITY = "ALL", "ALL_EQUITY"
TOP = 3
FILE = "headline.json"


def _read(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist() if path.is_file() else []


def _yi(cny: float | None) -> str:
    return "–" if cny is None else f"{cny / 1e8:,.2f}"


def _wan(cny: float | None) -> str:
    return "–" if cny is None else f"{cny / 1e4:,.0f}"


def _pct(p: float | None) -> str:
    return "–" if p is None else f"{100 * p:.1f}%"


def payer_names(payers: dict[str, dict[str, Any]], payer: str) -> tuple[str, str]:
    """(Chinese, English) name of a payer; ``ALL`` is every payer together."""
    if payer == ALL:
        return "全部财政", "all payers"
    p = payers.get(payer, {})
    return p.get("name_zh") or payer, p.get("name_en") or payer


def _by_payer(rows: list[dict[str, Any]], payers: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    order = {p: v.get("sort_order", i + 1) for i, (p, v) in enumerate(payers.items())} | {ALL: 0}
    out = []
    for r in rows:
        if r["program"] == ALL and r["measure"] == "cash" and r["period"] == "horizon" and r["mean_cny"]:
            zh, en = payer_names(payers, r["payer"])
            out.append(
                {
                    "payer": r["payer"],
                    "name_zh": zh,
                    "name_en": en,
                    "mean_cny": r["mean_cny"],
                    "p90_cny": r["p90_cny"],
                    "mcse_cny": r["mcse_cny"],
                }
            )
    return sorted(out, key=lambda r: (order.get(r["payer"], len(order)), r["payer"]))


def _drivers(parts: dict[str, float] | None, exceeded: int, programs: dict) -> list[dict[str, Any]] | None:
    """The programs that make up a line's overrun in the draws exceeding it (largest first, top ``TOP``): each
    one's share of the overrun and its mean part of it per exceeding draw, yuan. None when the run kept none."""
    if parts is None:
        return None
    total = sum(parts.values())
    ranked = sorted(parts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    return [
        {
            "program": p,
            "title_zh": programs.get(p, {}).get("title_zh") or p,
            "title_en": programs.get(p, {}).get("title_en") or p,
            "share": v / total if total else None,
            "overrun_mean_cny": round(v / exceeded, 2) if exceeded else None,
        }
        for p, v in ranked
    ]


def _caveats(yrs: list[dict[str, Any]], members: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Years whose risk moves sharply (by 5 points and at least twofold) in the same year as a document the line
    pays for starts, or stops taking awards a year or two before (awards are paid a year or so after they are
    decided): the change comes from the policy's in-force dates, not from chance."""
    out = []
    for a, b in zip(yrs, yrs[1:]):
        pa, pb = a["p_exceed"], b["p_exceed"]
        if abs(pb - pa) < 0.05 or min(pa, pb) * 2 > max(pa, pb):
            continue
        y = b["fiscal_year"]
        docs: dict[tuple[str, str], str] = {}
        for m in members:
            doc, start, end = m.get("document_number"), m.get("in_force_from"), m.get("in_force_to")
            if doc and end is not None and y - 2 <= end.year <= y - 1 and pb < pa:
                docs[(doc, "lapses")] = end.isoformat()
            if doc and start is not None and y - 1 <= start.year <= y and pb > pa:
                docs[(doc, "starts")] = start.isoformat()
        for (doc, kind), date in sorted(docs.items()):
            out.append(
                {
                    "from_year": a["fiscal_year"],
                    "to_year": y,
                    "p_from": pa,
                    "p_to": pb,
                    "document_number": doc,
                    "change": kind,
                    "date": date,
                }
            )
    return out


def _budget_lines(
    rows: list[dict[str, Any]], programs: dict, payers: dict, drivers: dict[str, dict[str, float]] | None = None
) -> list[dict[str, Any]]:
    """Each budget line: its worst year, the drivers of that year's breach, the appropriations holding the risk
    at 10% and 5% (the P90 and P95 of the line's series in each year) and the in-force caveats."""
    lines: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r["period"] == "year" and r.get("p_exceed") is not None:
            lines.setdefault((r["program"], r["payer"], r["measure"]), []).append(r)
    out = []
    for (prog, payer, measure), yrs in lines.items():
        yrs.sort(key=lambda r: r["fiscal_year"])
        worst = max(yrs, key=lambda r: (r["p_exceed"], -r["fiscal_year"]))
        pzh, pen = payer_names(payers, payer)
        title = programs.get(prog, {})
        exceeded = int(round(worst["p_exceed"] * worst["draws"]))
        parts = None if drivers is None else drivers.get(f"{prog}|{payer}|{measure}|{worst['fiscal_year']}", {})
        members = [
            v
            for k, v in programs.items()
            if k == prog or (prog in (ALL, ALL_EQUITY) and not v.get("is_total") and v.get("simulated", True))
        ]
        years = [
            {
                k: r.get(k)
                for k in (
                    "fiscal_year",
                    "budget_cny",
                    "p_exceed",
                    "p_exceed_lo",
                    "p_exceed_hi",
                    "overrun_if_exceeded_cny",
                )
            }
            | {"hold_p90_cny": r["p90_cny"], "hold_p95_cny": r["p95_cny"]}
            for r in yrs
        ]
        out.append(
            {
                "program": prog,
                "payer": payer,
                "measure": measure,
                "label_zh": f"{pzh}·{'全部项目' if prog == ALL else title.get('title_zh') or prog}",
                "label_en": f"{pen}, {'all programs' if prog == ALL else title.get('title_en') or prog}",
                "worst_year": worst["fiscal_year"],
                "budget_cny": worst["budget_cny"],
                "p_exceed": worst["p_exceed"],
                "p_exceed_lo": worst["p_exceed_lo"],
                "p_exceed_hi": worst["p_exceed_hi"],
                "overrun_if_exceeded_cny": worst.get("overrun_if_exceeded_cny"),
                "drivers": _drivers(parts, exceeded, programs),
                "hold": {
                    "p90_cny": max(r["p90_cny"] for r in yrs),
                    "p95_cny": max(r["p95_cny"] for r in yrs),
                    "p90_year": max(yrs, key=lambda r: (r["p90_cny"], -r["fiscal_year"]))["fiscal_year"],
                    "p95_year": max(yrs, key=lambda r: (r["p95_cny"], -r["fiscal_year"]))["fiscal_year"],
                },
                "caveats": _caveats(years, members),
                "years": years,
            }
        )
    return sorted(out, key=lambda b: -b["p_exceed"])


TAIL_LEVEL = 0.95


def tail_size(draws: int, level: float = TAIL_LEVEL) -> int:
    """How many draws make the worst ``1 − level`` of ``draws``."""
    return max(1, int(round((1 - level) * draws)))


def tail_contributions(folder: Path, draws: int, level: float = TAIL_LEVEL) -> dict[str, float] | None:
    """Each program's mean grant cash over the horizon in the worst ``1 − level`` of draws (by all payers' total),
    from the per-draw ledger ``draws/``; these sum to the total's mean in those draws. None without a ledger.
    (A run computes the same while it simulates, :class:`fiscal_sim.stats.TopDraws`; this reads it back from an
    older run's folder.)"""
    parts = list((folder / "draws").rglob("*.parquet")) if (folder / "draws").is_dir() else []
    if not parts or not draws:
        return None
    import duckdb

    k = tail_size(draws, level)
    glob = str(folder / "draws" / "**" / "*.parquet").replace("'", "''")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")  # a long scan must not draw a bar over the terminal's output
    rows = con.sql(f"""
        WITH d AS (SELECT draw, program, sum(cash_cny) AS cash
                   FROM read_parquet('{glob}', hive_partitioning = false) WHERE spending = 'grant' GROUP BY ALL),
             tail AS (SELECT draw, sum(cash) AS total FROM d GROUP BY draw ORDER BY total DESC, draw LIMIT {k})
        SELECT program, sum(cash) / {k} FROM d JOIN tail USING (draw) GROUP BY program""").fetchall()
    return {p: float(v) for p, v in rows}


def _top_tail(rows: list[dict[str, Any]], programs: dict, tail: dict[str, float] | None) -> list[dict[str, Any]]:
    """The programs that weigh most in the tail: by their mean cash in the worst 5% of draws (``tail``: a run
    computes it; an older run's per-draw ledger gives it), else by their own P95 of horizon cash."""
    progs = [
        r
        for r in rows
        if r["program"] not in (ALL, ALL_EQUITY)
        and r["payer"] == ALL
        and r["measure"] == "cash"
        and r["period"] == "horizon"
        and r["p95_cny"]
    ]
    if tail:
        progs.sort(key=lambda r: (-tail.get(r["program"], 0.0), r["program"]))
    else:
        progs.sort(key=lambda r: (-r["p95_cny"], r["program"]))
    return [
        {
            "program": r["program"],
            "title_zh": programs.get(r["program"], {}).get("title_zh") or r["program"],
            "title_en": programs.get(r["program"], {}).get("title_en") or r["program"],
            "p95_cny": r["p95_cny"],
            "mean_cny": r["mean_cny"],
            "tail_mean_cny": round(tail.get(r["program"], 0.0), 2) if tail else None,
            "ranked_by": "tail_mean" if tail else "p95",
        }
        for r in progs[:TOP]
    ]


def _pipeline(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (pipeline, payer): the year its appropriation most likely runs out, when, and the arrears then."""
    ex = [r for r in rows if r["measure"] == "exhausted" and r["program"] == ALL]
    idx = {(r["measure"], r["fiscal_year"], r["pipeline"], r["program"], r["payer"]): r for r in rows}
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for r in ex:
        k = (r["pipeline"], r["payer"])
        if k not in worst or (r["mean"], -r["fiscal_year"]) > (worst[k]["mean"], -worst[k]["fiscal_year"]):
            worst[k] = r
    out = []
    for (pipe, payer), r in sorted(worst.items()):
        key = (r["fiscal_year"], pipe, ALL, payer)
        day = idx.get(("exhausted_day_of_year",) + key)
        arrears = idx.get(("arrears_cny",) + key)
        date = (
            (dt.date(r["fiscal_year"], 1, 1) + dt.timedelta(days=int(day["p50"]) - 1)).isoformat()
            if day and day.get("p50") is not None
            else None
        )
        out.append(
            {
                "pipeline": pipe,
                "payer": payer,
                "fiscal_year": r["fiscal_year"],
                "p_exhausted": r["mean"],
                "p_lo": r["p_lo"],
                "p_hi": r["p_hi"],
                "median_exhaustion_date": date,
                "arrears_mean_cny": arrears["mean"] if arrears else None,
            }
        )
    return sorted(out, key=lambda p: -p["p_exhausted"])


REL_SETTLED = 0.01
"""a mean is settled when ±2 MCSE is within 1% of it"""
P_SETTLED = 0.02
"""a probability is settled when its 95% interval is within ±2 percentage points"""


def _convergence(payers: list[dict[str, Any]], budgets: list[dict[str, Any]]) -> dict[str, Any]:
    """Would more draws change the answer? Means: is ±2 MCSE within 1% of each mean? Probabilities: is each
    worst-year P(exceed) interval within ±2 points? (More draws always narrow the error; these say whether
    they would change what the figures tell the reader.)"""
    worst_mean = max((2 * p["mcse_cny"] for p in payers), default=0.0)
    rel = max((2 * p["mcse_cny"] / p["mean_cny"] for p in payers if p["mean_cny"]), default=0.0)
    worst_p = max((b["p_exceed_hi"] - b["p_exceed_lo"] for b in budgets), default=0.0)
    return {
        "max_2mcse_cny": worst_mean,
        "max_2mcse_relative": rel,
        "means_stable": rel <= REL_SETTLED,
        "max_interval_width": worst_p,
        "probabilities_stable": worst_p / 2 <= P_SETTLED,
    }


def compute(
    summary: list[dict[str, Any]],
    programs: dict[str, dict[str, Any]],
    payers: dict[str, dict[str, Any]],
    pipeline: list[dict[str, Any]] | None = None,
    manifest: dict[str, Any] | None = None,
    tail: dict[str, float] | None = None,
    drivers: dict[str, dict[str, float]] | None = None,
) -> dict[str, Any]:
    """The headline of one run from its summary rows (and pipeline summary rows), with zh/en text; ``drivers``:
    each budget line's overrun split among programs (:func:`fiscal_sim.orchestrate.run.breach_parts`)."""
    m = manifest or {}
    summary = [r for r in summary if r.get("vintage") in (None, "ALL")]  # the all-vintage series
    years = sorted({r["fiscal_year"] for r in summary if r["period"] == "year"})
    by_payer = _by_payer(summary, payers)
    budgets = _budget_lines(summary, programs, payers, drivers)
    h = {
        "scenario": summary[0]["scenario"] if summary else m.get("scenario", {}).get("name"),
        "horizon": [years[0], years[-1]] if years else None,
        "draws": summary[0]["draws"] if summary else None,
        "unit_note": "amounts in yuan (*_cny); text in 亿元 and 万元",
        "payers": by_payer,
        "budget_lines": budgets,
        "top_tail": _top_tail(summary, programs, tail),
        "pipeline": _pipeline(pipeline) if pipeline else None,
        "convergence": _convergence(by_payer, budgets),
        "data_notes": data_notes(programs, m),
    }
    h["basis"] = basis(m, programs, summary)
    for b in budgets:
        b["basis"] = h["basis"]["budget_basis"].get(f"{b['payer']}/{b['program']}", "illustrative")
    h["text"] = {"en": text(h, "en"), "zh": text(h, "zh")}
    return h


def data_notes(programs: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """What the figures rest on that is not a document: a register whose rows are synthetic, and estimated
    pre-horizon cohorts (programs.parquet ``existing_source``, the manifest's ``commitments``)."""
    sources = {p: r.get("existing_source") or "" for p, r in programs.items() if not r.get("is_total")}
    out = []
    syn = sorted(p for p, s in sources.items() if "SYNTHETIC" in s)
    if syn:
        path = Path((manifest.get("commitments") or {}).get("path") or "register").name
        out.append(
            {
                "kind": "synthetic_register",
                "programs": syn,
                "file": path,
                "zh": f"注意：{len(syn)}个项目的既有承诺来自合成登记册 {path}（示例数据，非财政部门台账），相关数字仅作示例",
                "en": f"Note: the existing book of {len(syn)} programs comes from the SYNTHETIC register {path} "
                "(illustrative rows, not a bureau's book): figures resting on it are an illustration",
            }
        )
    est = sorted(p for p, s in sources.items() if "estimated" in s)
    if est:
        out.append(
            {
                "kind": "estimated_cohorts",
                "programs": est,
                "zh": f"假设：{len(est)}个项目的以前年度奖励按先验估算（未提供登记册的年份）",
                "en": f"Assumption: earlier awards of {len(est)} programs are estimated from the priors "
                "(cohort years no register covers)",
            }
        )
    return out


def basis(
    manifest: dict[str, Any], programs: dict[str, dict[str, Any]], summary: list[dict[str, Any]]
) -> dict[str, Any]:
    """What the figures rest on, from the manifest, programs.parquet and the summary: the scenario's policy basis,
    the programs whose existing book comes from a register declared synthetic, and the share of mean horizon cash
    (all payers, all vintages) paid by a program in a year whose count is an assumption (no in-date target)."""
    book = manifest.get("commitments") or {}
    cash = [
        r
        for r in summary
        if r["period"] == "year"
        and r["measure"] == "cash"
        and r["payer"] == "ALL"
        and r["program"] in programs
        and not programs[r["program"]].get("is_total")
    ]

    def assumed(r: dict[str, Any]) -> bool:
        p = programs[r["program"]]
        until = p.get("uptake_target_until")
        target = p.get("uptake_basis") == "target" and (until is None or r["fiscal_year"] <= until)
        return p.get("uptake_basis") != "calibrated" and not target

    total = sum(r["mean_cny"] for r in cash)
    left_out = [r for p, r in programs.items() if r.get("simulated") is False]
    bespoke = sorted(r["program"] for r in left_out if any(k in (r.get("quote") or "") for k in CASE_BY_CASE))
    return {
        "policy_basis": (manifest.get("scenario") or {}).get("policy_basis"),
        "budget_basis": {f"{b['payer']}/{b['program']}": b["basis"] for b in manifest.get("budgets") or []},
        "left_out": {"unpriced": sum(1 for r in left_out if r.get("status") == "unpriced"), "case_by_case": bespoke},
        "synthetic_register": book.get("path") if book.get("synthetic") else None,
        "synthetic_programs": sorted(p for p, r in programs.items() if r.get("synthetic_rows")),
        "assumed_count_share": sum(r["mean_cny"] for r in cash if assumed(r)) / total if total else None,
    }


CASE_BY_CASE = ("一事一议", "一企一策", "一案一策", "一事一策")
"""the documents' words for a package decided case by case (no amount, no cap): likely the largest left out"""

POLICY_BASIS = {
    "as_written": (
        "政策按文本：各文件在文本（或注明的有效期假设）所定之日停止",
        "Policy as written: each document stops where its text (or a stated validity assumption) says",
    ),
    "current_policy": (
        "现行政策延续：期初有效的文件到期后按原条款续期",
        "Current policy continues: documents in force at the start renew on their terms",
    ),
}


def basis_lines(b: dict[str, Any], lang: str) -> list[str]:
    """The headline's lines on what its figures rest on (policy basis, synthetic register rows)."""
    zh = lang == "zh"
    out = []
    if b.get("policy_basis") in POLICY_BASIS:
        out.append(POLICY_BASIS[b["policy_basis"]][0 if zh else 1])
    kinds = set((b.get("budget_basis") or {}).values())
    if "illustrative" in kinds:
        out.append(
            "示意预算线：文件未设定，并非拨款"
            if zh
            else "Illustrative lines: no document sets them; they are not appropriations"
        )
    if "document" in kinds:
        out.append(
            "部分预算线来自文件所定额度（见 headline.json budget_basis）"
            if zh
            else "Some budget lines are amounts a document states (see budget_basis in headline.json)"
        )
    lo = b.get("left_out") or {}
    if lo.get("unpriced"):
        cases = lo["case_by_case"]
        out.append(
            f"合计未含{lo['unpriced']}项未定价条款" + ("；可能最大的是一事一议类：" if cases else "")
            if zh
            else f"The total leaves out {lo['unpriced']} unpriced provisions"
            + ("; likely largest, 一事一议 packages:" if cases else "")
        )
        out += [f"  {pid}" for pid in cases]
    if b.get("assumed_count_share") is not None:
        share = _pct(b["assumed_count_share"])
        out.append(
            f"期内现金中{share}建立在假设的受理数量上（无有效期内文件目标）"
            if zh
            else f"{share} of horizon cash rests on assumed counts (no in-date document target)"
        )
    return out


def from_folder(
    folder: Path | str, tail: dict[str, float] | None = None, drivers: dict[str, dict[str, float]] | None = None
) -> dict[str, Any]:
    """The headline of a run folder (summary.parquet, dimension tables, optional pipeline_summary.parquet);
    ``tail``: each program's mean cash in the worst draws, when the caller has it (else read from the per-draw
    ledger when there is one)."""
    folder = Path(folder)
    progs = {r["program"]: r for r in _read(folder / "programs.parquet")}
    pays = {r["payer"]: r for r in _read(folder / "payers.parquet")}
    manifest = (
        json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        if (folder / "manifest.json").is_file()
        else {}
    )
    pipe = _read(folder / "pipeline_summary.parquet") or None
    summary = _read(folder / "summary.parquet")
    if tail is None:
        tail = tail_contributions(folder, summary[0]["draws"] if summary else 0)
    return compute(summary, progs, pays, pipe, manifest, tail, drivers)


KEYS = {
    "scenario",
    "horizon",
    "draws",
    "payers",
    "budget_lines",
    "top_tail",
    "pipeline",
    "convergence",
    "text",
    "data_notes",
    "basis",
}


def load(folder: Path | str) -> dict[str, Any]:
    """The headline the run wrote (``headline.json``), computed afresh when it is absent or of another version."""
    try:
        h = json.loads((Path(folder) / FILE).read_text(encoding="utf-8"))
        if isinstance(h, dict) and KEYS <= set(h) and all("hold" in b for b in h["budget_lines"]):
            return h
    except (OSError, ValueError):
        pass
    return from_folder(folder)


def write(
    folder: Path | str, tail: dict[str, float] | None = None, drivers: dict[str, dict[str, float]] | None = None
) -> dict[str, Any]:
    """Compute the headline of ``folder`` and write it to ``folder/headline.json``."""
    from fiscal_sim.io.parquet import write_json

    h = from_folder(folder, tail, drivers)
    write_json(h, Path(folder) / FILE)
    return h


def text(h: dict[str, Any], lang: str) -> list[str]:
    """The headline as lines in ``lang`` (``en`` or ``zh``): numbers first, names and titles whole (the terminal
    wraps a long line between words, :func:`fiscal_sim.terminal.wrapped`)."""
    zh = lang == "zh"
    span = f"{h['horizon'][0]}–{h['horizon'][1]}" if h["horizon"] else ""
    out = [
        f"{h['scenario']} {span}，{h['draws']:,}次模拟：资助资金现金支出合计（亿元）"
        if zh
        else f"{h['scenario']} {span}, {h['draws']:,} draws: grant cash over the horizon (亿元)"
    ]
    out.append("        均值      P90" if zh else "        mean      P90")
    for p in h["payers"]:  # numbers first: a long name wraps at the terminal's width, never cut
        out.append(f"  {_yi(p['mean_cny']):>8} {_yi(p['p90_cny']):>8}  {p['name_zh'] if zh else p['name_en']}")
    if not h["budget_lines"]:
        out.append(
            "预算线：情景未设置（在情景文件中加入 budgets:）"
            if zh
            else "Budget lines: none set in the scenario (add `budgets:` to see P(exceed))"
        )
    for b in h["budget_lines"]:
        out += budget_text(b, zh)
    drivers = any(b.get("drivers") for b in h["budget_lines"])
    if h["top_tail"] and not drivers:
        by_tail = h["top_tail"][0]["ranked_by"] == "tail_mean"
        if by_tail:
            out.append(
                "最差5%情形中支出最多的项目（期内现金均值，亿元）："
                if zh
                else "Largest in the worst 5% of draws (their mean horizon cash, 亿元):"
            )
        else:
            out.append(
                "尾部风险最大的项目（期内现金 P95，亿元）：" if zh else "Largest tail risk (P95 of horizon cash, 亿元):"
            )
        for i, t in enumerate(h["top_tail"], 1):
            v = t["tail_mean_cny"] if by_tail else t["p95_cny"]
            out.append(f"  {i}. {_yi(v):>8}  {t['title_zh'] if zh else t['title_en']}")
    for p in h["pipeline"] or []:
        when = p["median_exhaustion_date"]
        ci = f"{_pct(p['p_exhausted'])} [{_pct(p['p_lo'])}–{_pct(p['p_hi'])}]"
        if zh:
            out += [
                f"拨款 {p['pipeline']}（{p['payer']}）：{p['fiscal_year']}年用尽概率 {ci}",
                ("  中位用尽日 " + when + "，" if when else "  ") + f"年末欠付均值 {_wan(p['arrears_mean_cny'])}万元",
            ]
        else:
            out += [
                f"Appropriation {p['pipeline']} ({p['payer']}): P(runs out) in {p['fiscal_year']} {ci}",
                (f"  median date {when}; " if when else "  ") + f"expected arrears {_wan(p['arrears_mean_cny'])}万元",
            ]
    out += basis_lines(h.get("basis") or {}, lang)
    out += [n["zh" if zh else "en"] for n in h.get("data_notes") or []]
    out.append(convergence_text(h, zh))
    return out


def convergence_text(h: dict[str, Any], zh: bool) -> str:
    """The Monte Carlo error of the headline, and whether more draws would change what it says."""
    c = h["convergence"]
    stable = c["means_stable"] and c["probabilities_stable"]
    rel = c.get("max_2mcse_relative")
    mean = f"±{_yi(c['max_2mcse_cny'])}亿元" + (f" ({100 * rel:.1f}%)" if rel is not None else "")
    p = f"±{_pct(c['max_interval_width'] / 2)}" if h["budget_lines"] else None
    if zh:
        return (
            f"蒙特卡洛误差：均值 {mean}"
            + (f"，超支概率 {p}" if p else "")
            + ("；增加模拟次数不会改变结论" if stable else "；增加模拟次数可缩小误差，结论可能变化")
        )
    return (
        f"Monte Carlo error: means {mean}"
        + (f", P(exceed) {p}" if p else "")
        + (
            "; more draws would not change the answer"
            if stable
            else "; more draws would narrow it and may change the answer"
        )
    )


def budget_text(b: dict[str, Any], zh: bool) -> list[str]:
    """One budget line's part of the headline: risk in its worst year, the drivers of that year's breach, the
    appropriation holding the risk at 10% / 5% every year, and the in-force caveats."""
    over = b["overrun_if_exceeded_cny"]
    ci = f"{_pct(b['p_exceed'])} [{_pct(b['p_exceed_lo'])}–{_pct(b['p_exceed_hi'])}]"
    hold = b.get("hold")
    if zh:
        out = [
            f"{'示意' if b.get('basis') == 'illustrative' else ''}预算线 {b['label_zh']}：每年 {_wan(b['budget_cny'])}万元",
            f"  最可能超支的年份 {b['worst_year']}：超支概率 {ci}"
            + (f"，超支时平均超出 {_wan(over)}万元" if over is not None else ""),
        ]
    else:
        out = [
            f"{'Illustrative' if b.get('basis') == 'illustrative' else 'Budget'} line {b['label_en']}: "
            f"{_wan(b['budget_cny'])}万元 a year",
            f"  worst year {b['worst_year']}: P(exceed) {ci}"
            + (f"; overrun if exceeded {_wan(over)}万元" if over is not None else ""),
        ]
    if b.get("drivers") and b["program"] in (ALL, ALL_EQUITY):  # a one-program line is its own driver
        out.append(
            f"  {b['worst_year']}年超支的来源（占超支额）："
            if zh
            else f"  what makes up the {b['worst_year']} overrun (share of it):"
        )
        for i, d in enumerate(b["drivers"], 1):
            out.append(f"    {i}. {_pct(d['share']):>6}  {d['title_zh'] if zh else d['title_en']}")
    if hold:
        out.append(
            f"  每年超支概率≤10% / ≤5%所需拨款：{_wan(hold['p90_cny'])} / {_wan(hold['p95_cny'])}万元"
            f"（{hold['p90_year']}年最高）"
            if zh
            else f"  appropriation for ≤10% / ≤5% risk every year: {_wan(hold['p90_cny'])} / "
            f"{_wan(hold['p95_cny'])}万元 (peak {hold['p90_year']})"
        )
    for c in b.get("caveats") or []:
        if zh:
            what = f"施行至{c['date']}（奖励次年兑付）" if c["change"] == "lapses" else f"自{c['date']}起施行"
            out.append(
                f"  注意：{c['from_year']}→{c['to_year']}年超支概率 {_pct(c['p_from'])}→{_pct(c['p_to'])}，"
                f"因{c['document_number']}{what}"
            )
        else:
            what = "in force until" if c["change"] == "lapses" else "in force from"
            out.append(
                f"  note: P(exceed) {_pct(c['p_from'])} in {c['from_year']} → {_pct(c['p_to'])} in "
                f"{c['to_year']}: {c['document_number']} {what} {c['date']}"
            )
    return out


def lines(h: dict[str, Any]) -> list[str]:
    """The headline for the terminal: English with Chinese names where they help."""
    return h["text"]["en"]


def compare_lines(rows: list[dict[str, Any]], base: dict[str, Any], reform: dict[str, Any]) -> list[str]:
    """A comparison's headline: horizon cash of all payers and the city, baseline → reform with the change's
    standard error (from compare.parquet rows), and each budget line's worst-year P(exceed) in both."""
    out = [f"{reform['scenario']} vs {base['scenario']}: grant cash over the horizon (亿元), change ± se"]
    for r in sorted(rows, key=lambda r: r["payer"] != ALL):
        if r["program"] == ALL and r["measure"] == "cash" and r["period"] == "horizon" and r["payer"] in (ALL, "city"):
            name = next((p["name_en"] for p in reform["payers"] if p["payer"] == r["payer"]), r["payer"])
            out.append(
                f"  {'all payers' if r['payer'] == ALL else name}: {_yi(r['baseline_mean_cny'])} → "
                f"{_yi(r['reform_mean_cny'])} ({r['change_mean_cny'] / 1e8:+,.2f} ± {_yi(r['change_se_cny'])})"
            )
    before = {(b["program"], b["payer"], b["measure"]): b for b in base["budget_lines"]}
    for b in reform["budget_lines"]:
        a = before.get((b["program"], b["payer"], b["measure"]))
        was = f"{_pct(a['p_exceed'])} ({a['worst_year']}) → " if a else ""
        out.append(f"  P(exceed) {b['label_en']}: {was}{_pct(b['p_exceed'])} ({b['worst_year']})")
    return out


def sweep_lines(rows: list[dict[str, Any]], columns: list[str], programs: dict, payers: dict) -> list[str]:
    """A sweep's headline: per point, all payers' horizon cash (mean, P90) and the worst budget line."""
    out = ["Sweep: grant cash of all payers over the horizon (亿元) and the riskiest budget line, per point"]
    points = sorted({r["point"] for r in rows})
    for i in points:
        mine = [r for r in rows if r["point"] == i]
        h = compute(mine, programs, payers)
        values = ", ".join(f"{c}={mine[0][c]}" for c in columns)
        tot = next((p for p in h["payers"] if p["payer"] == ALL), None)
        line = f"    mean {_yi(tot and tot['mean_cny'])}, P90 {_yi(tot and tot['p90_cny'])}"
        if h["budget_lines"]:
            b = h["budget_lines"][0]
            line += f"; P(exceed) {b['label_en']} {_pct(b['p_exceed'])} in {b['worst_year']}"
        out += [f"  point {i}: {values}", line]
    return out


def assumption_lines(
    rows: list[dict[str, Any]], budgets: list[dict[str, Any]], lang: str = "en", top: int = TOP
) -> list[str]:
    """The assumption ledger's headline: the ``top`` alternatives that move horizon cash most (all payers or city)
    (ranked rows of assumptions.parquet), each with the city's change and the largest change of a budget
    line's worst-year P(exceed) (assumptions_budgets.parquet), ± the paired standard error."""
    zh = lang == "zh"
    ranked = sorted((r for r in rows if r["changes_scenario"]), key=lambda r: r["rank"])[:top]
    if not ranked:
        return []
    out = [
        "答案变动最大的假设（期内资助现金变动，亿元，±标准误）："
        if zh
        else "The answer moves most with (change in horizon grant cash, 亿元, ± se):"
    ]
    for i, r in enumerate(ranked, 1):
        mine = [b for b in budgets if b["alternative"] == r["alternative"]]
        b = max(mine, key=lambda b: abs(b["change_p_exceed"]), default=None)
        cash = (
            f"{r['change_horizon_cash_all_cny'] / 1e8:+,.2f} ± {_yi(r['change_horizon_cash_all_se_cny'])}"
            f"{'，市本级' if zh else ', city'} {r['change_horizon_cash_city_cny'] / 1e8:+,.2f}"
        )
        p = (
            ""
            if b is None
            else (
                f"{'；' if zh else '; '}P(exceed) {b['payer']}/{b['program']} {_pct(b['baseline_p_exceed'])} "
                f"({b['baseline_worst_year']}) → {_pct(b['alternative_p_exceed'])} ({b['alternative_worst_year']})"
            )
        )
        out += [f"  {i}. {r['alternative']}: {r['title']}", f"     {cash}{p}"]
    return out
