"""Creating users: a taken name is a conflict that names the field, leaves the first user as it
was, and is audited once as a failure; a retry with the same idempotency key is not."""

from __future__ import annotations

import dataclasses

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.core.context import Grant
from strongroom.core.errors import Conflict
from strongroom.platform import Platform
from tests.support import context_for


def test_a_taken_user_name_is_a_conflict_audited_once_and_the_first_user_stays(platform: Platform) -> None:
    admin = context_for("admin", Grant("PlatformAdmin"))
    platform.identity.create_user(admin, "alice", display_name="Alice Analyst")

    with pytest.raises(Conflict, match="user 'alice' already exists") as raised:
        platform.identity.create_user(admin, "alice", display_name="Mallory")

    assert raised.value.field == "name"
    user, _ = platform.identity.describe_user(admin, "alice")
    assert user.display_name == "Alice Analyst"
    events = platform.audit_log.query(AuditFilter(action="CreateUser"))
    assert [(e.params["display_name"], e.outcome) for e in events] == [
        ("Alice Analyst", "success"),
        ("Mallory", "conflict"),
    ]
    assert "already exists" in events[1].error
    # The platform goes on: the failed insert did not leave a broken transaction behind.
    platform.identity.create_user(admin, "bob")
    assert platform.audit_log.verify().ok


def test_a_retried_create_with_its_idempotency_key_returns_the_user_instead_of_a_conflict(platform: Platform) -> None:
    admin = dataclasses.replace(context_for("admin", Grant("PlatformAdmin")), idempotency_key="create-alice-1")
    first = platform.identity.create_user(admin, "alice", display_name="Alice Analyst")
    again = platform.identity.create_user(admin, "alice", display_name="Alice Analyst")
    assert again == first
