"""Layers: domains never import the API (nor the SDK, but for two named exceptions), and the
identity, policy and audit packages do not import each other in circles."""

from __future__ import annotations

import ast
from pathlib import Path

import strongroom

SRC = Path(strongroom.__file__).parent
SHELLS = {"api", "cli", "console", "sdk", "demo"}
# Code that is a client of the platform by nature, not a domain importing its shell.
SDK_CLIENTS = {
    "jobs/agent.py": "runs inside the job's sandbox and calls the platform through its socket",
    "experiments/__init__.py": "lazily re-exports the SDK's workshop classes (the workshop imports them there)",
}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("strongroom."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("strongroom.")}
    return found


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).parts
        package = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")
        for module in _imports(path):
            other = module.split(".")[1]
            if other != package:
                graph.setdefault(package, set()).add(other)
    return graph


def test_no_domain_imports_the_api_or_the_sdk() -> None:
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.split("/")[0] in SHELLS or relative in SDK_CLIENTS or relative == "__init__.py":
            continue
        offences += [f"{relative} imports {m}" for m in _imports(path) if m.split(".")[1] in ("api", "sdk")]
    assert offences == []


def test_identity_policy_and_audit_do_not_import_each_other_in_circles() -> None:
    graph = _package_graph()
    for a, b in (("audit", "policy"), ("identity", "policy"), ("audit", "identity")):
        assert not (b in graph.get(a, set()) and a in graph.get(b, set())), (a, b)
