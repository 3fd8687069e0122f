"""Scenario files for the workbench: the repo's (read-only) and the workspace's own.

The edit form (:mod:`fiscal_sim.web.form`) saves an ordinary scenario file that ``extends`` the one it came
from, so the CLI runs it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fiscal_sim.errors import FiscalSimError

NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SOURCES = ("repo", "ws")


class NotFound(FiscalSimError):
    """No such scenario (or a name that could never be one)."""


def repo_scenarios() -> Path:
    """The repository's scenarios/ folder (next to the package in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "scenarios"


@dataclass
class Library:
    """Where scenario files live: ``repo`` (read-only) and ``ws`` (the workspace's scenarios/)."""

    repo: Path
    ws: Path

    def root(self, src: str) -> Path:
        if src not in SOURCES:
            raise NotFound(f"no scenario source {src!r}")
        return self.repo if src == "repo" else self.ws

    def path(self, src: str, name: str) -> Path:
        """The file of scenario ``name`` in ``src``; refuses any name that is not a plain file name inside it."""
        root = self.root(src).resolve()
        if not NAME.match(name):
            raise NotFound(f"not a scenario name: {name!r}")
        p = (root / f"{name}.yaml").resolve()
        if not p.is_relative_to(root) or not p.is_file():
            raise NotFound(f"no scenario {src}/{name}")
        return p

    def list(self) -> list[dict[str, str]]:
        out = []
        for src in SOURCES:
            root = self.root(src)
            for p in sorted(root.glob("*.yaml")) if root.is_dir() else []:
                if NAME.match(p.stem):
                    out.append({"src": src, "name": p.stem, "description": _description(p)})
        return out


def _description(p: Path) -> str:
    try:
        from fiscal_sim.scenario import merge_extends
        from fiscal_sim.yamlfile import YamlDoc

        data, _ = merge_extends(YamlDoc(p))
        return str((data.get("scenario") or {}).get("description", ""))
    except Exception:  # a broken file still lists; opening it shows the problem
        return ""


def own(path: Path) -> dict[str, Any]:
    """A scenario file's own ``scenario:`` block (before ``extends`` is merged)."""
    import yaml

    return dict((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("scenario") or {})
