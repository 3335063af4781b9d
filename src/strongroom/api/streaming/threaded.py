"""Response bodies made by blocking iterators (an object decrypted segment by segment), produced in
a worker thread one batch ahead of the bytes being sent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import anyio
import anyio.to_thread

BATCH_BYTES = 4 << 20


async def threaded_body(chunks: Iterator[bytes], batch_bytes: int = BATCH_BYTES) -> AsyncIterator[bytes]:
    """The chunks of ``chunks`` for a ``StreamingResponse``; the iterator advances in a worker thread,
    about ``batch_bytes`` at a time, while the event loop sends the batch before.

    Starlette, given a blocking iterator, hops to a thread and back for every chunk and asks for the
    next one only once the last is sent: decryption and TLS take turns instead of using both cores,
    and on a busy machine every hop waits for a CPU. Here a hop carries a batch, and the next batch
    is being decrypted while this one is written. Errors of the iterator (a segment that fails
    authentication) end the response as before. The thread is waited for, and the iterator closed,
    however the response ends (a client gone mid-stream included).
    """

    def take() -> list[bytes]:
        parts: list[bytes] = []
        size = 0
        for chunk in chunks:
            parts.append(chunk)
            size += len(chunk)
            if size >= batch_bytes:
                break
        return parts

    pending: asyncio.Future[list[bytes]] = asyncio.ensure_future(anyio.to_thread.run_sync(take))
    try:
        while parts := await pending:
            pending = asyncio.ensure_future(anyio.to_thread.run_sync(take))
            for part in parts:
                yield part
    finally:
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(BaseException):  # its error, if any, was raised above or is moot now
                await pending
            close = getattr(chunks, "close", None)
            if close is not None:
                await anyio.to_thread.run_sync(close)
