"""SIGHUP's ``Platform.reload``: what another process changed in the database takes effect here."""

from __future__ import annotations

import pytest

from strongroom.core.config import Config
from strongroom.core.context import Grant
from strongroom.core.errors import Unauthenticated
from strongroom.platform import Platform
from tests.support import context_for


def test_reload_sees_guardrail_exemptions_and_revocations_made_by_another_process(
    initialized: tuple[Config, str],
) -> None:
    config, token = initialized
    serving, other = Platform(config), Platform(config)  # the server, and e.g. `strongroom admin recover`
    try:
        admin = context_for("admin", Grant("PlatformAdmin"))
        other.identity.create_team(admin, "risk")
        serving.identity.authenticate(token)  # cached by the server
        assert serving.policy_engine.team_facts("risk").exemptions == frozenset()  # read once, then kept
        other.identity.set_guardrail_exemptions(admin, "risk", ["network-isolation"])
        other.identity.recover_admin("admin")  # revokes the token in the database

        assert serving.policy_engine.team_facts("risk").exemptions == frozenset()  # still the kept facts
        assert serving.identity.authenticate(token).user == "admin"  # still the cached answer

        serving.reload()

        assert serving.policy_engine.team_facts("risk").exemptions == frozenset({"network-isolation"})
        with pytest.raises(Unauthenticated, match="revoked"):
            serving.identity.authenticate(token)
    finally:
        serving.close()
        other.close()
