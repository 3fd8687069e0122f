"""The backtest's report section: coverage, PIT histogram and held-out forecasts, each chart with its numbers.

:func:`backtest_section` builds the section from a backtest folder; the run report includes it
(:func:`report_section`, one entry of ``fiscal_sim.report.SECTIONS``) when the run folder holds a backtest in
``RUN/backtest/``, and ``fiscal-sim backtest`` writes it as a page of its own (:func:`standalone_page`).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq

from fiscal_sim.engine.ledger import ALL
from fiscal_sim.report.sections import Chart, Section, Table

TITLE = "Backtest 回测: forecasts against held-out award history"


def find_backtest(folder: Path) -> Path | None:
    """The backtest folder in or at ``folder`` (holding backtest.parquet and backtest.json), if any."""
    for cand in (Path(folder), Path(folder) / "backtest"):
        if (cand / "backtest.parquet").exists() and (cand / "backtest.json").exists():
            return cand
    return None


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def pit_chart(hist: list[int]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5, 3))
    k = len(hist)
    ax.bar((np.arange(k) + 0.5) / k, hist, width=0.9 / k, color="#2b6cb0")
    ax.axhline(sum(hist) / k, color="#c53030", lw=1, ls="--")
    ax.set_xlabel("percentile rank of the actual in the forecast (PIT)")
    ax.set_ylabel("program-years")
    ax.set_title("PIT histogram (awards); dashed: flat, as a calibrated forecast gives")
    return _png(fig)


def intervals_chart(rows: list[dict]) -> bytes:
    """Each program-year's 80% and 90% intervals and its actual, relative to the forecast mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 1.2))
    for i, r in enumerate(rows):
        m = r["forecast_mean"] or 1.0
        ax.plot([r["p05"] / m, r["p95"] / m], [i, i], color="#90cdf4", lw=5, solid_capstyle="butt")
        ax.plot([r["p10"] / m, r["p90"] / m], [i, i], color="#2b6cb0", lw=5, solid_capstyle="butt")
        ax.plot(r["actual"] / m, i, "o", color="#c53030" if r["flag"] else "#1a202c", ms=4)
    ax.axvline(1.0, color="#718096", lw=0.8)
    ax.set_yticks(range(len(rows)), [f"{r['program']} {r['fiscal_year']}" for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("relative to the forecast mean (bars: 80% and 90% intervals; dot: actual)")
    ax.set_title("Held-out awards against their forecast")
    return _png(fig)


def _v(v: float, measure: str) -> str:
    """A value in the measure's display unit: awards as counts, amounts in 万元."""
    return f"{v / 1e4:,.1f}" if measure == "amount_cny" else (f"{v:,.0f}" if v == int(v) else f"{v:,.1f}")


def backtest_section(folder: Path) -> Section:
    """The section for the backtest in ``folder``."""
    summary = json.loads((folder / "backtest.json").read_text(encoding="utf-8"))
    rows = pq.read_table(folder / "backtest.parquet").to_pylist()
    measures = summary["measures"]
    overview = Table(
        ["measure", "program-years", "80% coverage", "90% coverage", "mean CRPS", "flagged programs", "verdict"],
        [
            [
                m,
                str(s["program_years"]),
                f"{s['coverage_80']:.0%}",
                f"{s['coverage_90']:.0%}",
                _v(s["mean_crps"], m),
                "; ".join(f"{p}: {w}" for p, w in s["flagged"].items()) or "none",
                s["verdict"],
            ]
            for m, s in measures.items()
        ],
        caption="CRPS in the measure's unit (awards; 万元 for amounts), lower is better",
        text_columns=1,
    )
    by_program = [
        Table(
            ["program", "held-out years", "in 80%", "in 90%", "mean PIT", "mean CRPS", "flag"],
            [
                [
                    pid,
                    str(p["years"]),
                    str(p["in_80"]),
                    str(p["in_90"]),
                    f"{p['mean_pit']:.2f}",
                    _v(p["mean_crps"], m),
                    p["flag"],
                ]
                for pid, p in s["programs"].items()
            ],
            caption=f"{m} by program (flagged when |z| of the mean PIT exceeds 2.58)",
        )
        for m, s in measures.items()
    ]
    awards = [r for r in rows if r["measure"] == "awards" and r["program"] != ALL]
    hist = measures["awards"]["pit_histogram"]
    pit = Chart(
        "backtest-pit",
        "PIT histogram of held-out awards",
        pit_chart(hist),
        Table(
            ["PIT bin", "program-years"],
            [[f"{i / len(hist):.1f}–{(i + 1) / len(hist):.1f}", str(n)] for i, n in enumerate(hist)],
        ),
    )
    cols = [
        "program",
        "year",
        "measure",
        "actual",
        "mean",
        "P10",
        "P50",
        "P90",
        "PIT",
        "in 80%",
        "in 90%",
        "CRPS",
        "flag",
    ]
    detail = Table(
        cols,
        [
            [
                r["program"],
                str(r["fiscal_year"]),
                r["measure"],
                _v(r["actual"], r["measure"]),
                _v(r["forecast_mean"], r["measure"]),
                _v(r["p10"], r["measure"]),
                _v(r["p50"], r["measure"]),
                _v(r["p90"], r["measure"]),
                f"{r['pit']:.2f}",
                "yes" if r["in_80"] else "no",
                "yes" if r["in_90"] else "no",
                _v(r["crps"], r["measure"]),
                r["flag"],
            ]
            for r in rows
        ],
        caption="amounts in 万元; awards in counts",
        text_columns=3,
        css="programs",
    )
    intervals = Chart(
        "backtest-intervals",
        "Held-out awards against their forecast (80% / 90% intervals)",
        intervals_chart(awards),
        detail,
    )
    intro = (
        f"Uptake calibrated on the history before {summary['holdout_from']}, then {summary['draws']:,} draws of "
        f"the held-out years (scenario {summary['scenario']}). A calibrated forecast puts about 80% (90%) of "
        "actuals inside its 80% (90%) intervals and has a flat PIT histogram."
    )
    return Section("backtest", TITLE, intro, charts=[pit, intervals], tables=[overview, *by_program])


def report_section(d, cjk: bool = False, top: int = 0) -> Section | None:
    """The run report's backtest section (``fiscal_sim.report.SECTIONS``), when ``RUN/backtest/`` exists."""
    folder = find_backtest(Path(d.root))
    return backtest_section(folder) if folder else None


def standalone_page(section: Section, summary: dict) -> str:
    """A report page holding only the backtest section."""
    from fiscal_sim.report.html import page

    meta = [
        ("history", str(summary.get("history", ""))),
        ("holdout from", str(summary["holdout_from"])),
        ("draws · seed", f"{summary['draws']} · {summary['seed']}"),
        ("run", str(summary.get("run_id", ""))),
        ("command", " ".join(summary.get("command") or [])),
    ]
    return page(
        TITLE,
        ["嘉兴市科技创新与人才政策 — uptake calibrated to award history, scored on held-out years"],
        meta,
        [section],
        "Generated by fiscal-sim backtest from backtest.parquet and backtest.json in this folder.",
    )
