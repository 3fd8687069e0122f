"""The report's assumption-ledger section: what each labelled assumption is worth (``fiscal-sim assumptions``).

Shown when the run folder holds a ledger in ``RUN/assumptions/`` (``fiscal-sim assumptions SCENARIO --out
RUN/assumptions``) — one entry of ``fiscal_sim.report.SECTIONS``. Every number is read from
``assumptions.parquet`` and ``assumptions_budgets.parquet``, never recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from fiscal_sim import headline
from fiscal_sim.report.sections import Section, Table

TITLE = "Assumption ledger 假设清单: what each labelled assumption is worth"


def find_ledger(folder: Path) -> Path | None:
    """The ledger folder in or at ``folder`` (holding assumptions.parquet), if any."""
    for cand in (Path(folder), Path(folder) / "assumptions"):
        if (cand / "assumptions.parquet").is_file() and (cand / "assumptions_budgets.parquet").is_file():
            return cand
    return None


def _yi(cny: float | None, signed: bool = False) -> str:
    return "–" if cny is None else (f"{cny / 1e8:+,.2f}" if signed else f"{cny / 1e8:,.2f}")


def _pct(p: float | None) -> str:
    return "–" if p is None else f"{100 * p:.1f}%"


def ledger_section(folder: Path) -> Section:
    rows = sorted(pq.read_table(folder / "assumptions.parquet").to_pylist(), key=lambda r: r["rank"])
    lines = pq.read_table(folder / "assumptions_budgets.parquet").to_pylist()
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    cash = Table(
        [
            "#",
            "alternative",
            "kind",
            "what it assumes instead",
            "all payers Δ 亿元",
            "± se",
            "city Δ 亿元",
            "± se",
            "note",
        ],
        [
            [
                str(r["rank"]),
                r["alternative"],
                r["kind"],
                r["title"],
                _yi(r["change_horizon_cash_all_cny"], True),
                _yi(r["change_horizon_cash_all_se_cny"]),
                _yi(r["change_horizon_cash_city_cny"], True),
                _yi(r["change_horizon_cash_city_se_cny"]),
                r["note"],
            ]
            for r in rows
        ],
        caption="Change in expected grant cash over the horizon (亿元) when one assumption is switched, "
        "common random numbers; ± the paired Monte Carlo standard error.",
        text_columns=4,
    )
    rank = {r["alternative"]: r["rank"] for r in rows}
    budget = Table(
        ["alternative", "budget line", "worst year, P(exceed)", "with the alternative", "Δ P", "± se"],
        [
            [
                b["alternative"],
                f"{b['payer']}/{b['program']} {b['budget_cny'] / 1e4:,.0f}万元",
                f"{b['baseline_worst_year']}, {_pct(b['baseline_p_exceed'])}",
                f"{b['alternative_worst_year']}, {_pct(b['alternative_p_exceed'])}",
                f"{100 * b['change_p_exceed']:+.1f} pt",
                _pct(b["change_p_exceed_se"]),
            ]
            for b in sorted(lines, key=lambda b: rank[b["alternative"]])
        ],
        caption="Each budget line's worst-year probability of being exceeded, the scenario's and the "
        "alternative's (each in its own worst year). Budget lines are the scenario's; where no "
        "document sets one they are illustrative, not appropriations.",
        text_columns=4,
    )
    top = headline.assumption_lines(rows, lines)
    intro = (
        f"{len(rows)} named alternatives (scenarios/catalogue/alternatives.yaml and the scenario's own), each run "
        f"against {manifest['scenario']['name']} with the same {manifest['draws']:,} draws. "
        + (
            f"The scenario's figures include its commitment register {register} (where a register is "
            f"synthetic, so are they). "
            if (register := manifest["scenario"].get("register"))
            else ""
        )
        + " ".join(top[:1])
        + " "
        + "; ".join(f"{a.strip()} {b.strip()}" for a, b in zip(top[1::2], top[2::2]))
    )
    return Section("assumptions", TITLE, intro, tables=[cash, budget])


def report_section(d, cjk: bool = False, top: int = 0) -> Section | None:
    """The run report's ledger section (``fiscal_sim.report.SECTIONS``), when ``RUN/assumptions/`` exists."""
    folder = find_ledger(Path(d.root))
    return ledger_section(folder) if folder else None
