"""HTTP limits that hold on every listener, enforced before the application sees a request.

uvicorn's parsers have no header deadline, and its fast one (httptools, llhttp underneath) has no
header size limit, so one client could send 64 MiB of headers, or hold hundreds of sockets open by
sending a byte every few seconds. Every listener the platform opens (the HTTPS port, the
sandboxes' Unix socket, and any later one) uses :class:`LimitedHttpProtocol` through
:func:`server_config`: uvicorn's httptools protocol with

- a count of the bytes of each request head as they arrive, before the parser sees them: over
  ``http_max_header_bytes`` the connection gets ``431`` and is closed without the rest being read
  or parsed (llhttp itself keeps no buffer; the parser binding joins a header's pieces, which is
  what the count bounds);
- a count of the headers as the parser hands them over: the one past ``http_max_header_count``
  stops the parser, ``431`` and close;
- a header deadline: a request head (and, on TLS, the handshake before it) must be complete within
  ``http_header_timeout_seconds`` of its first byte, else ``408`` and close;
- a body idle deadline: while the client owes request body bytes, a pause longer than
  ``http_body_idle_timeout_seconds`` closes the connection (pauses caused by the application not
  reading yet do not count).

The protocol also coalesces what it writes in one turn of the event loop (:class:`CorkedTransport`):
uvicorn writes a response's head and its body separately, which over TLS made two records and two
system calls per answer; now they leave together.

All of this runs in the protocol, so no authentication, routing or database work is done for a
request that breaks a limit.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import httptools
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strongroom.core.config import Config


@dataclass(frozen=True)
class HttpLimits:
    """The figures every listener enforces (from :class:`~strongroom.core.config.Config`)."""

    max_header_bytes: int
    max_header_count: int
    header_timeout: float
    body_idle_timeout: float

    @classmethod
    def from_config(cls, config: Config) -> HttpLimits:
        return cls(
            max_header_bytes=config.http_max_header_bytes,
            max_header_count=config.http_max_header_count,
            header_timeout=config.http_header_timeout_seconds,
            body_idle_timeout=config.http_body_idle_timeout_seconds,
        )


SHUTDOWN_GRACE = 1.0
"""Seconds a connection closed by the server's shutdown has to finish closing before it is dropped."""


def _refusal(status: int, reason: str, detail: str) -> bytes:
    body = f'{{"type":"about:blank","title":"{reason}","status":{status},"detail":"{detail}"}}'.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class CorkedTransport:
    """A transport whose writes in one turn of the event loop leave as one write (one TLS record,
    one system call) at the end of that turn; closing or pausing flushes first, and so does
    ``FLUSH_BYTES`` waiting (a download's chunks go out as they come, under the real transport's
    flow control). Everything else is the transport's own."""

    FLUSH_BYTES = 64 * 1024

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.raw = transport
        self._loop = loop
        self._out: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._out:
            self._loop.call_soon(self.flush)
        self._out.append(bytes(data))
        self._size += len(data)
        if self._size >= self.FLUSH_BYTES:
            self.flush()

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        self._size = 0
        if not self.raw.is_closing():
            self.raw.write(data)

    def close(self) -> None:
        self.flush()
        self.raw.close()

    def write_eof(self) -> None:
        self.flush()
        self.raw.write_eof()

    def abort(self) -> None:
        self._out.clear()
        self._size = 0
        self.raw.abort()

    def get_write_buffer_size(self) -> int:
        return self._size + self.raw.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


