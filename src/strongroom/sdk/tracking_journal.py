"""The local write-ahead journal of ``durability="journaled"`` Trackers, and its replay.

A journaled write returns once it is appended to a file of the journal directory (one
``os.write``, no fsync: what SQLite in WAL mode with ``synchronous=NORMAL`` guarantees). A
``kill -9`` of the process loses nothing that returned; a power loss or an operating-system
crash of the client machine may lose the last writes.

The directory is ``$STRONGROOM_TRACKING_JOURNAL``, else ``~/.strongroom/journal`` (made 0700;
one owned by someone else, or writable by group or others, is refused). Each writer keeps one
file (a *segment*; a new one when it grows past ``SEGMENT_BYTES``) of JSON lines, 0600, and
holds an exclusive ``flock`` on it while it lives:

- line 1, the header: ``{"journal": 1, "platform", "team", "principal", "pid", "created", "id", "segment"}``;
- a write: ``{"seq", "op": "metric"|"create"|"update", "c": component, ...}``, appended before the call returns;
- ``{"send": key, "upto": seq, "body": ...}`` before a batch is sent: the exact body and its idempotency key;
- ``{"ack": seq}`` once the platform committed (or refused) the batch up to ``seq``.

A file whose lock can be taken belongs to a writer that is gone: ``replay_journals`` resends its
unacknowledged batch with the same key and body (the platform's idempotency records answer it
without a second write if it had been committed), then sends the writes after it, rebuilt from
their lines, in chunks whose keys are derived from the file (so a replay that crashes and is
replayed again is not applied twice either), then deletes the file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import stat
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strongroom.core.errors import InvalidInput, StrongroomError
from strongroom.sdk import tracking_batch

if TYPE_CHECKING:
    from strongroom.sdk.session import Session

log = logging.getLogger("strongroom.tracking")

JOURNAL_ENV = "STRONGROOM_TRACKING_JOURNAL"
FORMAT = 1
SEGMENT_BYTES = 4 * 1024 * 1024
REPLAY_CHUNK = 5000  # journaled writes per replayed batch
SUFFIX = ".journal"


class JournalCorrupt(InvalidInput):
    """A journal line other than the last is not a record: the file is left for a person to read."""


def journal_folder(folder: str | os.PathLike[str] | None = None) -> Path:
    """``folder``, else ``$STRONGROOM_TRACKING_JOURNAL``, else ``~/.strongroom/journal``: made
    0700 if missing; refused (``InvalidInput``) if not a directory of this user that only it can write."""
    chosen = folder or os.environ.get(JOURNAL_ENV) or Path.home() / ".strongroom" / "journal"
    path = Path(chosen).expanduser().resolve()
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
    except OSError as exc:
        raise InvalidInput(f"tracking journal {path}: {exc.strerror} (set {JOURNAL_ENV})", field=JOURNAL_ENV) from exc
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidInput(f"tracking journal {path} is not a directory (set {JOURNAL_ENV})", field=JOURNAL_ENV)
    if info.st_uid != os.getuid():
        raise InvalidInput(
            f"tracking journal {path} is owned by uid {info.st_uid}, not you; use a directory of your own "
            f"({JOURNAL_ENV})",
            field=JOURNAL_ENV,
        )
    if info.st_mode & 0o022:
        raise InvalidInput(
            f"tracking journal {path} is writable by {'group' if info.st_mode & 0o020 else 'others'} "
            f"(mode {stat.S_IMODE(info.st_mode):o}); `chmod 700 {path}` or set {JOURNAL_ENV}",
            field=JOURNAL_ENV,
        )
    return path


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass
class _Segment:
    fd: int
    path: Path
    size: int


class Journal:
    """One writer's journal: its segments, appended to under the writer's lock."""

    def __init__(self, folder: Path, platform: str, team: str, principal: str) -> None:
        self.folder = folder
        self.id = uuid.uuid4().hex
        self._header = {"journal": FORMAT, "platform": platform, "team": team, "principal": principal}
        self._segments = 0
        self._mutex = threading.Lock()  # the sender's records and the callers' writes share a file
        self.current = self._new_segment()
        self.retiring: _Segment | None = None  # holds the batch in flight after a rotation

    def _new_segment(self) -> _Segment:
        self._segments += 1
        name = f"{time.time_ns() // 1_000_000:013d}-{os.getpid()}-{self.id[:12]}-{self._segments:04d}{SUFFIX}"
        final, hidden = self.folder / name, self.folder / f".{name}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(hidden, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # locked before anyone can see it under its name
            header = _line(
                {**self._header, "pid": os.getpid(), "created": time.time(), "id": self.id, "segment": self._segments}
            )
            _write_all(fd, header)
            os.rename(hidden, final)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                hidden.unlink()
            raise
        return _Segment(fd, final, len(header))

    def _append(self, segment: _Segment, record: dict[str, Any]) -> None:
        data = _line(record)
        with self._mutex:
            _write_all(segment.fd, data)
            segment.size += len(data)

    def write(self, record: dict[str, Any]) -> None:
        """Append one write (called under the writer's lock, in sequence order)."""
        self._append(self.current, record)

    def rotate_if_large(self) -> None:
        """Called under the writer's lock as a batch is taken: if the file is large, the batch's
        writes stay in it (with the batch's send record, then deleted at its ack) and later
        writes go to a new segment. Nothing is copied, so no write is ever in two files."""
        if self.current.size > SEGMENT_BYTES and self.retiring is None:
            fresh = self._new_segment()
            with self._mutex:
                self.retiring, self.current = self.current, fresh

    def send(self, key: str, upto: int, body: dict[str, Any]) -> None:
        """Record the batch about to be sent (its key and exact body)."""
        self._append(self.retiring or self.current, {"send": key, "upto": upto, "body": body})

    def ack(self, upto: int) -> None:
        """The batch up to ``upto`` is settled (committed, or refused by the platform)."""
        retiring, self.retiring = self.retiring, None
        if retiring is not None:
            _drop(retiring)
        else:
            self._append(self.current, {"ack": upto})

    def close(self, *, delete: bool) -> None:
        """Release the files: deleted when everything was acknowledged, else left for a replay."""
        for segment in (self.retiring, self.current):
            if segment is None:
                continue
            if delete:
                _drop(segment)
            else:
                os.close(segment.fd)
        self.retiring = None


def _drop(segment: _Segment) -> None:
    with contextlib.suppress(FileNotFoundError):
        segment.path.unlink()
    os.close(segment.fd)  # unlinked first: a replayer that was waiting for the lock finds no file


# -- reading and replaying ---------------------------------------------------------------------


@dataclass
class Contents:
    """What a journal file still owes the platform."""

    header: dict[str, Any]
    resend: tuple[str, dict[str, Any]] | None  # the unacknowledged batch: key, body
    writes: list[dict[str, Any]]  # journaled writes after the last batch, in sequence order
    torn: bool = False  # the last line was cut short (a crash mid-append): ignored


def read_journal(path: Path, data: bytes | None = None) -> Contents:
    """Parse a journal file. A torn last line is ignored with a warning; any other line that is
    not a record raises ``JournalCorrupt`` naming the file and the line."""
    raw = path.read_bytes() if data is None else data
    lines = raw.split(b"\n")
    torn = False
    if lines and lines[-1] != b"":  # no newline at the end: the last append was cut short
        torn = True
        lines = lines[:-1]
    else:
        lines = lines[:-1]
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            if number == len(lines) and not torn:
                torn = True  # a complete-looking but unreadable last line: also a cut-short append
                break
            raise JournalCorrupt(f"tracking journal {path}, line {number}: not a journal record ({exc})") from None
        records.append(record)
    if torn:
        log.warning("tracking journal %s: its last line was cut short (a crash while appending); ignored", path)
    if not records or records[0].get("journal") != FORMAT:
        if not records and torn:
            return Contents({}, None, [], torn=True)
        raise JournalCorrupt(f"tracking journal {path}, line 1: not a journal header")
    header, body = records[0], records[1:]
    acked = max((r["ack"] for r in body if "ack" in r), default=0)
    sends = [r for r in body if "send" in r]
    last = max(sends, key=lambda r: int(r["upto"]), default=None)
    cutoff = int(last["upto"]) if last else 0
    resend = (str(last["send"]), last["body"]) if last is not None and int(last["upto"]) > acked else None
    writes = sorted((r for r in body if "op" in r and int(r["seq"]) > cutoff), key=lambda r: int(r["seq"]))
    return Contents(header, resend, writes, torn)


@dataclass
class ReplayedFile:
    """What the replay of one journal file sent."""

    path: str
    resent_points: int = 0  # metric points in the unacknowledged batch sent again
    writes: int = 0  # journaled writes rebuilt and sent
    points: int = 0  # metric points among them
    batches: int = 0
    refused: list[str] = field(default_factory=list)
    error: str = ""  # replay stopped (platform unreachable, corrupt file): the file stays

    @property
    def done(self) -> bool:
        return not self.error


@dataclass
class ReplaySummary:
    """What ``replay_journals`` did, file by file, and what it left alone."""

    folder: str
    files: list[ReplayedFile] = field(default_factory=list)
    other: int = 0  # journals of another platform, team or user: left alone
    locked: int = 0  # journals whose writer still runs

    @property
    def points(self) -> int:
        return sum(f.resent_points + f.points for f in self.files)


def platform_of(session: Session) -> str:
    """How a journal names the platform it writes to."""
    return (session.url or "").rstrip("/") or f"unix:{session.socket}"


def _claim(path: Path) -> int | None:
    """An fd of ``path`` holding its lock, or None if its writer still holds it (or it is gone)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    try:
        same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False  # its writer closed cleanly and deleted it while we waited
    info = os.fstat(fd)
    if not same or info.st_uid != os.getuid() or info.st_mode & 0o022:
        os.close(fd)
        return None
    return fd


def _header(path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            first = handle.readline()
        header = json.loads(first)
    except (OSError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def replay_journals(session: Session, team: str, principal: str, folder: Path | None = None) -> ReplaySummary:
    """Send what the gone writers of ``folder`` journaled for this platform, team and principal.

    Journals of another platform, team or principal are left alone (the platform keeps
    idempotency keys per user, so only their author's resend is answered without a second
    write), and so are those whose writer still holds its lock. A batch the platform refuses is
    reported in the summary (and logged), never silently dropped; a file is deleted once all it
    owed was sent or refused, kept if the platform could not be reached.
    """
    folder = journal_folder(folder)
    summary = ReplaySummary(str(folder))
    platform = platform_of(session)
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        header = _header(path)
        if header is None:
            continue
        if (header.get("platform"), header.get("team"), header.get("principal")) != (platform, team, principal):
            summary.other += 1
            continue
        fd = _claim(path)
        if fd is None:
            summary.locked += 1
            continue
        try:
            summary.files.append(_replay_file(session, team, path, fd))
        finally:
            os.close(fd)
    return summary


def _replay_file(session: Session, team: str, path: Path, fd: int) -> ReplayedFile:
    done = ReplayedFile(str(path))
    route = f"/api/v1/teams/{team}/trial-component-batches"

    def send(key: str, body: dict[str, Any], what: str) -> bool | None:
        """True if committed, False if refused (reported), None if the platform could not be reached."""
        try:
            session.request("POST", route, json_body=body, idempotency_key=key)
        except StrongroomError as exc:
            if exc.status >= 500 or exc.slug == "platform-unreachable":
                done.error = f"{exc.detail}; the journal is kept for the next replay"
                return None
            done.refused.append(f"{what}: {exc.detail}")
            log.error("tracking journal %s: the platform refused %s: %s", path, what, exc.detail)
            return False
        done.batches += 1
        return True

    try:
        with os.fdopen(os.dup(fd), "rb") as handle:
            contents = read_journal(path, handle.read())
    except JournalCorrupt as exc:
        done.error = exc.detail
        log.error("%s; the file is left in place", exc.detail)
        return done
    if contents.resend is not None:
        key, body = contents.resend
        points = tracking_batch.points_of(body)
        sent = send(key, body, f"the batch in flight ({points} points)")
        if sent is None:
            return done
        done.resent_points = points if sent else 0
    ident, segment = contents.header.get("id", "x"), contents.header.get("segment", 0)
    for start in range(0, len(contents.writes), REPLAY_CHUNK):
        chunk = contents.writes[start : start + REPLAY_CHUNK]
        queue: dict[str, tracking_batch.Pending] = {}
        for record in chunk:
            tracking_batch.apply(queue, record)
        body = tracking_batch.batch_body(queue)
        first, last = chunk[0]["seq"], chunk[-1]["seq"]
        # a key derived from the file: a replay that dies here and is run again is answered, not applied twice
        sent = send(f"journal-{ident}-{segment}-{first}-{last}", body, f"writes {first}-{last} ({len(chunk)})")
        if sent is None:
            return done
        if sent:
            done.writes += len(chunk)
            done.points += tracking_batch.points_of(body)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return done
