"""Layers: domains never import the API nor the SDK (code that runs inside a sandbox is a client
and may), and strongroom's packages import each other without any cycle, but for the modules named
below with their reason."""

from __future__ import annotations

import ast
from pathlib import Path

import strongroom

SRC = Path(strongroom.__file__).parent
SHELLS = {"api", "cli", "console", "sdk", "demo"}
# Code that is a client of the platform by nature, not a domain importing its shell.
SDK_CLIENTS = {
    "experiments/__init__.py": "lazily re-exports the SDK's workshop classes (the workshop imports them there)",
}
# Modules whose imports may close a cycle, and why. Nothing else may.
CYCLE_EXCEPTIONS = {
    "db/registry.py": "imports every domain's rows so Alembic and the schema test see every table",
    "experiments/__init__.py": SDK_CLIENTS["experiments/__init__.py"],
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("strongroom."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("strongroom.")}
    return found


def _node(parts: tuple[str, ...]) -> str:
    """The graph node of a module: its top-level package, or ``<package>.inside`` for code that
    runs inside a sandbox (a client of the platform, on the other side of the wall)."""
    package = parts[0].removesuffix(".py")
    return f"{package}.inside" if len(parts) > 2 and parts[1] == "inside" else package


def _is_inside(relative: str) -> bool:
    return _node(tuple(relative.split("/"))).endswith(".inside")


def _package_graph(skip: frozenset[str] = frozenset()) -> dict[str, dict[str, list[str]]]:
    """``graph[a][b]`` lists the modules of ``a`` that import ``b``."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative in skip:
            continue
        source = _node(path.relative_to(SRC).parts)
        for module in _imports(path):
            target = _node((*module.split(".")[1:], ""))
            if target == source:
                continue
            importers = graph.setdefault(source, {}).setdefault(target, [])
            if relative not in importers:
                importers.append(relative)
    return graph


def _cycles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, {}):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_domain_imports_the_api_or_the_sdk() -> None:
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.split("/")[0] in SHELLS or relative in SDK_CLIENTS or relative == "__init__.py":
            continue
        if _is_inside(relative):  # runs in a sandbox and calls the platform as any client does
            continue
        offences += [f"{relative} imports {m}" for m in _imports(path) if m.split(".")[1] in ("api", "sdk")]
    assert offences == []


def test_no_package_import_cycle_but_the_named_exceptions() -> None:
    graph = _package_graph(skip=frozenset(CYCLE_EXCEPTIONS))
    details = [{a: {b: graph[a][b] for b in graph[a] if b in cycle} for a in cycle} for cycle in _cycles(graph)]
    assert details == []


def test_the_cycle_check_sees_a_cycle() -> None:
    """The check above can fail: the whole graph, exceptions included, has the db cycle."""
    assert any({"db", "identity"} <= set(cycle) for cycle in _cycles(_package_graph()))


def test_each_exception_is_still_needed() -> None:
    """An exception that no longer closes a cycle is removed, so the list only ever shrinks."""
    for module in CYCLE_EXCEPTIONS:
        others = frozenset(CYCLE_EXCEPTIONS) - {module}
        assert _cycles(_package_graph(skip=others)), f"{module} closes no cycle: remove its exception"


def test_the_guard_sits_above_the_policy_engine_and_the_audit_log() -> None:
    graph = _package_graph()
    for low in ("audit", "policy", "core", "db"):
        assert "guard" not in graph.get(low, {}), (low, graph.get(low, {}).get("guard"))
    assert {"audit", "policy"} <= set(graph["guard"])
