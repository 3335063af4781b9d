"""Forgetting idempotency records past their retention.

The guard keeps the result of every write sent with an ``Idempotency-Key`` (each tracking batch
has one), so that a retry returns it instead of writing again. Kept for ever, that table would
grow by a row per durable ``log_metric``. ``IdempotencyRetentionWorker`` deletes the records
older than ``idempotency_retention_days``: a retry, or the replay of a crashed journaled
writer's batch, sent after that is applied as a new request.

Deletes go in chunks, each its own short transaction, so the writer is never held for long.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import cast

from sqlalchemy import Table, delete, select, tuple_

from strongroom.core.workers import Worker
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.policy.db import IdempotencyRow

log = logging.getLogger(__name__)
_TABLE = cast(Table, IdempotencyRow.__table__)


def forget_expired(db: Database, older_than: dt.timedelta, chunk: int = 5000) -> int:
    """Delete up to ``chunk`` records created more than ``older_than`` ago; how many were deleted."""
    cutoff = utcnow() - older_than
    expired = select(_TABLE.c.principal, _TABLE.c.key).where(_TABLE.c.created_at < cutoff).limit(chunk)
    with db.write() as session:
        deleted = session.execute(delete(_TABLE).where(tuple_(_TABLE.c.principal, _TABLE.c.key).in_(expired)))
        return int(getattr(deleted, "rowcount", 0) or 0)


class IdempotencyRetentionWorker(Worker):
    """Every hour, forgets the idempotency records older than the retention (chunk after chunk)."""

    name = "idempotency-retention"
    busy_interval_seconds = 0.1  # a backlog goes chunk by chunk, other writers in between

    def __init__(self, db: Database, retention_days: float, interval_seconds: float = 3600.0) -> None:
        self.db = db
        self.retention = dt.timedelta(days=retention_days)
        self.interval_seconds = interval_seconds
        self.chunk = 5000

    def run_once(self) -> bool:
        deleted = forget_expired(self.db, self.retention, self.chunk)
        if deleted:
            log.info("idempotency: forgot %d records older than %s", deleted, self.retention)
        return deleted >= self.chunk
