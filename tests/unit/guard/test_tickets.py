"""Each call is decided once per policy question and leaves exactly one audit event, whatever fails."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.audit.models import AuditEvent
from strongroom.core.context import Grant, RequestContext
from strongroom.core.errors import Forbidden, InvalidInput, NotFound
from strongroom.jobs.models import JobSpec
from strongroom.policy.engine import Target
from tests.support import context_for
from tests.unit.storage.conftest import World


def _fresh(ctx: RequestContext) -> RequestContext:
    return dataclasses.replace(ctx, request_id=uuid.uuid4().hex)


def _events(world: World, ctx: RequestContext) -> list[AuditEvent]:
    return world.platform.audit_log.query(AuditFilter(request_id=ctx.request_id, limit=100))


def test_a_storage_put_is_one_event_and_one_decision_per_policy_question(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = world.platform.policy_engine
    asked: list[str] = []
    decide = engine.decide

    def counting(principal: Any, action: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(action)
        return decide(principal, action, *args, **kwargs)

    monkeypatch.setattr(engine, "decide", counting)
    ctx = _fresh(world.alice)
    world.platform.storage.put_object(ctx, "risk-data", "raw/credit.csv", [b"1,0.5,3\n"], tags={"pii": "no"})
    # Before: PutObject was decided twice (once by hand, once by the guard) and audited twice.
    assert asked == ["PutObject", "GenerateDataKey"]
    events = _events(world, ctx)
    assert [(e.action, e.decision, e.outcome) for e in events] == [("PutObject", "Allow", "success")]
    assert events[0].params["checks"][0]["action"] == "GenerateDataKey"


def test_a_training_job_without_num_round_leaves_one_failed_event(world: World) -> None:
    world.platform.storage.put_object(world.alice, "risk-data", "train.csv", [b"1,0.5,3\n0,0.1,2\n"])
    spec = JobSpec.model_validate(
        {
            "name": "no-rounds",
            "team": "risk",
            "kind": "training",
            "code": {"algorithm": "xgboost"},
            "hyperparameters": {"max_depth": 4, "eta": 0.2, "subsample": 0.8, "objective": "binary:logistic"},
            "inputs": [{"name": "train", "source": "sr://risk-data/train.csv"}],
            "outputs": [{"name": "model", "destination": "sr://risk-data/models/"}],
            "security": {"network_isolation": True, "volume_kms_key": "default"},
        }
    )
    ctx = _fresh(world.alice)
    with pytest.raises(InvalidInput, match="num_round"):
        world.platform.jobs.create_job(ctx, spec)
    events = _events(world, ctx)
    # Before: no event at all (the authorization marked the request audited, the limit check raised).
    assert [(e.action, e.decision, e.outcome) for e in events] == [("CreateTrainingJob", "Allow", "invalid-input")]


def test_a_crash_inside_the_transaction_is_one_failed_event_and_no_change(world: World) -> None:
    guard = world.platform.guard
    ctx = _fresh(world.dsa)
    target = Target("bucket", "risk", "half-made")
    with pytest.raises(ZeroDivisionError), guard.begin(ctx, "CreateBucket", target) as ticket, ticket.transaction():
        world.platform.storage  # noqa: B018 - the work that would have been done
        _ = 1 / 0
    events = _events(world, ctx)
    assert [(e.action, e.decision, e.outcome, e.error) for e in events] == [
        ("CreateBucket", "Allow", "internal-error", "ZeroDivisionError")
    ]


def test_a_denial_is_one_event(world: World) -> None:
    ctx = _fresh(world.auditor)
    with pytest.raises(Forbidden):
        world.platform.storage.put_object(ctx, "risk-data", "x.csv", [b"1\n"])
    events = _events(world, ctx)
    assert [(e.action, e.decision, e.outcome) for e in events] == [("PutObject", "Deny", "denied")]


def test_assuming_a_role_one_does_not_hold_is_audited_as_a_denial(world: World) -> None:
    ctx = _fresh(context_for("alice", Grant("DataScientist", "risk")))
    with pytest.raises(Forbidden, match="do not hold"):
        world.platform.identity.assume_role(ctx, "DataScienceAdmin", "risk")
    events = _events(world, ctx)
    # Before: decision "Allow" with outcome "forbidden".
    assert [(e.action, e.decision, e.outcome) for e in events] == [("AssumeRole", "Deny", "denied")]


def test_another_teams_bucket_answers_exactly_as_a_missing_one(world: World) -> None:
    storage = world.platform.storage
    errors = []
    for bucket in ("fraud-data", "no-such-bucket"):
        with pytest.raises(NotFound) as caught:
            storage.describe_bucket(world.alice, bucket)
        errors.append(caught.value.detail.replace(bucket, "<b>"))
    # Before: 403 "not allowed to HeadBucket on srn:strongroom:fraud:bucket/fraud-data" for the existing one.
    assert errors[0] == errors[1]
