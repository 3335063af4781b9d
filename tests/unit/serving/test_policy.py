"""Only an endpoint's own execution role writes capture data (and the data keys for it)."""

from __future__ import annotations

import pytest

from strongroom.core.context import Grant, Principal
from strongroom.policy.engine import PolicyEngine, Target


@pytest.fixture(scope="module")
def engine() -> PolicyEngine:
    return PolicyEngine.shipped()


@pytest.mark.parametrize(
    ("kind", "role", "scope", "team", "allowed"),
    [
        ("execution", "MLOpsEngineer", "srn:strongroom:risk:endpoint/credit-endpoint", "risk", True),
        ("execution", "MLOpsEngineer", "srn:strongroom:risk:endpoint/credit-endpoint", "fraud", False),
        ("execution", "MLOpsEngineer", "srn:strongroom:risk:notebook/nb", "risk", False),
        ("api", "MLOpsEngineer", "", "risk", False),
        ("execution", "DataScientist", "srn:strongroom:risk:endpoint/credit-endpoint", "risk", False),
    ],
)
def test_capture_writes(engine: PolicyEngine, kind: str, role: str, scope: str, team: str, allowed: bool) -> None:
    principal = Principal(user="mo", token_kind=kind, grants=(Grant(role, "risk"),), scope=scope)  # type: ignore[arg-type]
    assert engine.decide(principal, "PutCaptureData", Target("object", team, "b/k")).allowed is allowed
