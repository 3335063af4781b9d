"""Nothing outside ``strongroom.guard`` decides or writes an audit record."""

from __future__ import annotations

import ast
from pathlib import Path

import strongroom

SRC = Path(strongroom.__file__).parent
GUARD = SRC / "guard"
# The engine and the log define these; they are not callers.
DEFINERS = {SRC / "policy" / "engine.py", SRC / "audit" / "log.py"}


def _offences(path: Path, root: Path = SRC) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "decide" or name == "AuditRecord" or name in ("append_standalone",):
            found.append(f"{path.relative_to(root)}:{node.lineno} calls {name}")
        elif name == "append" and isinstance(func, ast.Attribute) and "audit" in ast.unparse(func.value):
            found.append(f"{path.relative_to(root)}:{node.lineno} calls {ast.unparse(func)}")
    return found


def test_only_the_guard_decides_or_writes_audit_records() -> None:
    offences = [
        offence
        for path in sorted(SRC.rglob("*.py"))
        if GUARD not in path.parents and path not in DEFINERS
        for offence in _offences(path)
    ]
    assert offences == []


def test_the_scan_finds_a_decision_or_a_record_made_elsewhere(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "def bypass(engine, log, ctx, t, session):\n"
        "    engine.decide(ctx.principal, 'x', t)\n"
        "    log.append_standalone(AuditRecord(principal='p', action='a'))\n"
        "    self.audit.append(session, None)\n"
    )
    assert sorted(_offences(probe, tmp_path)) == [
        "probe.py:2 calls decide",
        "probe.py:3 calls AuditRecord",
        "probe.py:3 calls append_standalone",
        "probe.py:4 calls self.audit.append",
    ]
