"""threaded_body: a blocking iterator (an object decrypted segment by segment) served in batches
from a worker thread; every byte in order, errors surface, the iterator is closed however it ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from strongroom.api.streaming.threaded import threaded_body
from strongroom.core.errors import IntegrityError

MIB = 1 << 20


class Segments:
    """Plaintext segments as the storage service yields them, noting the threads and the close."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.closed = threading.Event()
        self.threads: set[str] = set()

    def __iter__(self) -> Iterator[bytes]:
        try:
            for i in range(self.count):
                self.threads.add(threading.current_thread().name)
                if i == self.fail_at:
                    raise IntegrityError(f"ciphertext segment {i} failed authentication")
                yield bytes([i % 256]) * MIB
        finally:
            self.closed.set()


async def _collect(segments: Segments, stop_after: int | None = None, batch: int = 3 * MIB) -> list[bytes]:
    got: list[bytes] = []
    body = threaded_body(iter(segments), batch)
    try:
        async for part in body:
            got.append(part)
            if stop_after is not None and len(got) == stop_after:
                break
    finally:
        await body.aclose()
    return got


def test_every_segment_in_order_decrypted_off_the_event_loop() -> None:
    segments = Segments(10)
    got = asyncio.run(_collect(segments))
    assert got == [bytes([i]) * MIB for i in range(10)]
    assert threading.main_thread().name not in segments.threads
    assert segments.closed.is_set()


def test_a_segment_failing_authentication_ends_the_body_after_the_good_ones() -> None:
    segments = Segments(10, fail_at=7)
    sent: list[bytes] = []

    async def run() -> None:
        async for part in threaded_body(iter(segments), 2 * MIB):
            sent.append(part)

    with pytest.raises(IntegrityError, match="segment 7"):
        asyncio.run(run())
    assert sent == [bytes([i]) * MIB for i in range(6)]  # the batch holding segment 7 never went out
    assert segments.closed.is_set()


def test_a_client_gone_mid_stream_closes_the_object() -> None:
    segments = Segments(100)
    got = asyncio.run(_collect(segments, stop_after=2))
    assert len(got) == 2
    assert segments.closed.is_set()  # the blob reader is released, not left to the garbage collector
