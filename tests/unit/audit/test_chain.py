"""The audit chain names the first edited, deleted, reordered or truncated event."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import delete, func, select, update

from strongroom.audit.chain import GENESIS_HASH, HASHED_FIELDS, REDACTED, canonical, canonical_pieces, redact
from strongroom.audit.db import AuditCheckpointRow, AuditEventRow
from strongroom.audit.log import AuditRecord
from strongroom.platform import Platform
from tests.conftest import ON_POSTGRESQL


def _fill(platform: Platform, count: int) -> None:
    for i in range(count):
        platform.audit_log.append_standalone(
            AuditRecord(principal="alice", token_kind="api", action="DescribeTeam", resource=f"r{i}", decision="Allow")
        )


def test_valid_chain_verifies(platform: Platform) -> None:
    _fill(platform, 20)
    report = platform.audit_log.verify()
    assert report.ok, report.problem
    assert report.events == 21  # the bootstrap event plus ours
    assert report.head_seq == 21


def test_edit_is_named(platform: Platform) -> None:
    _fill(platform, 10)
    with platform.db.write() as s:
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == 5).values(decision="Deny"))
    report = platform.audit_log.verify()
    assert not report.ok
    assert report.first_bad_seq == 5
    assert "edited" in report.problem


def test_deletion_is_named(platform: Platform) -> None:
    _fill(platform, 10)
    with platform.db.write() as s:
        s.execute(delete(AuditEventRow).where(AuditEventRow.seq == 7))
    report = platform.audit_log.verify()
    assert not report.ok
    assert "7" in report.problem and "deleted" in report.problem


def test_reorder_is_named(platform: Platform) -> None:
    _fill(platform, 10)
    with platform.db.write() as s:
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == 4).values(seq=-4))
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == 5).values(seq=4))
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == -4).values(seq=5))
    report = platform.audit_log.verify()
    assert not report.ok
    assert report.first_bad_seq == 4
    assert "reordered" in report.problem


def test_truncation_after_a_checkpoint_is_found(platform: Platform) -> None:
    _fill(platform, 10)
    assert platform.audit_log.checkpoint() is not None
    with platform.db.write() as s:
        s.execute(delete(AuditEventRow).where(AuditEventRow.seq > 8))
    report = platform.audit_log.verify()
    assert not report.ok
    assert "truncated" in report.problem


def test_forged_checkpoint_is_found(platform: Platform) -> None:
    _fill(platform, 3)
    platform.audit_log.checkpoint()
    with platform.db.write() as s:
        s.execute(update(AuditCheckpointRow).values(signature=b"\x00" * 64))
    report = platform.audit_log.verify()
    assert not report.ok and "signature" in report.problem


def test_rewritten_chain_fails_against_signed_checkpoint(platform: Platform) -> None:
    """An attacker who recomputes every hash after an edit still cannot forge the checkpoint."""
    from strongroom.audit.chain import event_hash
    from strongroom.audit.log import _row_dict

    _fill(platform, 5)
    platform.audit_log.checkpoint()
    with platform.db.write() as s:
        rows = list(s.scalars(select(AuditEventRow).order_by(AuditEventRow.seq)))
        prev = "0" * 64
        for row in rows:
            if row.seq == 3:
                row.principal = "mallory"
            row.prev_hash = prev
            row.hash = event_hash(_row_dict(row))
            prev = row.hash
    report = platform.audit_log.verify()
    assert not report.ok and "checkpoint" in report.problem


def test_sequence_is_unique(platform: Platform) -> None:
    _fill(platform, 5)
    with platform.db.read() as s:
        assert s.scalar(select(func.count(func.distinct(AuditEventRow.seq)))) == 6


def test_redaction() -> None:
    params = {
        "name": "ok",
        "token": "abc",
        "client_secret": "x",
        "token_id": "tok_123",
        "nested": {"password": "p", "note": "my token is sr_tok_0123456789abcdef_secretsecret"},
    }
    red = redact(params)
    assert red["name"] == "ok" and red["token_id"] == "tok_123"
    assert red["token"] == REDACTED and red["client_secret"] == REDACTED
    assert red["nested"]["password"] == REDACTED
    assert "secretsecret" not in red["nested"]["note"]


HOSTILE = 'quote " backslash \\ slash / nul-ish \\u0000 unicode é ✓ \u2028 emoji 🙂 "seq":0 "prev_hash":""'


def _hostile_record(i: int) -> AuditRecord:
    return AuditRecord(
        principal=f"alice-{i}",
        token_kind="api",
        action="CreateUser",
        resource=f"srn:strongroom:::user/{HOSTILE}",
        decision="Allow",
        policies=["platform-admin", HOSTILE],
        error=HOSTILE,
        source="127.0.0.1",
        user_agent=HOSTILE,
        params={"seq": 0, "prev_hash": "", "name": HOSTILE, "ratio": 1e5, "small": 0.1, "nested": {"b": [1, True]}},
    )


def test_canonical_pieces_join_to_the_canonical_json() -> None:
    fields = {name: HOSTILE for name in HASHED_FIELDS} | {"params": _hostile_record(0).params, "policies": [HOSTILE]}
    before, between, after = canonical_pieces({**fields, "seq": 0, "prev_hash": ""})
    for seq, prev in ((1, GENESIS_HASH), (123456789012, "ab" * 32)):
        joined = f'{before}"{prev}"{between}{seq}{after}'
        assert joined.encode() == canonical({**fields, "seq": seq, "prev_hash": prev})


def test_events_with_hostile_text_verify_and_hash_as_python_does(platform: Platform) -> None:
    events = [platform.audit_log.append_standalone(_hostile_record(i)) for i in range(5)]
    report = platform.audit_log.verify()
    assert report.ok, report.problem
    with platform.db.read() as s:
        ours = select(AuditEventRow).where(AuditEventRow.seq >= events[0].seq).order_by(AuditEventRow.seq)
        rows = s.scalars(ours).all()
    assert [row.hash for row in rows] == [event.hash for event in events]
    assert all(row.params["name"] == HOSTILE and row.params["ratio"] == 1e5 for row in rows)
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


@ON_POSTGRESQL  # SQLite has one writer at a time by design (its lock is the write transaction)
def test_the_chain_lock_is_released_with_the_append_on_postgresql(platform: Platform) -> None:
    """The guard's append commits in the same round trip: another writer never waits on this client."""
    pool = ThreadPoolExecutor(1)
    try:
        with platform.db.write() as session:
            first = platform.audit_log.append(session, _hostile_record(0), last=True)
            # Still inside the first caller's transaction block: the second writer must not wait for it.
            second = pool.submit(platform.audit_log.append_standalone, _hostile_record(1)).result(timeout=10)
    finally:
        pool.shutdown(wait=False)
    assert second.seq == first.seq + 1 and second.prev_hash == first.hash
    assert platform.audit_log.verify().ok