class _Refusal(Exception):
    """Raised in a parser callback to stop the parser; the protocol answers ``status`` and aborts."""

    def __init__(self, status: int, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


def _too_large(detail: str) -> _Refusal:
    return _Refusal(431, "Request Header Fields Too Large", detail)


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header size, header count and deadline checks in front of
    it, and the writes of each turn of the event loop coalesced (:class:`CorkedTransport`).

    A request head's bytes are counted from the start of a read. The one exception is a pipelined
    request whose head begins in the same read as the previous request's end: those bytes reach the
    parser uncounted, at most one read (256 KiB); its header count still holds exactly.
    """

    limits: HttpLimits  # set on the subclass made by :func:`protocol_for`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # False from a head's end to its message's end: the body, if any
        self._head_bytes = 0
        self._header_count = 0
        self._tail = b""
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_seen = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[arg-type]
        self.transport = CorkedTransport(self.transport, self.loop)  # type: ignore[assignment]
        self._arm_head_deadline()

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol gets the plain transport (it has its own framing and flow control).
        self._cancel_timers()
        if isinstance(self.transport, CorkedTransport):
            self.transport.flush()
            self.transport = self.transport.raw
        super().handle_websocket_upgrade()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            if self._head_timer is None:
                self._arm_head_deadline()
            if not self._count_head(data):
                return
        elif self._body_timer is not None:
            self._body_seen = self.loop.time()
        # uvicorn's own data_received, with the parser stopped by a limit answered as such
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Refusal):
                self._refuse(exc.__context__)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return
        # The head ended in this read (or earlier) and its message has not: the client owes a body.
        if not self._in_head and self._body_timer is None and self._owns_transport():
            self._body_seen = self.loop.time()
            self._body_timer = self.loop.call_later(self.limits.body_idle_timeout, self._check_body_idle)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            raise _too_large(f"more than {self.limits.max_header_count} headers")
        super().on_header(name, value)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What the client sends next is the next request's head.
        self._cancel_timers()
        self._in_head, self._head_bytes, self._header_count, self._tail = True, 0, 0, b""

    def shutdown(self) -> None:
        """The server stops: uvicorn closes an idle connection now (one with a response in flight
        after that response). Over TLS that close waits for the client's close_notify, and a
        client that holds an idle keep-alive connection never reads it: the server's stop waited
        for its whole graceful timeout (20 s). Such a connection is dropped ``SHUTDOWN_GRACE``
        after its close begins."""
        super().shutdown()
        self.loop.call_later(SHUTDOWN_GRACE, self._drop_if_closing)

    def _drop_if_closing(self) -> None:
        if self.parser is None:  # connection_lost: closed in time
            return
        if self.transport.is_closing():
            self.transport.abort()
        else:  # a response still in flight: its connection closes after it
            self.loop.call_later(SHUTDOWN_GRACE, self._drop_if_closing)

    # -- the checks ------------------------------------------------------------------------------

    def _count_head(self, data: bytes) -> bool:
        """Count this read against the head size limit; False when the connection was refused."""
        tail = self._tail
        window = tail + data if tail else data
        # The head ends at the first blank line, a newline followed by "\r\n" or "\n" ("\r\n\r\n"
        # holds the first); the newline ending its last header line belongs to it.
        crlf, lf = window.find(b"\n\r\n"), window.find(b"\n\n")
        end = crlf if lf < 0 or 0 <= crlf < lf else lf
        self._head_bytes += len(data) if end < 0 else max(end + 1 - len(tail), 0)
        self._tail = window[-2:]
        if self._head_bytes > self.limits.max_header_bytes:
            self._refuse(_too_large(f"request head over {self.limits.max_header_bytes} bytes"))
            return False
        if end >= 0:
            self._in_head = False
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
        return True

    def _arm_head_deadline(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._in_head and self._owns_transport():
            if self._head_bytes:
                timeout = self.limits.header_timeout
                self._refuse(_Refusal(408, "Request Timeout", f"request head not complete in {timeout:g} s"))
            else:  # an idle connection that never started a request: just close it
                self._close()

    def _check_body_idle(self) -> None:
        self._body_timer = None
        if not self._owns_transport() or self._in_head:
            return
        now = self.loop.time()
        if self.flow.read_paused:  # the application has not read yet: not the client's pause
            self._body_seen = now
        elif now - self._body_seen >= self.limits.body_idle_timeout:
            self._close()
            return
        wait = self._body_seen + self.limits.body_idle_timeout - now
        self._body_timer = self.loop.call_later(max(wait, 0.05), self._check_body_idle)

    def _owns_transport(self) -> bool:
        """False once closed or handed to a WebSocket protocol (which has its own timeouts)."""
        transport = self.transport
        return transport is not None and not transport.is_closing() and transport.get_protocol() is self

    def _refuse(self, refusal: _Refusal) -> None:
        """Answer the refusal and drop the connection at once: the answer is handed to the kernel
        now, then the connection is aborted, not closed. A graceful close would first read
        whatever the client still sends (a TLS shutdown under uvloop reads until the peer's
        close_notify), and a client flooding its head would be read to its end."""
        self._cancel_timers()
        self.transport.write(_refusal(refusal.status, refusal.reason, refusal.detail))
        if isinstance(self.transport, CorkedTransport):
            self.transport.flush()
        self.transport.abort()

    def _close(self) -> None:
        self._cancel_timers()
        self.transport.close()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None


def protocol_for(limits: HttpLimits) -> type[LimitedHttpProtocol]:
    """A protocol class bound to ``limits`` (uvicorn builds one instance per connection)."""
    return type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"limits": limits})


def server_config(app: Any, config: Config, **options: Any) -> uvicorn.Config:
    """The uvicorn configuration every platform listener uses: httptools with the limits above.

    ``X-Forwarded-For`` and ``-Proto`` are not believed (uvicorn believes them from 127.0.0.1 by
    default): any local client could have set the address that the audit log records as a
    request's source."""
    return uvicorn.Config(app, http=protocol_for(HttpLimits.from_config(config)), proxy_headers=False, **options)


class LimitedServer(uvicorn.Server):
    """A uvicorn server whose TLS handshake also has to finish within the header deadline.

    uvicorn leaves asyncio's default (60 s) in place; a client that opens TCP and never finishes
    the handshake would hold a socket that long.
    """

    def __init__(self, config: uvicorn.Config, handshake_timeout: float) -> None:
        super().__init__(config)
        self._handshake_timeout = handshake_timeout

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # lifespan and state; the listeners are opened here
        self.started = False
        if sockets is None:  # a listener of its own (the platform passes its sockets in)
            sockets = [self.config.bind_socket()]
        for sock in sockets:
            self.servers.append(await self.listen(sock))
        self.started = True

    @property
    def tls(self) -> ssl.SSLContext | None:
        return self.config.ssl if isinstance(self.config.ssl, ssl.SSLContext) else None

    @property
    def handshake_timeout(self) -> float:
        return self._handshake_timeout

    def new_protocol(self) -> asyncio.Protocol:
        """The protocol for one accepted connection."""
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config, server_state=self.server_state, app_state=self.lifespan.state
        )

    async def listen(self, sock: socket.socket) -> asyncio.Server:
        """Start accepting on ``sock``; what uvicorn's shutdown closes."""
        timeout = self._handshake_timeout if self.tls is not None else None
        return await asyncio.get_running_loop().create_server(
            self.new_protocol, sock=sock, backlog=self.config.backlog, ssl=self.tls, ssl_handshake_timeout=timeout
        )
