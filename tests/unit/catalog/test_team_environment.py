"""The Team Environment product against the real services (in process): what it creates, who may
launch it, and what terminate removes (and what it refuses to destroy)."""

from __future__ import annotations

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.core.context import Grant
from strongroom.core.errors import Forbidden
from strongroom.platform import Platform
from tests.support import context_for

ADMIN = context_for("admin", Grant("PlatformAdmin"))


def settle(platform: Platform) -> None:
    for _ in range(50):
        if platform.provisioning.run_once() == 0:
            return


def test_team_environment_creates_the_team_and_everything_it_needs(platform: Platform) -> None:
    launched = platform.catalog.launch(ADMIN, "team-environment", {"TeamName": "risk", "Description": "credit risk"})
    assert launched.status == "UNDER_CHANGE"
    settle(platform)
    product = platform.catalog.describe(ADMIN, "risk", "team-environment")
    assert product.status == "AVAILABLE", product.status_message
    key_id = product.outputs["KmsKeyId"]
    assert product.outputs["DataBucket"] == "sr://risk-data" and product.outputs["ModelBucket"] == "sr://risk-models"

    team, _ = platform.identity.describe_team(ADMIN, "risk")
    assert team.description == "credit risk"
    buckets = {b.name: b for b in platform.storage.list_buckets(ADMIN, "risk")}
    assert set(buckets) == {"risk-data", "risk-models"}
    assert {b.default_key_id for b in buckets.values()} == {key_id}
    assert platform.kms.describe_key(ADMIN, "risk", "default").rotation_period_days == 365
    dana = context_for("dana", Grant("DataScienceAdmin", "risk"))
    assert [r.name for r in platform.git.list(dana, "risk")] == ["risk"]
    [team_portfolio] = [p for p in platform.catalog.list_portfolios(ADMIN, "risk") if p.team == "risk"]
    assert team_portfolio.products == ["notebook"] and team_portfolio.grants == ["DataScientist"]
    assert [p.name for p in platform.policies.list(ADMIN, "risk")] == ["team-environment"]

    # everything was done by the catalog's launch role, through the guard
    events = platform.audit.query(ADMIN, AuditFilter(principal="catalog", limit=100))
    actions = {e.action for e in events}
    assert {"CreateTeam", "CreateKey", "CreateBucket", "CreateRepository", "CreatePortfolio"} <= actions
    assert {e.role for e in events} == {"CatalogProvisioner"}

    # the attached policy keeps the buckets from being deleted by hand
    with pytest.raises(Forbidden, match="only by terminating the Team Environment"):
        platform.storage.delete_bucket(dana, "risk-data")

    platform.catalog.terminate(ADMIN, "risk", "team-environment")
    settle(platform)
    product = platform.catalog.describe(ADMIN, "risk", "team-environment")
    assert product.status == "TERMINATED", product.status_message
    assert platform.storage.list_buckets(ADMIN, "risk") == []
    assert platform.git.list(dana, "risk") == []
    assert platform.kms.describe_key(ADMIN, "risk", key_id).state == "PendingDeletion"
    assert platform.policies.list(ADMIN, "risk") == []


def test_terminate_stops_rather_than_destroy_data(platform: Platform) -> None:
    platform.catalog.launch(ADMIN, "team-environment", {"TeamName": "risk"})
    settle(platform)
    platform.identity.create_user(ADMIN, "alice")
    platform.identity.add_member(ADMIN, "risk", "alice", "DataScientist")
    alice = context_for("alice", Grant("DataScientist", "risk"))
    platform.storage.put_object(alice, "risk-data", "raw/clients.csv", [b"id,limit\n1,20000\n"])
    platform.catalog.terminate(ADMIN, "risk", "team-environment")
    settle(platform)
    product = platform.catalog.describe(ADMIN, "risk", "team-environment")
    assert product.status == "ERROR"
    assert "still holds object versions" in product.status_message
    assert platform.storage.get_object_bytes(alice, "risk-data", "raw/clients.csv").startswith(b"id,limit")


def test_only_a_platform_admin_creates_a_new_team(platform: Platform) -> None:
    dana = context_for("dana", Grant("DataScienceAdmin", "newteam"))
    with pytest.raises(Forbidden, match="only a PlatformAdmin may create a team"):
        platform.catalog.launch(dana, "team-environment", {"TeamName": "newteam"})
    scientist = context_for("sam", Grant("DataScientist", "risk"))
    with pytest.raises(Forbidden, match="portfolio"):
        platform.catalog.launch(scientist, "team-environment", {"TeamName": "risk"})
