"""Data capture: the record shape, and a write-ahead spool that loses no acknowledged request.

An invocation is answered 2xx only after its capture record is in the spool and durable. Group
commit: concurrent requests seal their records (on their event loop) and queue them; one writer
thread takes every record waiting and writes them with one synchronous ``write`` (the segment is
opened ``O_DSYNC``: the call returns once the data is on the disk, as ``write`` + ``fdatasync``
would), then wakes the requests that flush covered: an asyncio future each, all of one event loop
settled by one call (one wake-up per flush), so no thread is held per request. While it writes,
the next requests queue up for the next flush: the busier the endpoint, the more records one
synchronous write covers.
Spool records are AES-256-GCM encrypted under the endpoint's data key (wrapped by the team key),
so nothing captured is plaintext on disk. A spool segment is sealed, uploaded as hourly
``.jsonl`` objects through the storage service (encrypted under the team key again), and only then
removed; segments left by a crash (``kill -9`` of the platform) are uploaded when it starts again.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import logging
import os
import queue
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from strongroom.serving.models import DataCaptureConfig

log = logging.getLogger(__name__)
_FRAME = struct.Struct(">I")
_MAX_RECORD = 16 * 1024 * 1024


def _encoding(content_type: str, config: DataCaptureConfig) -> str:
    base = content_type.split(";", 1)[0].strip().lower()
    header = config.capture_content_type_header
    if base in (t.lower() for t in header.csv_content_types):
        return "CSV"
    if base in (t.lower() for t in header.json_content_types):
        return "JSON"
    return "BASE64"


def _part(mode: str, content_type: str, data: bytes, config: DataCaptureConfig) -> dict[str, str]:
    encoding = _encoding(content_type, config)
    text = base64.b64encode(data).decode() if encoding == "BASE64" else data.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def capture_record(
    config: DataCaptureConfig, request_type: str, request: bytes, response_type: str, response: bytes, when: dt.datetime
) -> dict[str, object]:
    """One capture line, in the managed model monitor's shape."""
    data: dict[str, object] = {}
    if "Input" in config.modes:
        data["endpointInput"] = _part("INPUT", request_type, request, config)
    if "Output" in config.modes:
        data["endpointOutput"] = _part("OUTPUT", response_type, response, config)
    return {
        "captureData": data,
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceTime": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        },
        "eventVersion": "0",
    }


def error_record(
    config: DataCaptureConfig, request_type: str, request: bytes, problem: dict[str, object], when: dt.datetime
) -> dict[str, object]:
    """The capture line of a refused request: the input as received (when Input is captured), no
    ``endpointOutput`` (nothing was predicted), and ``eventMetadata.outcome == "error"`` with the
    problem the client got. A reader of the capture skips these with :func:`is_error`."""
    data: dict[str, object] = {}
    if "Input" in config.modes:
        data["endpointInput"] = _part("INPUT", request_type or "application/octet-stream", request, config)
    error = {k: problem[k] for k in ("status", "title", "detail", "field", "row", "column") if k in problem}
    return {
        "captureData": data,
        "eventMetadata": {
            "eventId": str(uuid.uuid4()),
            "inferenceTime": when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "outcome": "error",
            "error": error,
        },
        "eventVersion": "0",
    }


def is_error(record: dict[str, object]) -> bool:
    """True for the record of a refused request (it holds no prediction)."""
    metadata = record.get("eventMetadata")
    return isinstance(metadata, dict) and metadata.get("outcome") == "error"


def served_csv(records: list[dict[str, object]]) -> bytes:
    """The CSV inputs of the served requests, as a headerless window for the model monitor
    (``strongroom.monitor.sources``): refused requests and non-CSV inputs are skipped."""
    rows = []
    for record in records:
        data = record.get("captureData")
        part = data.get("endpointInput") if isinstance(data, dict) else None
        if is_error(record) or not isinstance(part, dict) or part.get("encoding") != "CSV":
            continue
        rows.append(str(part["data"]).strip("\n"))
    return ("\n".join(rows) + "\n").encode() if rows else b""


def oldest_pending(directory: Path) -> float | None:
    """When the oldest segment that holds records not yet uploaded was opened (epoch seconds)."""
    segments = [p for p in directory.glob("*.open") if p.stat().st_size] + sealed_segments(directory)
    if not segments:
        return None
    stamp = min(p.name.split("-", 1)[0] for p in segments)
    return dt.datetime.strptime(stamp, "%Y%m%d%H%M%S%f").replace(tzinfo=dt.UTC).timestamp()


