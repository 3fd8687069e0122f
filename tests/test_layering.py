"""The orchestration sits above the engine and the pipeline: imports point one way."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fiscal_sim"


def imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions (type-checking imports included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_engine_imports_neither_pipeline_nor_orchestration():
    for f in (PKG / "engine").glob("*.py"):
        bad = {m for m in imports(f) if m.startswith(("fiscal_sim.pipeline", "fiscal_sim.orchestrate"))}
        assert not bad, f"{f.name} imports {bad}"


def test_pipeline_model_and_measures_do_not_import_each_other():
    assert not {m for m in imports(PKG / "pipeline" / "apply.py") if m.endswith("measures")}
    assert not {m for m in imports(PKG / "pipeline" / "measures.py") if m.endswith("apply")}
    assert not {m for m in imports(PKG / "pipeline" / "measures.py") | imports(PKG / "pipeline" / "apply.py")
                if m.startswith("fiscal_sim.orchestrate")}
