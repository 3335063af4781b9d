"""A platform with two teams, each with a default key and a bucket, and callers in every role."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from strongroom.core.context import Grant, RequestContext
from strongroom.platform import Platform
from tests.support import context_for


@dataclass
class World:
    platform: Platform
    admin: RequestContext
    auditor: RequestContext
    dsa: RequestContext
    alice: RequestContext  # DataScientist in risk
    mo: RequestContext  # MLOpsEngineer in risk
    fred: RequestContext  # DataScientist in fraud


@pytest.fixture
def world(platform: Platform) -> World:
    w = World(
        platform=platform,
        admin=context_for("admin", Grant("PlatformAdmin")),
        auditor=context_for("ava", Grant("Auditor")),
        dsa=context_for("dana", Grant("DataScienceAdmin", "risk")),
        alice=context_for("alice", Grant("DataScientist", "risk")),
        mo=context_for("mo", Grant("MLOpsEngineer", "risk")),
        fred=context_for("fred", Grant("DataScientist", "fraud")),
    )
    for team in ("risk", "fraud"):
        platform.identity.create_team(w.admin, team)
        platform.kms.create_key(w.admin, team, "default", f"{team} data key")
    platform.storage.create_bucket(w.dsa, "risk", "risk-data")
    platform.storage.create_bucket(context_for("fay", Grant("DataScienceAdmin", "fraud")), "fraud", "fraud-data")
    return w
