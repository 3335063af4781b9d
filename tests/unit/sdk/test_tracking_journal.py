"""The journal of ``durability="journaled"`` Trackers: its file format, permissions and locking.

Replays that reach a platform are in ``tests/integration/test_experiments.py``; here a Session
points at a Unix socket nobody listens on, so a replay that tried to send would fail visibly.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from strongroom.core.errors import InvalidInput
from strongroom.sdk import tracking_batch, tracking_journal
from strongroom.sdk.session import Session
from strongroom.sdk.tracking import BatchWriter, durability_from
from strongroom.sdk.tracking_journal import Journal, JournalCorrupt, journal_folder, read_journal, replay_journals

PLATFORM = "https://platform.example:8443"


def _metric(seq: int) -> dict[str, object]:
    return tracking_batch.write_record(seq, "metric", "tc-1", n="loss", v=1.0 / seq, s=seq, t=1000.0 + seq)


def _files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.journal"))


def test_the_folder_is_made_private_and_named_by_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRONGROOM_TRACKING_JOURNAL", str(tmp_path / "a" / "journal"))
    folder = journal_folder()
    assert folder == (tmp_path / "a" / "journal").resolve()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    journal = Journal(folder, PLATFORM, "risk", "alice")
    [path] = _files(folder)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    journal.close(delete=True)
    assert _files(folder) == []


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_folder_others_can_write_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(mode)
    monkeypatch.setenv("STRONGROOM_TRACKING_JOURNAL", str(shared))
    with pytest.raises(InvalidInput, match="STRONGROOM_TRACKING_JOURNAL") as raised:
        journal_folder()
    assert raised.value.field == "STRONGROOM_TRACKING_JOURNAL"


def test_a_file_is_refused_as_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InvalidInput, match="STRONGROOM_TRACKING_JOURNAL"):
        journal_folder(tmp_path / "file")


def test_journaled_is_a_durability() -> None:
    assert durability_from("journaled") == "journaled"
    with pytest.raises(InvalidInput, match="journaled"):
        durability_from("fsynced")


def test_writes_a_batch_in_flight_and_its_ack_read_back(tmp_path: Path) -> None:
    journal = Journal(journal_folder(tmp_path), PLATFORM, "risk", "alice")
    queue: dict[str, tracking_batch.Pending] = {}
    for seq in (1, 2):
        journal.write(_metric(seq))
        tracking_batch.apply(queue, _metric(seq))
    body = tracking_batch.batch_body(queue)
    journal.send("key-1", 2, body)
    journal.write(_metric(3))  # queued while the batch is in flight
    [path] = _files(tmp_path)
    contents = read_journal(path)
    assert contents.header["platform"] == PLATFORM and contents.header["principal"] == "alice"
    assert contents.resend == ("key-1", body)  # the same key and the same body
    assert [w["seq"] for w in contents.writes] == [3]
    journal.ack(2)
    contents = read_journal(path)
    assert contents.resend is None and [w["seq"] for w in contents.writes] == [3]
    journal.close(delete=False)  # not everything acknowledged: left for a replay
    assert _files(tmp_path) == [path]


def test_a_large_journal_moves_on_to_a_new_file_and_drops_the_old_at_its_ack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tracking_journal, "SEGMENT_BYTES", 1000)
    journal = Journal(journal_folder(tmp_path), PLATFORM, "risk", "alice")
    for seq in range(1, 31):
        journal.write(_metric(seq))
    journal.rotate_if_large()  # as the batch up to 30 is taken
    journal.send("key-1", 30, {"creates": [], "components": [], "metrics": []})
    journal.write(_metric(31))
    old, new = _files(tmp_path)
    assert [w["seq"] for w in read_journal(new).writes] == [31]
    assert read_journal(old).resend is not None and read_journal(old).writes == []
    journal.ack(30)
    assert _files(tmp_path) == [new]  # the old file held only what is now acknowledged
    journal.close(delete=True)
    assert _files(tmp_path) == []


def test_a_torn_last_line_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    journal = Journal(journal_folder(tmp_path), PLATFORM, "risk", "alice")
    journal.write(_metric(1))
    journal.close(delete=False)
    [path] = _files(tmp_path)
    with path.open("ab") as handle:
        handle.write(json.dumps(_metric(2)).encode()[:20])  # a crash in the middle of an append
    with caplog.at_level(logging.WARNING, logger="strongroom.tracking"):
        contents = read_journal(path)
    assert [w["seq"] for w in contents.writes] == [1] and contents.torn
    assert "cut short" in caplog.text and str(path) in caplog.text


def test_a_corrupt_line_in_the_middle_is_an_error_naming_the_file_and_line(tmp_path: Path) -> None:
    journal = Journal(journal_folder(tmp_path), PLATFORM, "risk", "alice")
    journal.write(_metric(1))
    journal.close(delete=False)
    [path] = _files(tmp_path)
    with path.open("ab") as handle:
        handle.write(b"{not json\n" + json.dumps(_metric(2)).encode() + b"\n")
    with pytest.raises(JournalCorrupt, match=rf"{path}, line 3"):
        read_journal(path)


def _unreachable(tmp_path: Path) -> Session:
    return Session(socket=tmp_path / "nobody.sock", token="t")  # a send would fail: PlatformUnreachable


def test_a_live_writers_journal_and_other_platforms_teams_and_users_are_left_alone(tmp_path: Path) -> None:
    folder = journal_folder(tmp_path / "journal")
    session = _unreachable(tmp_path)
    mine = tracking_journal.platform_of(session)
    live = Journal(folder, mine, "risk", "alice")  # its writer runs: it holds the lock
    live.write(_metric(1))
    for platform, team, principal in ((PLATFORM, "risk", "alice"), (mine, "fraud", "alice"), (mine, "risk", "bob")):
        gone = Journal(folder, platform, team, principal)
        gone.write(_metric(1))
        gone.close(delete=False)
    before = {p: p.read_bytes() for p in _files(folder)}
    summary = replay_journals(session, "risk", "alice", folder)
    assert (summary.locked, summary.other, summary.files) == (1, 3, [])
    assert {p: p.read_bytes() for p in _files(folder)} == before
    live.close(delete=True)


def test_a_gone_writers_journal_is_kept_when_the_platform_cannot_be_reached(tmp_path: Path) -> None:
    folder = journal_folder(tmp_path / "journal")
    session = _unreachable(tmp_path)
    gone = Journal(folder, tracking_journal.platform_of(session), "risk", "alice")
    gone.write(_metric(1))
    gone.close(delete=False)
    [path] = _files(folder)
    summary = replay_journals(session, "risk", "alice", folder)
    [done] = summary.files
    assert done.error and "kept" in done.error and _files(folder) == [path]


def test_a_journal_left_by_its_writer_can_be_claimed_once(tmp_path: Path) -> None:
    folder = journal_folder(tmp_path)
    gone = Journal(folder, PLATFORM, "risk", "alice")
    gone.close(delete=False)
    [path] = _files(folder)
    first = tracking_journal._claim(path)
    assert first is not None
    try:
        assert tracking_journal._claim(path) is None  # a second replayer waits its turn
    finally:
        os.close(first)


def test_a_journaled_write_into_a_folder_others_can_write_is_refused_and_not_queued(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("STRONGROOM_TRACKING_JOURNAL", str(shared))
    writer = BatchWriter(_unreachable(tmp_path), "risk")
    try:
        with pytest.raises(InvalidInput, match="STRONGROOM_TRACKING_JOURNAL"):
            writer.log_metric("tc-1", "loss", 1.0, 0, journaled=True)
        assert writer._queued == 0 and not writer._pending
    finally:
        writer.close()
