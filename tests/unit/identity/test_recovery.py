"""`strongroom admin recover`: a new PlatformAdmin token, the old ones revoked, audited as the platform."""

from __future__ import annotations

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.core.errors import Unauthenticated
from strongroom.platform import Platform


def test_recover_revokes_the_lost_token_and_issues_one_that_works(platform: Platform, admin_token: str) -> None:
    identity = platform.identity
    old = identity.authenticate(admin_token)  # cached: recovery must clear it
    assert old.user == "admin"

    issued, revoked = identity.recover_admin("admin")

    assert revoked == [old.token_id]
    with pytest.raises(Unauthenticated, match="revoked"):
        identity.authenticate(admin_token)
    recovered = identity.authenticate(issued.secret)
    assert recovered.user == "admin" and [str(g) for g in recovered.grants] == ["PlatformAdmin"]
    (event,) = platform.audit_log.query(AuditFilter(action="RecoverPlatformAdmin"))
    assert event.principal == "system" and event.decision == "Allow"
    assert event.params == {"admin": "admin", "revoked": [old.token_id]}
    assert platform.audit_log.verify().ok


def test_recover_enables_a_disabled_admin_and_can_name_a_new_one(platform: Platform, admin_token: str) -> None:
    from strongroom.core.context import RequestContext

    identity = platform.identity
    ctx = RequestContext(principal=identity.authenticate(admin_token))
    identity.create_user(ctx, "ops-oncall")
    identity.set_user_disabled(ctx, "admin", True)

    issued, _ = identity.recover_admin("admin")
    assert identity.authenticate(issued.secret).user == "admin"
    fresh, revoked = identity.recover_admin("breakglass")
    assert revoked == []
    assert [str(g) for g in identity.authenticate(fresh.secret).grants] == ["PlatformAdmin"]
    with pytest.raises(Exception, match="name"):
        identity.recover_admin("../root")
