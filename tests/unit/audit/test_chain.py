"""The audit chain names the first edited, deleted, reordered or truncated event."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from strongroom.audit.chain import REDACTED, redact
from strongroom.audit.db import AuditCheckpointRow, AuditEventRow
from strongroom.audit.log import AuditRecord
from strongroom.platform import Platform


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
