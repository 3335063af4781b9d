"""The append-only, hash-chained audit log.

Each event's hash is SHA-256 over its canonical JSON, which includes its sequence number and
the previous event's hash, so editing, deleting or reordering any event breaks the chain from
that point on. A background worker signs checkpoints (Ed25519) of the chain head. Each checkpoint
also signs the digest of the one before it (a checkpoint chain) and is appended to a file outside
the database (``audit.witness``), so whoever can write the database alone can neither drop a
checkpoint nor recompute the hashes of the events it covers unnoticed. Before signing, the worker
verifies the segment since the last checkpoint and refuses (``AuditChainBroken``) to sign a
broken one.

Appends are serialized: SQLite by its single writer, PostgreSQL by a transaction-scoped
advisory lock on the chain head. The unique ``seq`` makes a fork impossible either way.

On PostgreSQL the lock is held until the transaction commits, so every moment between taking it
and committing caps the whole platform, across all API processes. The append is therefore one
call of a database function (``strongroom_audit_append``, migration 0016) that takes the lock,
reads the head, hashes and inserts the event, sent in the same round trip as the ``COMMIT`` when
it is the transaction's last statement (``last=True``, the guard's case): the lock is never held
while the database waits for a client that may itself wait for a core or for its GIL. The caller
builds the event's canonical JSON in pieces around the two values only the lock can give (the
sequence number and the previous hash); the database joins and hashes them, and ``verify``
recomputes the same digest in Python.

A commit that waited for its WAL flush (fsync) inside the lock would cap the platform at one
flush per call. An audited transaction therefore commits without waiting for the flush
(``synchronous_commit`` off for that transaction only, which releases the lock at once) and
``make_durable`` then waits for a flush that covers it, outside the lock. Concurrent calls share
that flush (group commit): a call that committed waits for the next flush to *start* after its
commit; one of the waiting threads runs it for all of them (``_GroupFlush``), so a busy process
flushes once per batch of calls, not once per call. A flush that fails fails every call waiting
for it. The caller answers only after ``make_durable``: no answer ever reports a call whose event
could still be lost.
WAL is written in order, so a crash loses at most a suffix of the chain together with the
changes of the same transactions (never a hole in the chain, never a change without its
event); others may see such a change up to one flush before it is durable.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg
from sqlalchemy import Connection, Select, Table, func, select, text
from sqlalchemy.orm import Session

from strongroom.audit.chain import GENESIS_HASH, canonical_pieces, event_hash, redact
from strongroom.audit.db import AuditCheckpointRow, AuditEventRow
from strongroom.audit.models import AuditEvent, Checkpoint, VerifyReport
from strongroom.audit.signing import FIRST_CHECKPOINT, CheckpointSigner, checkpoint_digest
from strongroom.audit.witness import CheckpointWitness, SignedCheckpoint, WitnessError
from strongroom.db.base import utcnow
from strongroom.db.driver import Statement, driver
from strongroom.db.engine import Database

_TABLE = cast(Table, AuditEventRow.__table__)
_INSERT = Statement.insert(_TABLE, [c.name for c in _TABLE.columns])
_HEAD = Statement.of("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
# PostgreSQL: the whole append under the chain lock, in the database (see the module's docstring).
_APPEND = (
    "SELECT event_seq, event_prev_hash, event_hash FROM strongroom_audit_append("
    "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s, %s, %s, %s::json, %s, %s, %s)"
)
_APPEND_AND_COMMIT = _APPEND + "; COMMIT"
# A one-statement write commits synchronously: it waits for the WAL flush up to its commit record,
# and so past every transaction committed before it. Its own row per backend: no waits on others.
_FLUSH = text(
    "INSERT INTO audit_flushes (backend, n) VALUES (pg_backend_pid(), 1) "
    "ON CONFLICT (backend) DO UPDATE SET n = audit_flushes.n + 1"
)
_BATCH = 5000


class AuditChainBroken(Exception):
    """The chain since the last checkpoint does not verify: the worker alerts instead of signing."""

    def __init__(self, problem: str, first_bad_seq: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.first_bad_seq = first_bad_seq


@dataclass
class _Walk:
    """The result of walking the events after one position."""

    count: int
    head_seq: int
    head_hash: str
    hashes_at: dict[int, str]
    problem: str = ""
    bad_row: AuditEventRow | None = None


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


class _GroupFlush:
    """Concurrent waits for durability share one flush.

    ``wait`` returns once a flush that *started after* the call began has succeeded: every commit
    made before the call is then covered (WAL is flushed in order). The first waiter finding no
    flush under way runs one itself for everyone waiting; the others wait for it or, if it
    started before they came, for the next. A failed flush raises in every call that needed it.
    """

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush
        self._changed = threading.Condition()
        self._started = 0  # the last flush begun (numbered from 1)
        self._finished = 0  # the last flush ended, successfully or not
        self._running = False
        self._failures: dict[int, BaseException] = {}
        self.flushes = 0  # flushes run (tests and metrics: calls per flush)

    def wait(self) -> None:
        with self._changed:
            needed = self._started + 1  # the one under way (if any) may have begun before our commit
            while self._finished < needed:
                if not self._running:
                    self._running = True
                    self._started += 1
                    break
                self._changed.wait()
            else:
                failed = self._failures.get(needed)
                if failed is not None:
                    raise failed
                return
            number = self._started
        failure: BaseException | None = None
        try:
            self._flush()
        except BaseException as exc:
            failure = exc
        with self._changed:
            self._running = False
            self._finished = number
            self.flushes += 1
            if failure is not None:
                self._failures[number] = failure
            for old in [n for n in self._failures if n < number - 1000]:
                del self._failures[old]
            self._changed.notify_all()
        if failure is not None:
            raise failure


class AuditLog:
    def __init__(
        self,
        db: Database,
        signer: CheckpointSigner,
        witness: CheckpointWitness | None = None,
        observer: Callable[[AuditRecord, float], None] | None = None,
    ) -> None:
        self.db = db
        self.signer = signer
        self.witness = witness
        self.observer = observer  # told of every append and how long it took (metrics)
        self._checkpointing = threading.Lock()
        self._group = _GroupFlush(self._flush)

    # -- writing ----------------------------------------------------------------------------

    def append(self, session: Session | Connection, record: AuditRecord, *, last: bool = False) -> AuditEvent:
        """Append ``record`` inside the caller's write transaction; returns the sealed event.

        ``last``: nothing else is written in this transaction, so on PostgreSQL it is committed
        in the same round trip (and the chain lock released with it); the caller's own commit
        then has nothing left to do.
        """
        # Sent to the driver (``strongroom.db.driver``): the audit append is on every call's
        # path, and SQLAlchemy's statement handling costs more than the SQL itself.
        started = time.perf_counter()
        now = utcnow()
        fields: dict[str, Any] = {
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
        }
        if self.db.is_sqlite:
            db = driver(session)
            head = db.execute(_HEAD)
            fields["seq"], fields["prev_hash"] = (head[0][0] + 1, head[0][1]) if head else (1, GENESIS_HASH)
            digest = event_hash(fields)
            sealed = {**fields, "time": now, "hash": digest}
            db.execute(
                _INSERT,
                {
                    **sealed,
                    "time": db.time(now),
                    "policies": db.json(fields["policies"]),
                    "params": db.json(fields["params"]),
                },
            )
        else:
            connection = session.connection() if isinstance(session, Session) else session
            sealed = {**fields, "time": now, **self._append_postgres(connection, fields, now, last)}
        if self.observer is not None:
            self.observer(record, time.perf_counter() - started)
        return AuditEvent.model_construct(**sealed)

    @staticmethod
    def _append_postgres(
        connection: Connection, fields: dict[str, Any], now: dt.datetime, last: bool
    ) -> dict[str, Any]:
        """``strongroom_audit_append`` (and the ``COMMIT`` when ``last``): seq, prev_hash and hash."""
        pieces = canonical_pieces({**fields, "seq": 0, "prev_hash": ""})
        values = (
            fields["id"], now, fields["principal"], fields["token_kind"], fields["role"], fields["team"],
            fields["action"], fields["resource"], fields["decision"], json.dumps(fields["policies"]),
            fields["outcome"], fields["error"], fields["request_id"], fields["source"], fields["user_agent"],
            json.dumps(fields["params"]), *pieces,
        )  # fmt: skip
        raw = cast(psycopg.Connection[Any], connection.connection.dbapi_connection)
        # Two statements in one message need client-side binding (psycopg quotes each value).
        cursor = psycopg.ClientCursor(raw) if last else raw.cursor()
        try:
            cursor.execute(_APPEND_AND_COMMIT if last else _APPEND, values)
            found = cursor.fetchone()
        finally:
            cursor.close()
        if found is None:
            raise RuntimeError("strongroom_audit_append returned no row")
        return {"seq": int(found[0]), "prev_hash": str(found[1]), "hash": str(found[2])}

    def append_standalone(self, record: AuditRecord) -> AuditEvent:
        with self.db.write_connection() as connection:
            event = self.append(connection, record, last=True)
        self.make_durable()
        return event

    def make_durable(self) -> None:
        """Wait until every event appended by a transaction committed before this call is on disk
        (PostgreSQL: a one-statement transaction that commits synchronously flushes the WAL up to
        and past them), sharing the flush with concurrent callers."""
        if self.db.is_sqlite:
            return
        self._group.wait()

    @property
    def flushes(self) -> int:
        """How many durability flushes this process ran (fewer than calls under concurrency)."""
        return self._group.flushes

    def _flush(self) -> None:
        with self.db.autocommit() as connection:
            connection.execute(_FLUSH)

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
        """Sign the current head unless it is already signed, chained to the previous checkpoint,
        and append it to the witness file before the database transaction commits.

        Raises:
            AuditChainBroken: the last checkpoint is not where the witness says, or the events since
                it do not verify; nothing is signed.
        """
        with self._checkpointing:
            seq, chain_hash = self.head()
            if seq == 0:
                return None
            anchor = self._anchor()
            if anchor is not None and anchor.seq == seq:
                return None
            self._verify_segment(anchor, seq, chain_hash)
            prev = checkpoint_digest(anchor.seq, anchor.hash, anchor.prev, anchor.signature) if anchor else ""
            prev = prev or FIRST_CHECKPOINT
            signature = self.signer.sign(seq, chain_hash, prev)
            now = utcnow()
            with self.db.write() as session:
                if session.get(AuditCheckpointRow, seq) is not None:
                    return None
                session.add(
                    AuditCheckpointRow(
                        seq=seq, hash=chain_hash, time=now, key_id=self.signer.key_id, signature=signature, prev=prev
                    )
                )
                session.flush()
                if self.witness is not None:
                    self.witness.append(
                        SignedCheckpoint(seq, chain_hash, now.isoformat(), self.signer.key_id, prev, signature)
                    )
            return Checkpoint(seq=seq, hash=chain_hash, time=now, key_id=self.signer.key_id, prev=prev)

    def _anchor(self) -> SignedCheckpoint | None:
        """The newest checkpoint, as the database and the witness file agree on it."""
        with self.db.read() as session:
            row = session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq.desc()).limit(1)).first()
        in_db = (
            SignedCheckpoint(row.seq, row.hash, row.time.isoformat(), row.key_id, row.prev, row.signature)
            if row is not None
            else None
        )
        if self.witness is None:
            return in_db
        try:
            witnessed = self.witness.last()
        except WitnessError as exc:
            raise AuditChainBroken(str(exc)) from None
        where = self.witness.path
        if witnessed is None:
            if in_db is not None and in_db.prev:
                raise AuditChainBroken(f"checkpoint at event {in_db.seq} is in the database but {where} is empty")
            return in_db  # a home from before the witness file: its first chained checkpoint starts it
        if in_db is None or in_db.seq < witnessed.seq:
            raise AuditChainBroken(
                f"checkpoint at event {witnessed.seq} (witnessed in {where}) was deleted from the database",
                witnessed.seq,
            )
        if in_db.seq > witnessed.seq:
            raise AuditChainBroken(f"checkpoint at event {in_db.seq} is in the database but not in {where}", in_db.seq)
        if (in_db.hash, in_db.prev, in_db.signature) != (witnessed.hash, witnessed.prev, witnessed.signature):
            raise AuditChainBroken(
                f"checkpoint at event {in_db.seq} in the database differs from the one witnessed in {where}", in_db.seq
            )
        return witnessed

    def _verify_segment(self, anchor: SignedCheckpoint | None, head_seq: int, head_hash: str) -> None:
        """Raise ``AuditChainBroken`` unless the events after ``anchor`` up to the head verify."""
        after, prev_hash = 0, GENESIS_HASH
        if anchor is not None:
            with self.db.read() as session:
                row = session.get(AuditEventRow, anchor.seq)
            if row is None:
                raise AuditChainBroken(
                    f"log truncated: the last checkpoint covers event {anchor.seq}, which is gone", anchor.seq
                )
            if row.hash != anchor.hash or event_hash(_row_dict(row)) != row.hash:
                raise AuditChainBroken(
                    f"event {anchor.seq} (id {row.id}) no longer matches its signed checkpoint: the events up to it "
                    "were edited or their hashes recomputed",
                    anchor.seq,
                )
            after, prev_hash = anchor.seq, anchor.hash
        walk = self._walk(after, prev_hash, {head_seq})
        if walk.problem:
            raise AuditChainBroken(walk.problem, walk.bad_row.seq if walk.bad_row else None)
        if walk.hashes_at.get(head_seq) != head_hash:
            raise AuditChainBroken(f"event {head_seq} changed while it was being signed", head_seq)

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

    def _walk(self, after: int, prev_hash: str, wanted: set[int]) -> _Walk:
        """Check every event after ``after`` (whose hash is ``prev_hash``); stop at the first bad one."""
        walk = _Walk(count=0, head_seq=after, head_hash=prev_hash, hashes_at={})
        while True:
            with self.db.read() as session:
                rows = list(
                    session.scalars(
                        select(AuditEventRow).where(AuditEventRow.seq > after).order_by(AuditEventRow.seq).limit(_BATCH)
                    )
                )
            for row in rows:
                expected = walk.head_seq + 1
                if row.seq != expected:
                    missing = f"{expected}" if row.seq == expected + 1 else f"{expected}..{row.seq - 1}"
                    walk.problem = f"event(s) {missing} deleted: the chain jumps from {expected - 1} to {row.seq}"
                elif event_hash(fields := _row_dict(row)) != row.hash:
                    walk.problem = self._explain_mismatch(fields, row)
                elif row.prev_hash != walk.head_hash:
                    walk.problem = (
                        f"event {row.seq} (id {row.id}) is out of order: it does not follow event {row.seq - 1}"
                    )
                if walk.problem:
                    walk.bad_row = row
                    return walk
                if row.seq in wanted:
                    walk.hashes_at[row.seq] = row.hash
                walk.head_seq, walk.head_hash, walk.count = row.seq, row.hash, walk.count + 1
            if len(rows) < _BATCH:
                return walk
            after = rows[-1].seq

    def verify(self) -> VerifyReport:
        """Walk the whole chain, the signed checkpoint chain and the witness file outside the database;
        name the first edited, deleted, reordered, truncated or rewritten event."""
        with self.db.read() as session:
            checkpoints = list(session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq)))
        witnessed: list[SignedCheckpoint] = []
        witness_problem = ""
        if self.witness is not None:
            try:
                witnessed = self.witness.read()
            except WitnessError as exc:
                witness_problem = str(exc)
        walk = self._walk(0, GENESIS_HASH, {c.seq for c in checkpoints} | {w.seq for w in witnessed})

        def report(problem: str = "", seq: int | None = None, row: AuditEventRow | None = None) -> VerifyReport:
            return VerifyReport(
                ok=not problem,
                events=walk.count,
                checkpoints=len(checkpoints),
                head_seq=walk.head_seq,
                head_hash=walk.head_hash,
                problem=problem,
                first_bad_seq=row.seq if row is not None else seq,
                first_bad_id=row.id if row is not None else None,
            )

        if walk.problem:
            return report(walk.problem, row=walk.bad_row)
        head = walk.head_seq
        problem, seq = self._check_witness(witnessed, walk, {c.seq: c for c in checkpoints})
        if witness_problem or problem:
            return report(witness_problem or problem, seq)
        previous: AuditCheckpointRow | None = None
        witnessed_seqs = {w.seq for w in witnessed}
        for cp in checkpoints:
            if not self.signer.verify(cp.seq, cp.hash, cp.signature, cp.prev):
                return report(f"checkpoint at event {cp.seq} has an invalid signature", cp.seq)
            if cp.prev and cp.prev != (
                checkpoint_digest(previous.seq, previous.hash, previous.prev, previous.signature)
                if previous is not None
                else FIRST_CHECKPOINT
            ):
                return report(
                    f"checkpoint at event {cp.seq} does not follow the checkpoint before it in the database: "
                    "a checkpoint before it was deleted",
                    cp.seq,
                )
            if cp.seq > head:
                return report(
                    f"log truncated: a signed checkpoint covers event {cp.seq} but the log ends at event {head}",
                    head + 1,
                )
            if walk.hashes_at.get(cp.seq) != cp.hash:
                return report(f"event {cp.seq} does not match its signed checkpoint", cp.seq)
            if self.witness is not None and cp.prev and cp.seq not in witnessed_seqs:
                return report(f"checkpoint at event {cp.seq} is in the database but not in {self.witness.path}", cp.seq)
            previous = cp
        return report()

    def _check_witness(
        self, witnessed: list[SignedCheckpoint], walk: _Walk, in_db: dict[int, AuditCheckpointRow]
    ) -> tuple[str, int | None]:
        """The database against the checkpoints witnessed outside it: ``(problem, first bad seq)``."""
        where = self.witness.path if self.witness else "the witness file"
        good_seq, prev_digest = 0, ""
        deleted: tuple[str, int | None] = ("", None)  # reported only if no event was rewritten
        for index, cp in enumerate(witnessed):
            line = index + 1
            if not self.signer.verify(cp.seq, cp.hash, cp.signature, cp.prev):
                return f"line {line} of {where} (checkpoint at event {cp.seq}) has an invalid signature", cp.seq
            if prev_digest and cp.prev != prev_digest:
                return f"line {line} of {where} does not follow the line before it: a checkpoint was removed", cp.seq
            prev_digest = checkpoint_digest(cp.seq, cp.hash, cp.prev, cp.signature)
            if cp.seq > walk.head_seq:
                return (
                    f"log truncated: the checkpoint at event {cp.seq} witnessed in {where} is missing from the "
                    f"database, which ends at event {walk.head_seq}; events {walk.head_seq + 1}..{cp.seq} were deleted",
                    walk.head_seq + 1,
                )
            if walk.hashes_at.get(cp.seq) != cp.hash:
                return (
                    f"events {good_seq + 1}..{cp.seq} were rewritten after they were signed: event {cp.seq} does "
                    f"not match the checkpoint witnessed in {where} (its hashes were recomputed)",
                    good_seq + 1,
                )
            if cp.seq not in in_db and not deleted[0]:
                deleted = f"checkpoint at event {cp.seq} (witnessed in {where}) was deleted from the database", cp.seq
            good_seq = cp.seq
        return deleted

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
