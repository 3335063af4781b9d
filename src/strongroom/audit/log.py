"""The append-only, hash-chained audit log.

Each event's hash is SHA-256 over its canonical JSON, which includes its sequence number and
the previous event's hash, so editing, deleting or reordering any event breaks the chain from
that point on. A background worker signs checkpoints (Ed25519) of the chain head; a log that
ends before its newest checkpoint has been truncated.

Appends are serialized: SQLite by its single writer, PostgreSQL by a transaction-scoped
advisory lock on the chain head. The unique ``seq`` makes a fork impossible either way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Select, Table, func, insert, select, text
from sqlalchemy.orm import Session

from strongroom.audit.chain import GENESIS_HASH, event_hash, redact
from strongroom.audit.db import AuditCheckpointRow, AuditEventRow
from strongroom.audit.models import AuditEvent, Checkpoint, VerifyReport
from strongroom.audit.signing import CheckpointSigner
from strongroom.db.base import utcnow
from strongroom.db.engine import Database

_TABLE = cast(Table, AuditEventRow.__table__)
_INSERT = insert(_TABLE)
_HEAD = select(_TABLE.c.seq, _TABLE.c.hash).order_by(_TABLE.c.seq.desc()).limit(1)
_CHAIN_LOCK_KEY = 0x5372_4175_6469_74  # "SrAudit"
_BATCH = 5000


@dataclass
class AuditRecord:
    """What the guard knows about one call; the log adds id, time, seq and hashes."""

    principal: str
    token_kind: str
    action: str
    resource: str
    decision: str
    role: str = ""
    team: str = ""
    policies: list[str] = field(default_factory=list)
    outcome: str = "success"
    error: str = ""
    request_id: str = ""
    source: str = ""
    user_agent: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditFilter:
    principal: str | None = None
    action: str | None = None
    team: str | None = None
    decision: str | None = None
    resource_prefix: str | None = None
    request_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    after_seq: int = 0
    limit: int = 100


def _to_event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent.model_validate(row, from_attributes=True)


def _row_dict(row: AuditEventRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "id": row.id,
        "time": row.time.isoformat(),
        "principal": row.principal,
        "token_kind": row.token_kind,
        "role": row.role,
        "team": row.team,
        "action": row.action,
        "resource": row.resource,
        "decision": row.decision,
        "policies": list(row.policies),
        "outcome": row.outcome,
        "error": row.error,
        "request_id": row.request_id,
        "source": row.source,
        "user_agent": row.user_agent,
        "params": row.params,
        "prev_hash": row.prev_hash,
    }


class AuditLog:
    def __init__(self, db: Database, signer: CheckpointSigner) -> None:
        self.db = db
        self.signer = signer

    # -- writing ----------------------------------------------------------------------------

    def _lock_head(self, connection: Connection) -> tuple[int, str]:
        if not self.db.is_sqlite:
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK_KEY})
        head = connection.execute(_HEAD).first()
        return (head[0], head[1]) if head else (0, GENESIS_HASH)

    def append(self, session: Session | Connection, record: AuditRecord) -> AuditEvent:
        """Append ``record`` inside the caller's write transaction; returns the sealed event."""
        # Core statements on the bare connection: the audit append is on every call's path,
        # and the ORM's statement handling costs more than the SQL itself.
        connection = session.connection() if isinstance(session, Session) else session
        seq, prev_hash = self._lock_head(connection)
        now = utcnow()
        fields = {
            "seq": seq + 1,
            "id": uuid.uuid4().hex,
            "time": now.isoformat(),
            "principal": record.principal,
            "token_kind": record.token_kind,
            "role": record.role,
            "team": record.team,
            "action": record.action,
            "resource": record.resource,
            "decision": record.decision,
            "policies": list(record.policies),
            "outcome": record.outcome,
            "error": record.error[:2000],
            "request_id": record.request_id,
            "source": record.source[:128],
            "user_agent": record.user_agent[:256],
            "params": redact(record.params),
            "prev_hash": prev_hash,
        }
        digest = event_hash(fields)
        sealed = {**fields, "time": now, "hash": digest}
        connection.execute(_INSERT, sealed)
        return AuditEvent.model_construct(**sealed)

    def append_standalone(self, record: AuditRecord) -> AuditEvent:
        with self.db.write_connection() as connection:
            return self.append(connection, record)

    # -- checkpoints ------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        with self.db.read() as session:
            row = session.execute(
                select(AuditEventRow.seq, AuditEventRow.hash).order_by(AuditEventRow.seq.desc()).limit(1)
            ).first()
        return (row[0], row[1]) if row else (0, GENESIS_HASH)

    def last_checkpoint(self) -> Checkpoint | None:
        with self.db.read() as session:
            row = session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq.desc()).limit(1)).first()
            return Checkpoint.model_validate(row, from_attributes=True) if row else None

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head unless it is already signed."""
        seq, chain_hash = self.head()
        if seq == 0:
            return None
        with self.db.write() as session:
            if session.get(AuditCheckpointRow, seq) is not None:
                return None
            row = AuditCheckpointRow(
                seq=seq,
                hash=chain_hash,
                time=utcnow(),
                key_id=self.signer.key_id,
                signature=self.signer.sign(seq, chain_hash),
            )
            session.add(row)
        return Checkpoint(seq=seq, hash=chain_hash, time=row.time, key_id=row.key_id)

    def checkpoint_due(self, every: int, seconds: float) -> bool:
        seq, _ = self.head()
        last = self.last_checkpoint()
        if last is None:
            return seq > 0
        if seq - last.seq >= every:
            return True
        return seq > last.seq and (utcnow() - last.time).total_seconds() >= seconds

    # -- reading ----------------------------------------------------------------------------

    def _filtered(self, flt: AuditFilter) -> Select[AuditEventRow]:
        query = select(AuditEventRow).where(AuditEventRow.seq > flt.after_seq)
        if flt.principal:
            query = query.where(AuditEventRow.principal == flt.principal)
        if flt.action:
            query = query.where(AuditEventRow.action == flt.action)
        if flt.team:
            query = query.where(AuditEventRow.team == flt.team)
        if flt.decision:
            query = query.where(AuditEventRow.decision == flt.decision)
        if flt.request_id:
            query = query.where(AuditEventRow.request_id == flt.request_id)
        if flt.resource_prefix:
            query = query.where(AuditEventRow.resource.startswith(flt.resource_prefix, autoescape=True))
        if flt.since:
            query = query.where(AuditEventRow.time >= flt.since)
        if flt.until:
            query = query.where(AuditEventRow.time < flt.until)
        return query

    def query(self, flt: AuditFilter) -> list[AuditEvent]:
        with self.db.read() as session:
            rows = session.scalars(self._filtered(flt).order_by(AuditEventRow.seq).limit(flt.limit))
            return [_to_event(r) for r in rows]

    def tail(self, count: int) -> list[AuditEvent]:
        with self.db.read() as session:
            rows = session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq.desc()).limit(count))
            return [_to_event(r) for r in reversed(list(rows))]

    def iterate(self, flt: AuditFilter) -> Iterator[AuditEvent]:
        """All matching events in chain order, in batches (for export)."""
        after = flt.after_seq
        while True:
            batch = self.query(AuditFilter(**{**flt.__dict__, "after_seq": after, "limit": _BATCH}))
            yield from batch
            if len(batch) < _BATCH:
                return
            after = batch[-1].seq

    def count(self) -> int:
        with self.db.read() as session:
            return int(session.scalar(select(func.count()).select_from(AuditEventRow)) or 0)

    # -- verification -----------------------------------------------------------------------

    def verify(self) -> VerifyReport:
        """Walk the whole chain; name the first edited, deleted, reordered or truncated event."""
        expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
        with self.db.read() as session:
            checkpoints = list(session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq)))
        hashes_at: dict[int, str] = {}
        wanted = {c.seq for c in checkpoints}

        def fail(problem: str, row: AuditEventRow | None) -> VerifyReport:
            return VerifyReport(
                ok=False,
                events=count,
                checkpoints=len(checkpoints),
                head_seq=expected_seq - 1,
                head_hash=prev_hash,
                problem=problem,
                first_bad_seq=row.seq if row else None,
                first_bad_id=row.id if row else None,
            )

        after = 0
        while True:
            with self.db.read() as session:
                rows = list(
                    session.scalars(
                        select(AuditEventRow).where(AuditEventRow.seq > after).order_by(AuditEventRow.seq).limit(_BATCH)
                    )
                )
            for row in rows:
                if row.seq != expected_seq:
                    missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}..{row.seq - 1}"
                    return fail(
                        f"event(s) {missing} deleted: the chain jumps from {expected_seq - 1} to {row.seq}", row
                    )
                fields = _row_dict(row)
                if event_hash(fields) != row.hash:
                    return fail(self._explain_mismatch(fields, row), row)
                if row.prev_hash != prev_hash:
                    return fail(
                        f"event {row.seq} (id {row.id}) is out of order: it does not follow event {row.seq - 1}", row
                    )
                if row.seq in wanted:
                    hashes_at[row.seq] = row.hash
                prev_hash, expected_seq, count = row.hash, expected_seq + 1, count + 1
            if len(rows) < _BATCH:
                break
            after = rows[-1].seq
        head = expected_seq - 1
        for cp in checkpoints:
            if not self.signer.verify(cp.seq, cp.hash, cp.signature):
                return fail(f"checkpoint at event {cp.seq} has an invalid signature", None)
            if cp.seq > head:
                return fail(
                    f"log truncated: a signed checkpoint covers event {cp.seq} but the log ends at event {head}",
                    None,
                )
            if hashes_at.get(cp.seq) != cp.hash:
                return fail(f"event {cp.seq} does not match its signed checkpoint", None)
        return VerifyReport(ok=True, events=count, checkpoints=len(checkpoints), head_seq=head, head_hash=prev_hash)

    def _explain_mismatch(self, fields: dict[str, Any], row: AuditEventRow) -> str:
        """Tell a moved event (its hash is valid at another position) from an edited one."""
        with self.db.read() as session:
            last = int(session.scalar(select(func.max(AuditEventRow.seq))) or 0)
        for position in range(1, last + 1):
            if position != row.seq and event_hash({**fields, "seq": position}) == row.hash:
                return (
                    f"event {row.seq} (id {row.id}) is out of order: it was written as event {position} "
                    "and moved (reordered)"
                )
        return f"event {row.seq} (id {row.id}) was edited: its content does not match its hash"
