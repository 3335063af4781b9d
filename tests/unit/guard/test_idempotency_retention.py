"""Idempotency records are forgotten after ``idempotency_retention_days``: a retry within it is
answered from the record, one after it is applied as a new request, and the table stops growing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from sqlalchemy import select, update

from strongroom.core.config import Config
from strongroom.core.context import RequestContext
from strongroom.experiments.models import MetricColumns
from strongroom.guard.idempotency import IdempotencyRetentionWorker, forget_expired
from strongroom.platform import Platform
from strongroom.policy.db import IdempotencyRow

TEAM = "risk"


def _log(p: Platform, ctx: RequestContext, key: str, value: float) -> int:
    keyed = dataclasses.replace(ctx, idempotency_key=key)
    point = MetricColumns(component="c", names=["loss"], values=[value], steps=[None], timestamps=[time.time()])
    return p.experiments.batch_update(keyed, TEAM, metric_columns=[point]).metrics


def _age(p: Platform, keys: list[str], days: float) -> None:
    with p.db.write() as session:
        session.execute(
            update(IdempotencyRow)
            .where(IdempotencyRow.key.in_(keys))
            .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=days))
        )


def _records(p: Platform) -> set[str]:
    with p.db.read() as session:
        return set(session.scalars(select(IdempotencyRow.key)))


def _points(p: Platform, ctx: RequestContext) -> int:
    return len(p.experiments.metric_series(ctx, TEAM, "c", "loss").values)


def test_records_past_the_retention_are_forgotten_and_a_late_retry_is_new(
    teams: Platform, alice: RequestContext
) -> None:
    teams.experiments.create_trial_component(alice, TEAM, "c")
    for key in ("old-1", "old-2", "recent"):
        _log(teams, alice, key, 0.5)
    _age(teams, ["old-1", "old-2"], days=31)
    _age(teams, ["recent"], days=29)

    assert forget_expired(teams.db, dt.timedelta(days=30)) == 2
    assert _records(teams) >= {"recent"} and not _records(teams) & {"old-1", "old-2"}

    _log(teams, alice, "recent", 0.5)  # within the retention: answered, not written again
    assert _points(teams, alice) == 3
    _log(teams, alice, "old-1", 0.5)  # after it: a new request
    assert _points(teams, alice) == 4


def test_a_backlog_is_forgotten_chunk_by_chunk(teams: Platform, alice: RequestContext) -> None:
    teams.experiments.create_trial_component(alice, TEAM, "c")
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        _log(teams, alice, key, 0.1)
    _age(teams, keys, days=2)
    worker = IdempotencyRetentionWorker(teams.db, retention_days=1)
    worker.chunk = 2
    rounds = [worker.run_once() for _ in range(3)]
    assert rounds == [True, True, False]  # more in flight after a full chunk: the runner comes back soon
    assert _records(teams) == set()


def test_the_platform_runs_the_worker_with_the_configured_retention(platform: Platform) -> None:
    [worker] = [w for w in platform.workers() if isinstance(w, IdempotencyRetentionWorker)]
    assert worker.retention == dt.timedelta(days=platform.config.idempotency_retention_days)
    assert Config.model_fields["idempotency_retention_days"].default == 30.0
