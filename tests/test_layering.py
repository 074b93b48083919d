"""The layering is a contract the suite checks, not a drawing: import-linter's contracts in
pyproject.toml (interfaces on top, the library free of CLI/HTTP/UI frameworks) and no import
cycle between any two modules of Cairn."""

from __future__ import annotations

import os
from pathlib import Path

import grimp
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("cairn", "app", "evals", "reranker_training", "runtime", "answers", "ingest", "retrieval")


def test_import_contracts_are_kept():
    cwd = os.getcwd()
    os.chdir(REPO)  # lint-imports reads pyproject.toml from the working directory
    try:
        assert lint_imports() == 0
    finally:
        os.chdir(cwd)


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in graph.find_modules_directly_imported_by(module):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    assert _cycles(graph) == []
