"""The backtest's report section: self-contained HTML (inline CSS classes of the main report, PNGs embedded).

:func:`backtest_section` returns the section's HTML and its charts as PNG bytes; the run report
(:mod:`fiscal_sim.report`) includes it when the run folder holds a backtest, and ``fiscal-sim backtest``
writes it as a page of its own (:func:`standalone_page`).
"""

from __future__ import annotations

import base64
import json
from html import escape
from pathlib import Path

import pyarrow.parquet as pq

from fiscal_sim.calibrate.history import ALL

TITLE = "Backtest 回测: forecasts against held-out award history"


def find_backtest(folder: Path) -> Path | None:
    """The backtest folder in or at ``folder`` (holding backtest.parquet and backtest.json), if any."""
    for cand in (Path(folder), Path(folder) / "backtest"):
        if (cand / "backtest.parquet").exists() and (cand / "backtest.json").exists():
            return cand
    return None


def _png(fig) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def charts(rows: list[dict], hist: list[int]) -> list[tuple[str, bytes]]:
    """PIT histogram, and each program-year's 80%/90% intervals and actual relative to the forecast mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    fig, ax = plt.subplots(figsize=(5, 3))
    k = len(hist)
    ax.bar((np.arange(k) + 0.5) / k, hist, width=0.9 / k, color="#2b6cb0")
    ax.axhline(sum(hist) / k, color="#c53030", lw=1, ls="--")
    ax.set_xlabel("percentile rank of the actual in the forecast (PIT)")
    ax.set_ylabel("program-years")
    ax.set_title("PIT histogram (awards); dashed: flat, as a calibrated forecast gives")
    out.append(("backtest-pit", _png(fig)))
    prog = [r for r in rows if r["program"] != ALL]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(prog) + 1.2))
    for i, r in enumerate(prog):
        m = r["forecast_mean"] or 1.0
        ax.plot([r["p05"] / m, r["p95"] / m], [i, i], color="#90cdf4", lw=5, solid_capstyle="butt")
        ax.plot([r["p10"] / m, r["p90"] / m], [i, i], color="#2b6cb0", lw=5, solid_capstyle="butt")
        ax.plot(r["actual"] / m, i, "o", color="#c53030" if r["flag"] else "#1a202c", ms=4)
    ax.axvline(1.0, color="#718096", lw=0.8)
    ax.set_yticks(range(len(prog)), [f"{r['program']} {r['fiscal_year']}" for r in prog], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("relative to the forecast mean (bars: 80% and 90% intervals; dot: actual)")
    ax.set_title("Held-out awards against their forecast")
    out.append(("backtest-intervals", _png(fig)))
    return out


def _fmt(v, measure: str) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if measure == "amount_cny":
        return f"{v / 1e4:,.1f}"
    return f"{v:,.1f}" if v != int(v) else f"{int(v):,d}"


def backtest_section(folder: Path) -> tuple[str, list[tuple[str, bytes]]]:
    """``(html, [(chart id, png bytes)])`` for the backtest in ``folder``."""
    summary = json.loads((folder / "backtest.json").read_text(encoding="utf-8"))
    rows = pq.read_table(folder / "backtest.parquet").to_pylist()
    awards = [r for r in rows if r["measure"] == "awards"]
    pngs = charts(awards, summary["measures"]["awards"]["pit_histogram"])
    parts = [f'<section id="backtest"><h2>{escape(TITLE)}</h2>',
             f'<p class="intro">Uptake calibrated on the history before {summary["holdout_from"]}, then '
             f'{summary["draws"]:,} draws of the held-out years (scenario {escape(summary["scenario"])}). '
             "A calibrated forecast puts about 80% (90%) of actuals inside its 80% (90%) intervals and has a flat "
             "PIT histogram; CRPS is in the measure's unit (awards; 万元 for amounts), lower is better.</p>"]
    head = "".join(f"<th>{h}</th>" for h in ("measure", "program-years", "80% coverage", "90% coverage",
                                             "mean CRPS", "flagged programs", "verdict"))
    body = ""
    for m, s in summary["measures"].items():
        crps = s["mean_crps"] / 1e4 if m == "amount_cny" else s["mean_crps"]
        flagged = "; ".join(f"{p}: {why}" for p, why in s["flagged"].items()) or "none"
        body += (f"<tr><td>{escape(m)}</td><td class=num>{s['program_years']}</td>"
                 f"<td class=num>{s['coverage_80']:.0%}</td><td class=num>{s['coverage_90']:.0%}</td>"
                 f"<td class=num>{crps:,.2f}</td><td>{escape(flagged)}</td><td>{escape(s['verdict'])}</td></tr>")
    parts.append(f'<div class="table-wrap"><table class="data"><thead><tr>{head}</tr></thead>'
                 f"<tbody>{body}</tbody></table></div>")
    for m, s in summary["measures"].items():
        head = "".join(f"<th>{h}</th>" for h in ("program", "held-out years", "in 80%", "in 90%", "mean PIT",
                                                 "mean CRPS", "flag"))
        body = "".join(
            f"<tr><td>{escape(pid)}</td><td class=num>{p['years']}</td><td class=num>{p['in_80']}</td>"
            f"<td class=num>{p['in_90']}</td><td class=num>{p['mean_pit']:.2f}</td>"
            f"<td class=num>{(p['mean_crps'] / 1e4 if m == 'amount_cny' else p['mean_crps']):,.2f}</td>"
            f"<td>{escape(p['flag'])}</td></tr>" for pid, p in s["programs"].items())
        parts.append(f'<div class="table-wrap"><table class="data"><caption>{escape(m)} by program (flag: mean PIT '
                     f"|z| &gt; 2.58)</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")
    for cid, png in pngs:
        parts.append(f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" '
                     f'alt="{cid}" data-chart="{cid}"></figure>')
    cols = ["program", "fiscal_year", "measure", "actual", "forecast_mean", "p10", "p50", "p90", "pit", "in_80",
            "in_90", "crps", "flag"]
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(
        f"<td>{escape(str(r[c]))}</td>" if c in ("program", "fiscal_year", "measure", "flag")
        else f"<td class=num>{escape(f'{r[c]:.2f}' if c == 'pit' else _fmt(r[c], r['measure']))}</td>" for c in cols)
        + "</tr>" for r in rows)
    parts.append(f'<div class="table-wrap"><table class="data"><caption>amounts in 万元; counts in awards'
                 f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></section>")
    return "".join(parts), pngs


def standalone_page(section_html: str) -> str:
    """A complete HTML page around the section (the main report's stylesheet)."""
    from fiscal_sim.report.html import CSS

    return (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(TITLE)}</title>'
            f"<style>{CSS}</style></head><body><main>{section_html}</main></body></html>\n")
