"""The console's "my access" table: decided in one batch, kept while nothing changes, and
redrawn as soon as a team policy, a membership or a token changes."""

from __future__ import annotations

from typing import Any

import pytest

from strongroom.core.context import Grant
from strongroom.platform import Platform
from tests.support import context_for

ADMIN = context_for("admin", Grant("PlatformAdmin"))
NO_DOWNLOADS = """
@id("no-downloads")
@message("objects of this team are not downloaded")
forbid (principal, action == Action::"GetObject", resource);
"""


def _table(platform: Platform) -> dict[str, str]:
    alice = context_for("alice", Grant("DataScientist", "risk"))
    return {r.action: r.decision for r in platform.policies.role_permissions(alice, "DataScientist@risk")}


def test_the_table_is_decided_once_and_redrawn_when_a_team_policy_changes(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform.identity.create_team(ADMIN, "risk")
    platform.identity.create_user(ADMIN, "alice")
    platform.identity.add_member(ADMIN, "risk", "alice", "DataScientist")
    batches: list[int] = []
    engine = platform.policy_engine
    real = engine.decide_many

    def counted(*args: Any, **kwargs: Any) -> Any:
        decisions = real(*args, **kwargs)
        if len(decisions) > 1:
            batches.append(len(decisions))
        return decisions

    monkeypatch.setattr(engine, "decide_many", counted)

    first = _table(platform)
    assert first["GetObject"] == "Allow" and first["CreateEndpoint"] == "Deny"
    assert _table(platform) == first
    assert len(batches) == 1  # the second view was the kept table

    platform.policies.attach(ADMIN, "risk", "no-downloads", NO_DOWNLOADS)
    assert _table(platform)["GetObject"] == "Deny"
    platform.policies.detach(ADMIN, "risk", "no-downloads")
    assert _table(platform)["GetObject"] == "Allow"
    assert len(batches) == 3
