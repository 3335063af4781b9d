"""The limited httptools protocol without a server: what a read that carries more than one request
does to the limits (the integration tests in ``tests/integration/test_http_limits.py`` send one
request a connection)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import uvicorn
from uvicorn.server import ServerState

from strongroom.api.http_limits import HttpLimits, LimitedHttpProtocol, protocol_for

LIMITS = HttpLimits(max_header_bytes=4096, max_header_count=10, header_timeout=5, body_idle_timeout=5)


class _Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closing = False
        self.aborted = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = self.aborted = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1), "sockname": ("127.0.0.1", 2)}.get(name, default)

    def get_protocol(self) -> Any:
        return self.protocol

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _connected() -> tuple[LimitedHttpProtocol, _Transport]:
    config = uvicorn.Config(_app, http=protocol_for(LIMITS), lifespan="off", log_level="critical")
    config.load()
    protocol = cast(
        LimitedHttpProtocol,
        config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={}, _loop=asyncio.get_running_loop()
        ),
    )
    transport = _Transport()
    transport.protocol = protocol
    protocol.connection_made(cast(asyncio.Transport, transport))
    return protocol, transport


def _head(headers: int) -> bytes:
    return b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(headers - 1)) + b"\r\n"


def test_a_pipelined_request_in_the_same_read_still_has_its_header_count_checked() -> None:
    async def run() -> None:
        protocol, transport = _connected()
        protocol.data_received(_head(1) + _head(10_000))  # the second head's bytes arrive uncounted
        await asyncio.sleep(0.05)
        assert transport.aborted  # before the first request's answer, which was due in the same turn
        assert transport.written.startswith(b"HTTP/1.1 431 Request Header Fields Too Large")
        assert b"more than 10 headers" in transport.written
        protocol.connection_lost(None)

    asyncio.run(run())


def test_keep_alive_requests_each_get_the_full_limits() -> None:
    async def run() -> None:
        protocol, transport = _connected()
        for _ in range(3):  # 10 headers a request, 30 on the connection: each head is counted afresh
            protocol.data_received(_head(10))
            await asyncio.sleep(0.01)
        assert transport.written.count(b"HTTP/1.1 200 OK\r\n") == 3 and not transport.closing
        protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 5000)
        assert transport.aborted and b"request head over 4096 bytes" in transport.written
        protocol.connection_lost(None)

    asyncio.run(run())


def test_a_head_sent_a_byte_at_a_time_ends_at_its_blank_line() -> None:
    async def run() -> None:
        protocol, transport = _connected()
        head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"
        for i in range(len(head)):
            protocol.data_received(head[i : i + 1])
        # The blank line was split across reads and still seen: the body is owed now.
        assert not protocol._in_head and protocol._body_timer is not None
        protocol.data_received(b"abc")
        await asyncio.sleep(0.01)
        assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
        protocol.connection_lost(None)

    asyncio.run(run())
