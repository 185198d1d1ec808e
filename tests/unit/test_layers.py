"""The package layout's rules, checked on the source: no import cycles, layers import downward.

Every ``import``/``from ... import`` of a harness, cluster or hooks module counts, also the
ones inside functions (lazy imports still tie the modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "cluster", "hooks")
#: The only harness modules that may import cluster: the CLI and the entry points.
ENTRY_POINTS = (
    "harness.api",
    "harness.cli",
    "harness.commands",
    "harness.estimator.driver",
    "harness.testing",
    "harness.tune",
)
MAX_LINES = 420


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in modules:
                targets.add(name)
    return targets


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: _imports(path, modules) for name, path in modules.items()}
    for name in graph:  # a package's __init__ is not an edge of its own submodules
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".") and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_there_are_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_only_the_entry_points_import_cluster() -> None:
    offenders = {
        name: sorted(t for t in targets if t.startswith("cluster"))
        for name, targets in _graph().items()
        if name.startswith("harness") and not name.startswith(ENTRY_POINTS)
    }
    assert {name: t for name, t in offenders.items() if t} == {}


def test_the_runtime_does_not_import_the_layers_above_it() -> None:
    above = ("harness.export", "harness.commands", "harness.estimator", "harness.cli", "cluster")
    offenders = {
        name: sorted(t for t in targets if t.startswith(above))
        for name, targets in _graph().items()
        if name.startswith(("harness.runtime", "hooks"))
    }
    assert {name: t for name, t in offenders.items() if t} == {}


def test_no_module_is_much_over_400_lines() -> None:
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
