"""HTTP/1.1 to a notebook's Jupyter over its Unix socket: h11 on asyncio streams, keep-alive pooled.

The proxy's hot path. A general-purpose async client (httpx) costs about a millisecond more per
request than the framing itself; this does only what the proxy needs: send one request (body
streamed), hand back status, headers and a streamed body, and reuse the connection afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import h11

_READ = 64 * 1024


class UpstreamError(Exception):
    """Jupyter closed the connection or answered something that is not HTTP/1.1."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    reused: bool = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    async def next_event(self) -> object:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await self.reader.read(_READ)
            self.h11.receive_data(data)
            if not data and self.h11.their_state is not h11.DONE:
                raise UpstreamError("the notebook server closed the connection")


class UpstreamResponse:
    """Status, headers, and a body to stream exactly once (then ``aclose``)."""

    def __init__(self, pool: UpstreamPool, connection: _Connection, response: h11.Response) -> None:
        self.status_code = response.status_code
        self.headers: list[tuple[bytes, bytes]] = [(bytes(k), bytes(v)) for k, v in response.headers]
        self._pool, self._connection, self._done = pool, connection, False

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._connection.next_event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._done = True
                return
            elif isinstance(event, h11.ConnectionClosed):
                raise UpstreamError("the notebook server closed the connection mid-response")

    async def aclose(self) -> None:
        """Return the connection to the pool if the exchange completed cleanly, else close it."""
        connection = self._connection
        if self._done and connection.h11.our_state is h11.DONE and connection.h11.their_state is h11.DONE:
            connection.h11.start_next_cycle()
            self._pool.release(connection)
        else:
            connection.close()


class UpstreamPool:
    """Keep-alive connections to one Unix socket path."""

    def __init__(self, path: str, size: int = 8) -> None:
        self.path = path
        self.size = size
        self._idle: list[_Connection] = []

    async def _connection(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.reader.at_eof():
                connection.reused = True
                return connection
            connection.close()
        reader, writer = await asyncio.open_unix_connection(self.path, limit=_READ)
        return _Connection(reader, writer)

    def release(self, connection: _Connection) -> None:
        if len(self._idle) < self.size:
            self._idle.append(connection)
        else:
            connection.close()

    async def request(
        self, method: str, target: str, headers: list[tuple[str, str]], body: AsyncIterator[bytes] | None
    ) -> UpstreamResponse:
        """Send a request; a reused connection the server had closed is retried once (bodiless requests)."""
        for attempt in (0, 1):
            connection = await self._connection()
            try:
                return await self._exchange(connection, method, target, headers, body)
            except (UpstreamError, ConnectionError, h11.RemoteProtocolError) as exc:
                connection.close()
                if attempt == 0 and connection.reused and body is None:
                    continue
                raise UpstreamError(str(exc) or type(exc).__name__) from exc
        raise AssertionError("unreachable")

    async def _exchange(
        self,
        connection: _Connection,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: AsyncIterator[bytes] | None,
    ) -> UpstreamResponse:
        names = {k.lower() for k, _ in headers}
        framed = list(headers)
        if body is not None and "content-length" not in names:
            framed.append(("transfer-encoding", "chunked"))
        connection.writer.write(connection.h11.send(h11.Request(method=method, target=target, headers=framed)))
        if body is not None:
            async for chunk in body:
                if chunk:
                    connection.writer.write(connection.h11.send(h11.Data(data=chunk)))
                    await connection.writer.drain()
        connection.writer.write(connection.h11.send(h11.EndOfMessage()))
        await connection.writer.drain()
        while True:
            event = await connection.next_event()
            if isinstance(event, h11.Response):
                return UpstreamResponse(self, connection, event)
            if isinstance(event, h11.ConnectionClosed):
                raise UpstreamError("the notebook server closed the connection")
            # InformationalResponse (100 Continue): keep reading

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()
