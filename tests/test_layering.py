"""Imports point one way: the layers of pyproject.toml's [tool.importlinter] hold (lint-imports), and no two
modules import each other, directly or in a longer circle (imports for type checking only aside)."""

from __future__ import annotations

import ast
import subprocess
import sys
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
    assert not {
        m
        for m in imports(PKG / "pipeline" / "measures.py") | imports(PKG / "pipeline" / "apply.py")
        if m.startswith("fiscal_sim.orchestrate")
    }


def runtime_imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The fiscal_sim modules a module imports at run time (not under ``if TYPE_CHECKING``), resolved to modules
    that exist (``from fiscal_sim.cli import console`` is the module ``fiscal_sim.cli.console``)."""
    out: set[str] = set()
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for n in node.orelse:
                visit(n)
            return
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return out


def module_graph() -> dict[str, set[str]]:
    mods = {}
    for f in PKG.rglob("*.py"):
        name = ".".join(f.relative_to(PKG.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = f
    graph = {}
    for name, f in mods.items():
        deps = set()
        for m in runtime_imports(f, name, set(mods)):
            if m in mods and m != name and m != "fiscal_sim":  # the package's lazy re-export of the API aside
                deps.add(m)
        graph[name] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            strong(v)
    return out


def test_no_module_imports_itself_through_others():
    assert cycles(module_graph()) == []


def test_the_cycle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_layers_of_pyproject_hold():
    """lint-imports with the contracts of pyproject.toml (layers, the engine's pieces, acyclic siblings)."""
    exe = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run(
        [str(exe), "--no-cache", str(PKG.parent / "pyproject.toml")],
        cwd=PKG.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout
