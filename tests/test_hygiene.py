"""Code hygiene the field expects: ruff and mypy clean (configured in pyproject.toml), no tracker numbers in code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    exe = BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def test_ruff_finds_nothing():
    r = subprocess.run(
        [tool("ruff"), "check", "fiscal_sim", "tests", "bench", "examples"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-4000:]


def test_ruff_format_is_kept():
    r = subprocess.run(
        [tool("ruff"), "format", "--check", "fiscal_sim", "tests", "bench", "examples"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-4000:]


def test_mypy_finds_nothing():
    r = subprocess.run([tool("mypy")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-4000:]


def test_no_issue_numbers_in_code():
    """Comments say why, not which ticket: the tracker's numbers go in commit messages."""
    pattern = re.compile(r"\bissue\s*#?\d+", re.IGNORECASE)
    hits = [
        f"{p.relative_to(REPO)}:{i}"
        for p in [*REPO.glob("fiscal_sim/**/*.py"), *REPO.glob("tests/*.py"), *REPO.glob("bench/*.py")]
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits
