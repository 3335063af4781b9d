"""Database access alone cannot rewrite the audit log: checkpoints chain to each other and are witnessed in
a file outside the database; `verify` names each forgery and the worker alerts instead of signing it."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from strongroom.audit.chain import event_hash
from strongroom.audit.db import AuditCheckpointRow, AuditEventRow
from strongroom.audit.log import AuditFilter, AuditRecord, _row_dict
from strongroom.audit.witness import CheckpointWitness, SignedCheckpoint
from strongroom.audit.worker import AuditCheckpointWorker
from strongroom.core.errors import ConfigurationError
from strongroom.platform import Platform


def _fill(platform: Platform, count: int, resource: str = "r") -> None:
    for i in range(count):
        platform.audit_log.append_standalone(
            AuditRecord(
                principal="alice", token_kind="api", action="GetObject", resource=f"{resource}{i}", decision="Allow"
            )
        )


def _signed_history(platform: Platform) -> list[int]:
    """Three checkpoints over 31 events (plus the one `init` signed); returns their positions."""
    for _ in range(3):
        _fill(platform, 10)
        assert platform.audit_log.checkpoint() is not None
    with platform.db.read() as s:
        return list(s.scalars(select(AuditCheckpointRow.seq).order_by(AuditCheckpointRow.seq)))


def _rehash_from(platform: Platform, seq: int) -> None:
    """What an attacker with write access to the database does after an edit: recompute every hash."""
    with platform.db.write() as s:
        rows = list(s.scalars(select(AuditEventRow).where(AuditEventRow.seq >= seq - 1).order_by(AuditEventRow.seq)))
        prev = rows[0].hash
        for row in rows[1:]:
            row.prev_hash = prev
            row.hash = event_hash(_row_dict(row))
            prev = row.hash


def _worker(platform: Platform) -> AuditCheckpointWorker:
    return AuditCheckpointWorker(platform.audit_log, every=1, seconds=1.0, alert=platform._audit_chain_broken)


def _checkpoint_count(platform: Platform) -> int:
    with platform.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(AuditCheckpointRow)) or 0)


def _alerts(platform: Platform) -> list[str]:
    events = platform.audit_log.query(AuditFilter(action="RaiseAlert", limit=100))
    return [e.params["message"] for e in events if e.params.get("rule") == "audit-chain-broken"]


def test_checkpoints_chain_and_are_appended_outside_the_database(platform: Platform) -> None:
    positions = _signed_history(platform)
    witnessed = platform.audit_log.witness.read() if platform.audit_log.witness else []
    assert [w.seq for w in witnessed] == positions
    assert platform.config.audit_witness_path == platform.config.home / "audit" / "checkpoints.log"
    with platform.db.read() as s:
        prevs = list(s.scalars(select(AuditCheckpointRow.prev).order_by(AuditCheckpointRow.seq)))
    assert len(set(prevs)) == len(prevs)  # each names the one before it
    report = platform.audit_log.verify()
    assert report.ok, report.problem


def test_deleting_checkpoints_editing_and_rehashing_is_named_and_never_signed(platform: Platform) -> None:
    positions = _signed_history(platform)
    with platform.db.write() as s:
        s.execute(delete(AuditCheckpointRow))
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == 15).values(principal="mallory"))
    _rehash_from(platform, 15)
    _fill(platform, 3, "after")

    report = platform.audit_log.verify()
    assert not report.ok
    assert "rewritten" in report.problem and "checkpoints.log" in report.problem
    assert positions[:3] == [1, 11, 21]  # `init` signed the first
    assert report.first_bad_seq == 12 and "events 12..21 were rewritten" in report.problem  # 15 was edited

    _worker(platform).run_once()
    assert _checkpoint_count(platform) == 0, "the worker signed a forged head"
    assert any("deleted from the database" in message for message in _alerts(platform))


def test_rehashing_after_an_edit_with_the_checkpoints_left_in_place_is_refused(platform: Platform) -> None:
    _signed_history(platform)
    _fill(platform, 5, "unsigned")
    before = _checkpoint_count(platform)
    with platform.db.write() as s:
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == 25).values(decision="Deny"))
    _rehash_from(platform, 25)

    _worker(platform).run_once()
    assert _checkpoint_count(platform) == before
    assert any("no longer matches its signed checkpoint" in message for message in _alerts(platform))
    report = platform.audit_log.verify()
    assert not report.ok and "rewritten" in report.problem


def test_deleting_the_newest_checkpoint_and_truncating_back_is_named(platform: Platform) -> None:
    positions = _signed_history(platform)
    with platform.db.write() as s:
        s.execute(delete(AuditCheckpointRow).where(AuditCheckpointRow.seq == positions[-1]))
        s.execute(delete(AuditEventRow).where(AuditEventRow.seq > positions[-2]))

    report = platform.audit_log.verify()
    assert not report.ok
    assert "truncated" in report.problem and f"event {positions[-1]}" in report.problem
    assert report.first_bad_seq == positions[-2] + 1

    _fill(platform, 2, "new")
    _worker(platform).run_once()
    assert _checkpoint_count(platform) == len(positions) - 1
    assert _alerts(platform)


def test_an_edit_without_rehashing_is_named(platform: Platform) -> None:
    _signed_history(platform)
    with platform.db.write() as s:
        s.execute(update(AuditEventRow).where(AuditEventRow.seq == 12).values(action="DeleteBucket"))
    report = platform.audit_log.verify()
    assert not report.ok
    assert report.first_bad_seq == 12 and "edited" in report.problem


def test_a_line_removed_from_the_witness_file_is_named(platform: Platform) -> None:
    _signed_history(platform)
    path = platform.config.audit_witness_path
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:1] + lines[2:]))
    report = platform.audit_log.verify()
    assert not report.ok and "line 2" in report.problem and "removed" in report.problem


def test_a_checkpoint_only_in_the_database_is_named(platform: Platform) -> None:
    positions = _signed_history(platform)
    path = platform.config.audit_witness_path
    path.write_bytes(b"".join(path.read_bytes().splitlines(keepends=True)[:-1]))
    report = platform.audit_log.verify()
    assert not report.ok
    assert f"checkpoint at event {positions[-1]} is in the database but not in" in report.problem


def test_a_platform_restart_keeps_the_chain(platform: Platform) -> None:
    _signed_history(platform)
    again = Platform(platform.config)
    try:
        _fill(again, 4)
        assert again.audit_log.checkpoint() is not None
        report = again.audit_log.verify()
        assert report.ok, report.problem
    finally:
        again.close()


def test_the_witness_file_is_private_and_syslog_gets_a_copy(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        port = receiver.getsockname()[1]
        witness = CheckpointWitness(tmp_path / "audit" / "checkpoints.log", f"127.0.0.1:{port}")
        signed = SignedCheckpoint(7, "ab" * 32, "2026-12-06T05:00:00+00:00", "key", "0" * 64, b"\x01" * 64)
        witness.append(signed)
        datagram = receiver.recv(65536).decode()
    assert "strongroom-audit-checkpoint" in datagram and '"seq":7' in datagram
    assert witness.read() == [signed] and witness.last() == signed
    assert stat.S_IMODE(witness.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(witness.path.parent.stat().st_mode) == 0o700


def test_a_syslog_address_that_is_not_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="host:port"):
        CheckpointWitness(tmp_path / "checkpoints.log", "loghost")


def test_a_deleted_witness_file_is_named_and_stops_the_signing(platform: Platform) -> None:
    positions = _signed_history(platform)
    platform.config.audit_witness_path.unlink()
    report = platform.audit_log.verify()
    assert not report.ok and f"checkpoint at event {positions[0]} is in the database but not in" in report.problem
    _fill(platform, 2)
    _worker(platform).run_once()
    assert _checkpoint_count(platform) == len(positions)
    assert any("is empty" in message for message in _alerts(platform))


def test_a_home_signed_before_the_chain_continues_it(platform: Platform) -> None:
    """Checkpoints signed before they were chained (no witness file yet) verify, and the next one chains on."""
    signer = platform.audit_log.signer
    _fill(platform, 5)
    with platform.db.write() as s:
        s.execute(delete(AuditCheckpointRow))
        head = s.scalars(select(AuditEventRow).order_by(AuditEventRow.seq.desc()).limit(1)).one()
        s.add(
            AuditCheckpointRow(
                seq=head.seq,
                hash=head.hash,
                time=head.time,
                key_id=signer.key_id,
                signature=signer.sign(head.seq, head.hash),
                prev="",
            )
        )
    platform.config.audit_witness_path.unlink()
    assert platform.audit_log.verify().ok
    _fill(platform, 3)
    assert platform.audit_log.checkpoint() is not None
    report = platform.audit_log.verify()
    assert report.ok, report.problem
    assert [w.seq for w in platform.audit_log.witness.read()] == [head.seq + 3]  # type: ignore[union-attr]
