"""The front ends are thin adapters over the application layer (issue 15).

The CLI (``studio.cli*``), the studio UI (``studio.ui``) and the job pool (``studio.jobs``)
call :mod:`studio.services`; none of them touches the registry's store or ledger, opens a
database session, or builds the consent gate's ``AuthorizationRequest`` — so every use case
has one implementation, and a check in the studio cannot drift from the render it previews.
Asserted on the source (AST) of every front-end module, after importing each one.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STUDIO = ROOT / "studio"

FORBIDDEN_MODULES = ("consent.store", "consent.ledger")
FORBIDDEN_NAMES = frozenset({"AuthorizationRequest"})


def _front_end_files() -> list[Path]:
    files = [*STUDIO.glob("cli*.py"), *STUDIO.glob("cli/**/*.py"), *STUDIO.glob("ui/*.py"),
             STUDIO / "jobs.py"]
    return sorted(f for f in files if f.is_file())


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _forbidden_module(name: str) -> bool:
    return any(name == m or name.startswith((m + ".", m + "_")) for m in FORBIDDEN_MODULES)


def _violations(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names
                      if _forbidden_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            if _forbidden_module(node.module):
                found.append(f"{where}: from {node.module} import …")
                continue
            found += [f"{where}: from {node.module} import {a.name}" for a in node.names
                      if _forbidden_module(f"{node.module}.{a.name}")
                      or a.name in FORBIDDEN_NAMES]
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            found.append(f"{where}: uses {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            found.append(f"{where}: uses .{node.attr}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "session"):
            found.append(f"{where}: opens a database session (.session())")
    return found


FILES = _front_end_files()


def test_the_front_ends_are_found() -> None:
    names = {_module(f) for f in FILES}
    assert "studio.jobs" in names and "studio.ui.handlers" in names
    assert any(n == "studio.cli" or n.startswith("studio.cli") for n in names)


@pytest.mark.parametrize("path", FILES, ids=_module)
def test_a_front_end_never_touches_the_store_the_ledger_or_the_gate_request(path: Path
                                                                             ) -> None:
    if path.name != "__main__.py":  # (that one runs the command when imported)
        importlib.import_module(_module(path))  # a front end that loads, not dead code
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert _violations(tree) == []


def test_the_checker_sees_each_kind_of_violation() -> None:
    source = """
from consent.store import Store
import consent.ledger
from consent import ledger
from consent.gate import AuthorizationRequest
import consent.gate as g
g.AuthorizationRequest(operation="x")
registry.store.session()
"""
    kinds = _violations(ast.parse(source))
    assert len(kinds) == 6, kinds
