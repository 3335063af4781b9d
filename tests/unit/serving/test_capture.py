"""Capture records in the model monitor's shape, and the spool that keeps them through a crash."""

from __future__ import annotations

import asyncio
import datetime as dt
import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from strongroom.serving import capture
from strongroom.serving.models import DataCaptureConfig

CONFIG = DataCaptureConfig.model_validate(
    {
        "EnableCapture": True,
        "InitialSamplingPercentage": 100,
        "DestinationS3Uri": "sr://risk-data/secure-sagemaker-demo/monitoring/datacapture",
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
    }
)
WHEN = dt.datetime(2026, 12, 6, 5, 7, 9, 123456, tzinfo=dt.UTC)


def test_a_csv_record_has_exactly_the_workshop_shape() -> None:
    record = capture.capture_record(CONFIG, "text/csv", b"20000,2,2,1,24", "text/csv; charset=utf-8", b"0.123", WHEN)
    event_id = record["eventMetadata"]["eventId"]  # type: ignore[index]
    assert record == {
        "captureData": {
            "endpointInput": {
                "observedContentType": "text/csv",
                "mode": "INPUT",
                "data": "20000,2,2,1,24",
                "encoding": "CSV",
            },
            "endpointOutput": {
                "observedContentType": "text/csv; charset=utf-8",
                "mode": "OUTPUT",
                "data": "0.123",
                "encoding": "CSV",
            },
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": "2026-12-06T05:07:09.123Z"},
        "eventVersion": "0",
    }
    assert len(str(event_id)) == 36


def test_content_types_not_in_the_config_are_base64() -> None:
    record = capture.capture_record(CONFIG, "application/x-npy", b"\x93NUMPY", "application/json", b"[1]", WHEN)
    data = record["captureData"]
    assert data["endpointInput"]["encoding"] == "BASE64"  # type: ignore[index]
    assert data["endpointInput"]["data"] == "k05VTVBZ"  # type: ignore[index]
    assert data["endpointOutput"]["encoding"] == "JSON"  # type: ignore[index]


def test_the_spool_survives_a_crash_and_a_torn_last_frame(tmp_path: Path) -> None:
    key = os.urandom(32)
    spool = capture.CaptureSpool(tmp_path, key, "ep1")
    records = [
        capture.capture_record(CONFIG, "text/csv", f"{i},1".encode(), "text/csv", b"0.5", WHEN) for i in range(50)
    ]
    assert all(spool.append("AllTraffic", r) for r in records)
    assert spool.captured == 50 and spool.dropped == 0
    # kill -9: no seal, no close; and a frame torn in half at the end
    [open_segment] = list(tmp_path.glob("*.open"))
    with open(open_segment, "ab") as handle:
        handle.write(b"\x00\x00\x01\x00garbage")
    assert b"1,1" not in open_segment.read_bytes()  # encrypted on disk
    recovered = capture.CaptureSpool(tmp_path, key, "ep1")
    [segment] = capture.sealed_segments(tmp_path)
    lines = recovered.read(segment)
    assert [json.loads(line) for _, line in lines] == records
    objects = capture.hourly_objects(lines, "secure-sagemaker-demo/monitoring/datacapture", "ep")
    [(name, body)] = objects.items()
    assert name.startswith("secure-sagemaker-demo/monitoring/datacapture/ep/AllTraffic/2026/12/06/05/")
    assert name.endswith(".jsonl") and len(body) == 50
    recovered.close()


def test_a_spool_opened_with_another_key_cannot_read_it(tmp_path: Path) -> None:
    spool = capture.CaptureSpool(tmp_path, os.urandom(32), "ep1")
    spool.append("AllTraffic", capture.capture_record(CONFIG, "text/csv", b"1", "text/csv", b"0.5", WHEN))
    [segment] = spool.seal()
    spool.close()
    other = capture.CaptureSpool(tmp_path / "other", os.urandom(32), "ep1")
    with pytest.raises(InvalidTag):
        other.read(segment)
    other.close()


def test_group_commit_answers_no_request_before_the_synchronous_write_that_covers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen concurrent requests on the event loop: while the disk has not synced, none is
    acknowledged; one synchronous write then covers every record that was waiting, and each
    request wakes."""
    disk = threading.Event()
    syncs: list[int] = []

    def slow_write(fd: int, data: bytes) -> int:
        disk.wait(10)
        written = os.write(fd, data)
        syncs.append(os.fstat(fd).st_size)
        return written

    monkeypatch.setattr(capture, "_durable_write", slow_write)
    spool = capture.CaptureSpool(tmp_path, os.urandom(32), "ep1")
    records = [
        capture.capture_record(CONFIG, "text/csv", f"{i},2,2,1,24".encode(), "text/csv", b"0.5", WHEN)
        for i in range(16)
    ]

    async def invoke_all() -> list[bool]:
        commits = [asyncio.ensure_future(spool.commit("AllTraffic", r)) for r in records]
        await asyncio.sleep(0.3)
        assert not any(c.done() for c in commits)  # nothing acknowledged before the disk synced
        disk.set()
        return list(await asyncio.gather(*commits))

    assert asyncio.run(invoke_all()) == [True] * 16
    assert spool.captured == 16 and spool.dropped == 0
    assert spool.flushes == len(syncs) <= 2  # the first record's flush, then one for the fifteen that queued
    # kill -9 now: the open segment alone holds every acknowledged record
    [segment] = list(tmp_path.glob("*.open"))
    assert [json.loads(line) for _, line in spool.read(segment)] == records


def test_a_failed_group_commit_refuses_every_request_it_held(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_disk(fd: int, data: bytes) -> int:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(capture, "_durable_write", broken_disk)
    spool = capture.CaptureSpool(tmp_path, os.urandom(32), "ep1")
    record = capture.capture_record(CONFIG, "text/csv", b"1,2", "text/csv", b"0.5", WHEN)

    async def invoke_all() -> list[bool]:
        return list(await asyncio.gather(*(spool.commit("AllTraffic", record) for _ in range(4))))

    assert asyncio.run(invoke_all()) == [False] * 4
    assert spool.dropped == 4 and spool.captured == 0


def test_the_spool_segment_is_written_synchronously(tmp_path: Path) -> None:
    """The durability promise rests on O_DSYNC: a write returns once its data is on the disk."""
    spool = capture.CaptureSpool(tmp_path, os.urandom(32), "ep1")
    try:
        assert fcntl.fcntl(spool._segment[1], fcntl.F_GETFL) & os.O_DSYNC == os.O_DSYNC
        spool.seal()  # and every segment after it
        assert fcntl.fcntl(spool._segment[1], fcntl.F_GETFL) & os.O_DSYNC == os.O_DSYNC
    finally:
        spool.close()


def test_one_flush_wakes_its_event_loop_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer settles every request of one event loop that a flush covered with one call
    into that loop (one wake-up per flush, not one per record)."""
    disk = threading.Event()
    real_write = capture._durable_write

    def held_write(fd: int, data: bytes) -> int:
        disk.wait(10)
        return real_write(fd, data)

    monkeypatch.setattr(capture, "_durable_write", held_write)
    spool = capture.CaptureSpool(tmp_path, os.urandom(32), "ep1")
    record = capture.capture_record(CONFIG, "text/csv", b"1,2", "text/csv", b"0.5", WHEN)
    wakes: list[int] = []

    async def invoke_all() -> list[bool]:
        loop = asyncio.get_running_loop()
        threadsafe = loop.call_soon_threadsafe

        def counted(callback: Any, *args: Any, **kwargs: Any) -> Any:
            wakes.append(len(args[0]) if args and isinstance(args[0], list) else 0)
            return threadsafe(callback, *args, **kwargs)

        monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
        commits = [asyncio.ensure_future(spool.commit("AllTraffic", record)) for _ in range(16)]
        await asyncio.sleep(0.2)  # the first flush holds one record, the fifteen others queue behind it
        disk.set()
        return list(await asyncio.gather(*commits))

    try:
        assert asyncio.run(invoke_all()) == [True] * 16
    finally:
        spool.close()
    assert sum(wakes) == 16 and len(wakes) == spool.flushes <= 2


def test_a_short_write_leaves_no_torn_frame_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk that takes part of a batch: the batch is refused and cut off, so the records
    written after it still read back."""
    real_write = capture._durable_write
    calls: list[int] = []

    def full_once(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, data[: len(data) // 2] if len(calls) == 1 else data)

    monkeypatch.setattr(capture, "_durable_write", full_once)
    spool = capture.CaptureSpool(tmp_path, os.urandom(32), "ep1")
    first = capture.capture_record(CONFIG, "text/csv", b"1,2", "text/csv", b"0.5", WHEN)
    second = capture.capture_record(CONFIG, "text/csv", b"3,4", "text/csv", b"0.6", WHEN)
    assert spool.append("AllTraffic", first) is False
    assert spool.append("AllTraffic", second) is True
    [segment] = list(tmp_path.glob("*.open"))
    assert [json.loads(line) for _, line in spool.read(segment)] == [second]
    spool.close()


def test_the_records_of_one_event_loop_turn_reach_the_writer_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sixteen requests committing in the same turn: the writer thread is handed all sixteen at
    once (one wake-up of it) and covers them with one synchronous write."""
    real_write = capture._durable_write
    writes: list[int] = []

    def counted(fd: int, data: bytes) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    monkeypatch.setattr(capture, "_durable_write", counted)
    spool = capture.CaptureSpool(tmp_path, os.urandom(32), "ep1")
    record = capture.capture_record(CONFIG, "text/csv", b"1,2", "text/csv", b"0.5", WHEN)

    async def invoke_all() -> list[bool]:
        return list(await asyncio.gather(*(spool.commit("AllTraffic", record) for _ in range(16))))

    try:
        assert asyncio.run(invoke_all()) == [True] * 16
    finally:
        spool.close()
    assert len(writes) == 1 and spool.flushes == 1 and spool.captured == 16
