"""The metric-write route served outside FastAPI (``strongroom.api.hot``) answers as the FastAPI
route it shadows did: the same problems naming the same fields, nothing half-written, one audit
event per call, and a revoked token refused."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.routing import Match

from strongroom.api.app import create_app
from strongroom.api.hot import HotRoute
from strongroom.audit.log import AuditFilter
from strongroom.core.context import Grant
from strongroom.experiments.models import ComponentCreate
from strongroom.platform import Platform
from tests.support import context_for

ADMIN = context_for("admin", Grant("PlatformAdmin"))
PATH = "/api/v1/teams/risk/trial-component-batches"


@pytest.fixture
def issued(platform: Platform) -> tuple[str, str]:
    """A DataScientist of team ``risk`` (the role the docs name), with one trial component."""
    platform.identity.create_team(ADMIN, "risk")
    platform.identity.create_user(ADMIN, "alice")
    platform.identity.add_member(ADMIN, "risk", "alice", "DataScientist")
    alice = context_for("alice", Grant("DataScientist", "risk"))
    platform.experiments.batch_update(alice, "risk", creates=[ComponentCreate(name="training")])
    issued = platform.identity.create_token(ADMIN, "sdk", user="alice")
    return issued.token.id, issued.secret


@pytest.fixture
def token(issued: tuple[str, str]) -> str:
    return issued[1]


def _app(platform: Platform, *, hot: bool) -> FastAPI:
    app = create_app(platform)
    if not hot:
        app.router.routes[:] = [r for r in app.router.routes if not isinstance(r, HotRoute) or r.name != "batch_update"]
    return app


@pytest.fixture
def clients(platform: Platform) -> Iterator[tuple[TestClient, TestClient]]:
    with (
        TestClient(_app(platform, hot=True), base_url="https://testserver") as hot,
        TestClient(_app(platform, hot=False), base_url="https://testserver") as plain,
    ):
        yield hot, plain


def _point(**changes: Any) -> dict[str, Any]:
    column = {"component": "training", "names": ["train:loss"], "values": [0.5], "steps": [1], "timestamps": [1.0e9]}
    return {"metrics": [{**column, **changes}]}


def _problem(answer: Any) -> dict[str, Any]:
    assert answer.headers["content-type"].startswith("application/problem+json")
    body = dict(answer.json())
    body.pop("request_id")
    return body


BAD_BODIES = {
    "a value that is not a number": _point(values=["high"]),
    "a field the API does not have": {**_point(), "sampling": 0.8},
    "a list that is not a list": _point(names="train:loss"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_a_bad_batch_gets_the_same_problem_as_from_fastapi(
    platform: Platform, clients: tuple[TestClient, TestClient], token: str, case: str
) -> None:
    hot, plain = clients
    headers = {"Authorization": f"Bearer {token}"}

    from_hot = hot.post(PATH, json=BAD_BODIES[case], headers=headers)
    from_fastapi = plain.post(PATH, json=BAD_BODIES[case], headers=headers)

    assert from_hot.status_code == from_fastapi.status_code == 422
    assert _problem(from_hot) == _problem(from_fastapi)
    assert _problem(from_hot)["field"].startswith(("metrics.0.", "sampling"))
    alice = context_for("alice", Grant("DataScientist", "risk"))
    assert (
        platform.experiments.describe_trial_component(alice, "risk", "training").metrics == []
    )  # nothing half-written


def test_a_body_that_is_not_json_names_the_body(clients: tuple[TestClient, TestClient], token: str) -> None:
    hot, _ = clients
    answer = hot.post(PATH, content=b"{not json", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 422
    assert _problem(answer)["field"] == "body"


def test_a_point_is_written_once_audited_once_and_a_revoked_token_is_refused(
    platform: Platform, clients: tuple[TestClient, TestClient], issued: tuple[str, str]
) -> None:
    hot, _ = clients
    token_id, token = issued
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-1"}
    before = platform.audit_log.head()[0]

    first = hot.post(PATH, json=_point(), headers=headers)
    again = hot.post(PATH, json=_point(), headers=headers)  # a retry with the same key

    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    events = platform.audit_log.query(AuditFilter(action="BatchWriteTrialComponents", after_seq=before))
    assert [(e.principal, e.decision, e.outcome) for e in events] == [("alice", "Allow", "success")] * 2
    alice = context_for("alice", Grant("DataScientist", "risk"))
    component = platform.experiments.describe_trial_component(alice, "risk", "training")
    assert [m.name for m in component.metrics] == ["train:loss"] and component.metrics[0].count == 1

    platform.identity.revoke_token(ADMIN, token_id)
    refused = hot.post(PATH, json=_point(steps=[2]), headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert platform.experiments.describe_trial_component(alice, "risk", "training").metrics[0].count == 1


def test_the_hot_route_is_matched_before_fastapi(platform: Platform) -> None:
    """The point of the hot route: FastAPI's route for the same path is never reached."""
    scope = {"type": "http", "method": "POST", "path": PATH, "root_path": ""}
    first = next(r for r in create_app(platform).router.routes if r.matches(scope)[0] is Match.FULL)
    assert isinstance(first, HotRoute) and first.name == "batch_update"
