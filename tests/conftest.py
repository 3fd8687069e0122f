"""Shared fixtures: the catalogue, and the seed folder when it is present."""

from __future__ import annotations

from pathlib import Path

import pytest

from fiscal_sim.catalogue.loader import load_catalogue

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SEEDS = SHARED / "seeds"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue(REPO / "scenarios")


def need_shared(path: Path) -> None:
    if not path.exists():
        pytest.skip(
            f"{path} is absent: the seed documents live beside the repo in ../shared (CI has them; a user's machine may not)"
        )
