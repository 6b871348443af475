"""The package's imports point one way (server -> pipeline -> stages -> model): no module
imports, directly or through others, a module that imports it back.

Read from the source with `ast`, so a cycle hidden in a function body or behind a module
`__getattr__` counts too; only imports under `if TYPE_CHECKING:` are left out (they never
run). Importing `a.b.c` runs `a/__init__` and `a/b/__init__` first, so those count as
imported as well.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import sluicegate

PACKAGE = Path(sluicegate.__file__).parent
Graph = dict[str, set[str]]


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = [PACKAGE.name, *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for other in node.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = module if is_package else module.rpartition(".")[0]
    if node.level:
        base = ".".join(base.split(".")[: len(base.split(".")) - node.level + 1])
        source = f"{base}.{node.module}" if node.module else base
    else:
        source = node.module or ""
    yield source
    yield from (f"{source}.{alias.name}" for alias in node.names)  # submodules by name


def import_graph() -> Graph:
    modules = _modules()
    graph: Graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _imports(tree):
            for target in _targets(node, name, path.name == "__init__.py"):
                parts = target.split(".")
                for end in range(1, len(parts) + 1):  # a.b.c runs a and a.b first
                    edges.add(".".join(parts[:end]))
        own = {".".join(name.split(".")[:end]) for end in range(1, name.count(".") + 2)}
        graph[name] = {edge for edge in edges if edge in modules and edge not in own}
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_a_cycle_would_be_found():
    graph = import_graph()
    assert "sluicegate.policy.documents" in graph["sluicegate.policy.compiled"]
    graph["sluicegate.policy.documents"] = {"sluicegate.policy.compiled"}  # the old circle
    (cycle,) = cycles(graph)
    assert {"sluicegate.policy.compiled", "sluicegate.policy.documents"} <= set(cycle)
