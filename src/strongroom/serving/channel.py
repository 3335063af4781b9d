"""Persistent, pipelined connections to a Unix socket that speaks ``wire`` frames: an endpoint
worker, or (``up --workers N``) the process that owns the workers.

A :class:`Channel` keeps one connection per event loop that uses it (the API's loop, and the
relay's loop in the process that owns the workers). Requests from every concurrent invocation go
out on that one connection as they come; answers come back in the same order and each wakes the
request that waits for it. A request that times out leaves its slot in the queue, so the answer
that arrives later is read and dropped, and the order holds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from strongroom.serving.inside import wire

log = logging.getLogger(__name__)


class ChannelClosed(Exception):
    """The peer is gone (a worker killed, a process restarted): the request was not answered."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.waiting: collections.deque[asyncio.Future[tuple[int, bytes, bytes]]] = collections.deque()
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._out: list[bytes] = []  # frames written in this turn of the event loop
        self.task = self._loop.create_task(self._read())

    def send(self, frame: bytes) -> None:
        """Queue ``frame``; every frame queued in one turn of the event loop leaves in one write
        (one system call here, one wake-up of the peer for all of them)."""
        if not self._out:
            self._loop.call_soon(self.flush)
        self._out.append(frame)

    def flush(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if self.closed:
            return  # close() failed their waiters already
        try:
            self.writer.write(data)
        except (OSError, RuntimeError) as exc:  # the transport broke while writing
            self.close(exc)

    async def _read(self) -> None:
        try:
            while True:
                frame = await wire.read_frame_async(self.reader)
                if not self.waiting:
                    raise wire.FrameError("an answer nobody asked for")
                waiter = self.waiting.popleft()
                if not waiter.done():  # else it timed out: its late answer is dropped
                    waiter.set_result(frame)
        except (OSError, EOFError, asyncio.IncompleteReadError, wire.FrameError) as exc:
            self.close(exc)

    def close(self, cause: BaseException | None = None) -> None:
        self.closed = True
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(ChannelClosed(f"the connection closed: {cause!r}"))
        self.writer.close()


def _expire(waiter: asyncio.Future[tuple[int, bytes, bytes]]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("the peer did not answer in time"))


class Channel:
    """Requests to the Unix socket at ``path`` (for a worker: ``/proc/self/fd/N`` of a checked socket)."""

    def __init__(self, path: str, *, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._connections: dict[asyncio.AbstractEventLoop, asyncio.Task[_Connection]] = {}

    async def _connect(self) -> _Connection:
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=1024 * 1024)
        except OSError as exc:
            raise ChannelClosed(f"cannot connect: {exc}") from exc
        return _Connection(reader, writer)

    async def _connection(self) -> _Connection:
        loop = asyncio.get_running_loop()
        opening = self._connections.get(loop)
        if (
            opening is not None
            and opening.done()
            and (opening.cancelled() or opening.exception() is not None or opening.result().closed)
        ):
            opening = None
        if opening is None:
            opening = self._connections[loop] = loop.create_task(self._connect())
        try:
            return await asyncio.shield(opening)
        except ChannelClosed:
            self._connections.pop(loop, None)
            raise
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not opening.cancelled() or (task is not None and task.cancelling()):
                raise  # this request itself was cancelled
            # close() (a worker killed and replaced) cancelled the connection being opened: the
            # request was not sent, and the caller tries the variant's next worker.
            if self._connections.get(loop) is opening:
                del self._connections[loop]
            raise ChannelClosed("the channel was closed while it connected") from None

    async def request(self, meta: bytes, body: bytes, timeout: float | None = None) -> tuple[int, bytes, bytes]:
        """Send one frame and wait for its answer: (status, meta, body).

        Raises ``ChannelClosed`` if the peer went away before answering, ``TimeoutError`` after
        ``timeout`` (default: the channel's) seconds.
        """
        connection = await self._connection()
        if connection.closed:  # it closed while this request waited for it to open
            raise ChannelClosed("the connection closed before the request was sent")
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[int, bytes, bytes]] = loop.create_future()
        connection.waiting.append(waiter)
        connection.send(wire.pack(0, meta, body))
        if len(body) > 65536:
            connection.flush()
            try:
                await connection.writer.drain()
            except (OSError, RuntimeError) as exc:  # the transport broke while writing
                waiter.cancel()
                connection.close(exc)
                raise ChannelClosed(f"the connection broke: {exc!r}") from exc
        # A timeout (TimeoutError) leaves the connection to the other requests on it. A timer
        # rather than wait_for: no extra future and callbacks per request.
        timer = loop.call_later(self.timeout if timeout is None else timeout, _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()

    def close(self) -> None:
        """Close every connection (from any thread; each on its own loop)."""
        connections, self._connections = self._connections, {}
        for loop, opening in connections.items():
            if loop.is_closed():
                continue

            def shut(opening: asyncio.Task[_Connection] = opening) -> None:
                if opening.done() and not opening.cancelled() and opening.exception() is None:
                    opening.result().close()
                else:
                    opening.cancel()

            with contextlib.suppress(RuntimeError):  # the loop stopped meanwhile
                loop.call_soon_threadsafe(shut)
