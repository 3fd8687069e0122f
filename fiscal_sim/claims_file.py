"""Claims of one case from a CSV file: one row per claim, one column per input (``calc --claims``)."""

from __future__ import annotations

import csv
from pathlib import Path

from fiscal_sim.errors import MAX_PROBLEMS, InputError, Problem


MAX_CLAIMS = 100_000
"""claims of one case (one entity or person in a year): more is not a case file"""


def read_claims(path: Path) -> dict[str, list[str]]:
    """Input name → one value per claim, from a CSV with a header row of input names (UTF-8, BOM allowed)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = []
            for row in csv.reader(f):
                rows.append(row)
                if len(rows) > MAX_CLAIMS + 1:
                    raise InputError(
                        [
                            Problem(
                                str(path),
                                None,
                                "-",
                                f"more than {MAX_CLAIMS:,} claims: a claims file "
                                "holds one applicant's claims in a year (is this the right file?)",
                            )
                        ]
                    )
    except (OSError, UnicodeDecodeError) as e:
        raise InputError([Problem(str(path), None, "-", f"cannot read claims: {e}")]) from None
    numbered = [(n, r) for n, r in enumerate(rows, start=1) if any(c.strip() for c in r)]  # blank lines skipped
    if len(numbered) < 2:
        raise InputError(
            [Problem(str(path), None, "-", "a claims file needs a header row of input names and one row per claim")]
        )
    header = [h.strip() for h in numbered[0][1]]
    body = numbered[1:]
    problems = [
        Problem(str(path), None, f"column {i + 1}", "empty or repeated column name")
        for i, h in enumerate(header)
        if not h or header.index(h) != i
    ]
    problems += [
        Problem(str(path), None, f"row {n}", f"has {len(r)} fields, the header has {len(header)}")
        for n, r in body
        if len(r) != len(header)
    ]
    problems += [
        Problem(str(path), None, f"row {n}, column {h}", "empty value")
        for n, r in body
        if len(r) == len(header)
        for h, c in zip(header, r)
        if not c.strip()
    ]
    if problems:
        raise InputError(problems[:MAX_PROBLEMS], more=max(len(problems) - MAX_PROBLEMS, 0))
    return {h: [r[i].strip() for _, r in body] for i, h in enumerate(header)}
