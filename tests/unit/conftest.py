"""Unit-test fixtures shared by domains: teams ``risk`` and ``fraud``, and a request context per role."""

from __future__ import annotations

import pytest

from strongroom.core.context import Grant, RequestContext
from strongroom.platform import Platform
from tests.support import context_for


@pytest.fixture
def teams(platform: Platform) -> Platform:
    admin = context_for("admin", Grant("PlatformAdmin"))
    for team in ("risk", "fraud"):
        platform.identity.create_team(admin, team)
    return platform


@pytest.fixture
def alice() -> RequestContext:
    return context_for("alice", Grant("DataScientist", "risk"))


@pytest.fixture
def mallory() -> RequestContext:
    return context_for("mallory", Grant("DataScientist", "fraud"))


@pytest.fixture
def auditor() -> RequestContext:
    return context_for("ava", Grant("Auditor"))


@pytest.fixture
def admin() -> RequestContext:
    return context_for("admin", Grant("PlatformAdmin"))
