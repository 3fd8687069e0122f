"""The baseline's aggregate is locked: horizon cash by program and payer (fixed seed, 500 draws) must equal the
committed file, so a change of the catalogue or the engine that moves the baseline is always a reviewed change.

On a difference the test writes the actual figures beside the expected file and says how to review and accept
them (``make accept-baseline``). The comparison allows 1e-9 relative (plus one fen): numpy's vectorised exp/log
may differ in the last bit between CPUs, which moves no figure a reader sees, while any real change does.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import fiscal_sim as fs

REPO = Path(__file__).resolve().parents[1]
LOCKED = Path(__file__).parent / "locked" / "baseline_aggregate.csv"
ACTUAL = LOCKED.with_name("baseline_aggregate.actual.csv")
DRAWS = 500
FIELDS = ["program", "payer", "mean_cny", "p95_cny"]


def aggregate() -> list[dict[str, str]]:
    """Horizon grant cash (vintage ALL) by program and payer, mean and P95, yuan to the fen, sorted."""
    res = fs.simulate(fs.load(REPO / "scenarios" / "baseline.yaml"), draws=DRAWS)
    rows = [
        r
        for r in res.summary.to_pylist()
        if r["measure"] == "cash" and r["period"] == "horizon" and r["vintage"] == "ALL"
    ]
    return sorted(
        (
            {
                "program": r["program"],
                "payer": r["payer"],
                "mean_cny": f"{r['mean_cny']:.2f}",
                "p95_cny": f"{r['p95_cny']:.2f}",
            }
            for r in rows
        ),
        key=lambda r: (r["program"], r["payer"]),
    )


def write(rows: list[dict[str, str]], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def test_the_baseline_aggregate_is_unchanged():
    actual = aggregate()
    expected = list(csv.DictReader(open(LOCKED, encoding="utf-8"))) if LOCKED.is_file() else []
    keys = lambda rows: [(r["program"], r["payer"]) for r in rows]  # noqa: E731
    same = keys(actual) == keys(expected) and all(
        float(a[c]) == pytest.approx(float(e[c]), rel=1e-9, abs=0.011)
        for a, e in zip(actual, expected)
        for c in ("mean_cny", "p95_cny")
    )
    if not same:
        write(actual, ACTUAL)
        pytest.fail(
            f"the baseline moved: {ACTUAL.relative_to(REPO)} holds the new figures. Review them "
            f"(diff {LOCKED.relative_to(REPO)} {ACTUAL.relative_to(REPO)}); if the change is intended, "
            "accept it with `make accept-baseline` and commit the file with the change that caused it."
        )
    ACTUAL.unlink(missing_ok=True)