def _durable_write(fd: int, data: bytes) -> int:
    """Write to a segment opened ``O_DSYNC``: durable once it returns (the tests slow it down)."""
    return os.write(fd, data)


@dataclass
class _Pending:
    frame: bytes  # sealed by the caller (length, nonce, ciphertext): the writer only writes
    # Called by the writer thread: True once the record is durable. An awaiting request leaves
    # None here and its future instead: the writer wakes every future of one event loop with one
    # call (one wake-up of that loop per flush, not one per record).
    flushed: Callable[[bool], None] | None
    future: asyncio.Future[bool] | None = None


def _settle(futures: list[asyncio.Future[bool]], ok: bool) -> None:
    """On the futures' event loop: settle each request a flush covered."""
    for future in futures:
        if not future.done():  # else it timed out: the request was refused already
            future.set_result(ok)


def _wake(batch: list[_Pending], ok: bool) -> None:
    """Tell each request of ``batch`` its flush's outcome: one call per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[bool]]] = {}
    for item in batch:
        if item.future is not None:
            by_loop.setdefault(item.future.get_loop(), []).append(item.future)
        elif item.flushed is not None:
            item.flushed(ok)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed (shutdown): nobody waits any more
            loop.call_soon_threadsafe(_settle, futures, ok)


class CaptureSpool:
    """An encrypted, group-committed write-ahead log of capture records for one endpoint.

    Frame: 4-byte length, 12-byte nonce, AES-GCM(variant NUL jsonline) with the endpoint id as AAD.
    """

    def __init__(self, directory: Path, key: bytes, endpoint_id: str, *, commit_timeout: float = 5.0) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._aead = AESGCM(key)
        self._aad = endpoint_id.encode()
        self.commit_timeout = commit_timeout
        # Items are lists: the records of one event-loop turn go to the writer together (one
        # wake-up of the writer thread per turn, not one per record).
        self._queue: queue.SimpleQueue[list[_Pending] | None] = queue.SimpleQueue()
        self._gathering: dict[asyncio.AbstractEventLoop, list[_Pending]] = {}
        self._lock = threading.Lock()  # guards the current segment against sealing mid-write
        for leftover in self.directory.glob("*.open"):  # a crash (kill -9) left it: recover it
            leftover.rename(leftover.with_suffix(".sealed"))
        self._segment = self._open_segment()
        self.captured = 0
        self.flushes = 0  # group commits: one synchronous write each
        self.dropped = 0
        self.uploaded_objects = 0
        self._thread = threading.Thread(target=self._run, name=f"capture-{endpoint_id[:8]}", daemon=True)
        self._thread.start()

    def _open_segment(self) -> tuple[Path, int]:
        path = self.directory / f"{dt.datetime.now(dt.UTC).strftime('%Y%m%d%H%M%S%f')}-{uuid.uuid4().hex[:8]}.open"
        # O_DSYNC: each write returns once its data (and the size that reaches it) is on the disk,
        # as write + fdatasync would, in one system call (the writer thread waits once, not twice).
        return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_DSYNC, 0o600)

    def _frame(self, variant: str, record: dict[str, object]) -> bytes:
        """One spool frame: sealed by the caller (an event loop's turn), so the writer thread
        holds the interpreter lock as little as it can."""
        line = json.dumps(record, separators=(",", ":")).encode()
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, variant.encode() + b"\0" + line, self._aad)
        return _FRAME.pack(len(sealed) + 12) + nonce + sealed

    def _drop(self) -> bool:
        with self._lock:
            self.dropped += 1
        return False

    async def commit(self, variant: str, record: dict[str, object]) -> bool:
        """Write ``record`` durably; True once the flush that covers it is durable (then, and only
        then, the request may be acknowledged). False (counted as dropped) if it could not be."""
        loop = asyncio.get_running_loop()
        flushed: asyncio.Future[bool] = loop.create_future()
        gathering = self._gathering.get(loop)
        if gathering is None:  # the turn's first record: hand the turn's records over at its end
            gathering = self._gathering[loop] = []
            loop.call_soon(self._hand_over, loop)
        gathering.append(_Pending(self._frame(variant, record), None, flushed))
        # A timer rather than wait_for: no extra future and callbacks per request.
        timer = loop.call_later(self.commit_timeout, _settle, [flushed], False)
        try:
            ok = await flushed
        finally:
            timer.cancel()
        return ok or self._drop()

    def append(self, variant: str, record: dict[str, object]) -> bool:
        """:meth:`commit` for a caller outside an event loop (blocks until the flush)."""
        done, outcome = threading.Event(), [False]

        def wake(ok: bool) -> None:
            outcome[0] = ok
            done.set()

        self._queue.put([_Pending(self._frame(variant, record), wake)])
        return (done.wait(self.commit_timeout) and outcome[0]) or self._drop()

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        self._queue.put(self._gathering.pop(loop))

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = list(first)
            while len(batch) < 1000:
                try:
                    items = self._queue.get_nowait()
                except queue.Empty:
                    break
                if items is None:
                    self._queue.put(None)
                    break
                batch.extend(items)
            ok = True
            try:
                with self._lock:
                    data = b"".join(item.frame for item in batch)
                    written = _durable_write(self._segment[1], data)
                    if written != len(data):  # a full disk: cut the torn frames, refuse the batch
                        os.ftruncate(self._segment[1], os.fstat(self._segment[1]).st_size - written)
                        raise OSError(f"wrote {written} of {len(data)} bytes")
                    self.captured += len(batch)
                    self.flushes += 1
            except OSError:
                log.exception("capture spool: a write failed; %d records are refused", len(batch))
                ok = False
            _wake(batch, ok)

    def seal(self) -> list[Path]:
        """Close the current segment and start a new one; every sealed segment, oldest first."""
        with self._lock:
            path, fd = self._segment
            os.close(fd)
            if path.stat().st_size:
                path.rename(path.with_suffix(".sealed"))
            else:
                path.unlink()
            self._segment = self._open_segment()
        return sealed_segments(self.directory)

    def read(self, segment: Path) -> list[tuple[str, bytes]]:
        """The (variant, json line) records of a segment; a torn last frame (a crash mid-write) ends it."""
        data = segment.read_bytes()
        out: list[tuple[str, bytes]] = []
        offset = 0
        while offset + _FRAME.size <= len(data):
            (size,) = _FRAME.unpack_from(data, offset)
            end = offset + _FRAME.size + size
            if size > _MAX_RECORD or end > len(data):
                break
            frame = data[offset + _FRAME.size : end]
            plain = self._aead.decrypt(frame[:12], frame[12:], self._aad)
            variant, _, line = plain.partition(b"\0")
            out.append((variant.decode(), line))
            offset = end
        return out

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)
        with self._lock:
            os.close(self._segment[1])
            path = self._segment[0]
            if path.stat().st_size:
                path.rename(path.with_suffix(".sealed"))
            else:
                path.unlink()


def sealed_segments(directory: Path) -> list[Path]:
    """Sealed segments, oldest first (the ``.open`` one is still being written)."""
    return sorted(directory.glob("*.sealed"))


_WHEN = b'"inferenceTime":"'


def _hour(line: bytes) -> str:
    """``yyyy/mm/dd/hh`` of a record's inference time. The spool holds only lines this module
    wrote, where the key's quotes are unescaped (in the captured data they would be ``\\"``), so
    a search finds it without parsing the record (an upload reads thousands a second)."""
    at = line.rfind(_WHEN) + len(_WHEN)
    when = line[at : at + 13].decode()  # yyyy-mm-ddThh
    if at < len(_WHEN) or len(when) != 13 or when[4] != "-" or when[7] != "-" or when[10] != "T":
        when = json.loads(line)["eventMetadata"]["inferenceTime"][:13]
    return f"{when[:4]}/{when[5:7]}/{when[8:10]}/{when[11:13]}"


def hourly_objects(records: list[tuple[str, bytes]], prefix: str, endpoint: str) -> dict[str, list[bytes]]:
    """Group records into ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<name>.jsonl`` keys."""
    objects: dict[str, list[bytes]] = {}
    name = f"{dt.datetime.now(dt.UTC).strftime('%M-%S-%f')[:-3]}-{uuid.uuid4().hex}.jsonl"
    for variant, line in records:
        hour = _hour(line)
        key = "/".join(p for p in (prefix.strip("/"), endpoint, variant, hour, name) if p)
        objects.setdefault(key, []).append(line)
    return objects


Uploader = Callable[[str, bytes], None]
