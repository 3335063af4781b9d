"""The SDK's transport for JSON requests: a small pool of keep-alive ``http.client`` connections.

A general-purpose client (httpx) spends 0.8-0.9 ms of CPU on a small JSON request; the standard
library's ``http.client`` over the same TLS context spends about 0.3 ms. Each durable tracking call
is one such request, so the SDK sends its JSON requests here and keeps httpx for streamed transfers.

Rules the pool keeps (as urllib3 and httpcore do):

- a connection serves one request at a time: a request takes an idle connection or opens one, and
  gives it back only once the response body has been read whole;
- an idle connection the server has closed (keep-alive timeout, shutdown) is dropped before reuse:
  its socket is readable, at end of file;
- a request that fails on a reused connection before any response byte arrived is sent once more, on
  a fresh connection, only if sending it twice is harmless (an idempotent method, or an idempotency
  key the server deduplicates). Nothing is retried once a response has started.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

# Methods that do the same thing however many times they are sent (RFC 9110 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


class ConnectFailed(OSError):
    """No connection could be opened (refused, no such socket, TLS handshake failed)."""


class ConnectionLost(OSError):
    """The connection failed after it was opened, with the request possibly seen by the server."""


class Headers(Mapping[str, str]):
    """Response headers; names are case-insensitive (a repeated header's values are joined by commas)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            self._items[key] = f"{self._items[key]}, {value}" if key in self._items else value

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def get_all(self, name: str, default: Any = None) -> Any:
        """As ``email.message.Message.get_all``, which ``http.client`` calls (repeats come joined)."""
        value = self._items.get(name.lower())
        return default if value is None else [value]


_MAX_LINE = 65536
_MAX_HEADERS = 100


class _Answer(http.client.HTTPResponse):
    """``HTTPResponse`` reading its header block into ``Headers``.

    ``http.client`` parses headers with the ``email`` package, about a third of the client's CPU
    for a small JSON answer; the rest (status line, body framing, chunked reads) is the standard
    library's, as ``begin`` below follows ``HTTPResponse.begin``.
    """

    def begin(self) -> None:
        if self.headers is not None:
            return
        while True:
            version, status, reason = self._read_status()
            if status != http.client.CONTINUE:
                break
            self._header_lines()
        self.code = self.status = status
        self.reason = reason.strip()
        if version in ("HTTP/1.0", "HTTP/0.9"):
            self.version = 10
        elif version.startswith("HTTP/1."):
            self.version = 11
        else:
            raise http.client.UnknownProtocol(version)
        headers = Headers(self._header_lines())
        self.headers = self.msg = headers
        self.chunked = headers.get("transfer-encoding", "").lower() == "chunked"
        self.chunk_left = None
        self.will_close = self._check_close()
        self.length = None
        length = headers.get("content-length")
        if length and not self.chunked:
            try:
                self.length = int(length)
            except ValueError:
                self.length = None
            else:
                if self.length < 0:
                    self.length = None
        if (
            status in (http.client.NO_CONTENT, http.client.NOT_MODIFIED)
            or 100 <= status < 200
            or self._method == "HEAD"
        ):
            self.length = 0
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True

    def _header_lines(self) -> list[tuple[str, str]]:
        items: list[tuple[str, str]] = []
        while True:
            line = self.fp.readline(_MAX_LINE + 1)
            if len(line) > _MAX_LINE:
                raise http.client.LineTooLong("header line")
            if line in (b"\r\n", b"\n", b""):
                return items
            if len(items) >= _MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            text = line.decode("iso-8859-1")
            if text[0] in " \t" and items:  # an obsolete folded continuation line
                name, value = items[-1]
                items[-1] = (name, f"{value} {text.strip()}")
                continue
            name, _, value = text.partition(":")
            items.append((name.strip(), value.strip()))


class Response:
    """A whole response: ``status_code``, ``headers``, ``content``, ``text`` and ``json()``."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode(_charset(self.headers.get("content-type", "")), errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def encode_json(body: Any) -> bytes:
    """The body as httpx encodes ``json=``: compact, UTF-8, no NaN."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def encode_query(params: Mapping[str, Any]) -> str:
    """A query string as httpx builds it: None skipped, booleans as true/false, a list as repeated keys."""
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        for item in value if isinstance(value, list | tuple) else (value,):
            pairs.append(
                (name, "true" if item is True else "false" if item is False else "" if item is None else str(item))
            )
    return urlencode(pairs)


# Characters a request path may carry unescaped (RFC 3986 pchar and "/"), plus "%" of escapes callers made.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket (the platform's socket inside notebooks and jobs)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("strongroom", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        # A Unix socket whose listen backlog is full refuses at once (EAGAIN) where TCP would wait:
        # wait for room, up to the timeout, as a TCP connect would.
        deadline = time.monotonic() + (self.timeout if isinstance(self.timeout, int | float) else 60.0)
        pause = 0.001
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self._path)
            except BlockingIOError:
                sock.close()
                if time.monotonic() + pause > deadline:
                    raise TimeoutError(f"{self._path}: no room in the listen backlog") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
                continue
            except BaseException:
                sock.close()
                raise
            self.sock = sock
            return


class Pool:
    """Keep-alive connections to one platform, shared safely by threads.

    At most ``max_connections`` are open at once (a request beyond that waits for one, up to the
    timeout); at most ``max_idle`` are kept open between requests.
    """

    def __init__(
        self,
        *,
        host: str = "",
        port: int = 443,
        context: ssl.SSLContext | None = None,
        socket_path: str | None = None,
        base_path: str = "",
        timeout: float = 60.0,
        max_connections: int = 16,
        max_idle: int = 8,
    ) -> None:
        self._host, self._port, self._context, self._socket_path = host, port, context, socket_path
        self._base_path = base_path.rstrip("/")
        self.timeout = timeout
        self._max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._closed = False
        self.connects = 0  # connections opened so far (tests and benchmarks read it)

    def _open(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._socket_path is not None:
            connection = _UnixConnection(self._socket_path, self.timeout)
        else:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._context
            )
        connection.response_class = _Answer
        try:
            connection.connect()
        except TimeoutError:
            connection.close()
            raise
        except OSError as exc:  # refused, no such socket, certificate not trusted...
            connection.close()
            raise ConnectFailed(str(exc)) from exc
        with self._lock:
            self.connects += 1
        return connection

    def _take_idle(self) -> http.client.HTTPConnection | None:
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            if _still_open(connection):
                return connection
            connection.close()

    def _give_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(connection)
                return
        connection.close()

    def request(
        self, method: str, path: str, *, query: str, body: bytes | None, headers: dict[str, str], retry_safe: bool
    ) -> Response:
        """Send one request and read its whole response.

        Raises ``ConnectFailed`` when no connection could be opened, ``TimeoutError`` when the server
        did not answer in time, ``ConnectionLost`` when the connection broke.
        """
        target = quote(self._base_path + path, safe=_PATH_SAFE) + (f"?{query}" if query else "")
        if not self._slots.acquire(timeout=self.timeout):
            raise TimeoutError(f"no connection free within {self.timeout} s")
        try:
            connection = self._take_idle()
            reused = connection is not None
            if connection is None:
                connection = self._open()
            try:
                return self._exchange(connection, method, target, body, headers)
            except _Unanswered as exc:
                if not (reused and retry_safe):
                    raise ConnectionLost(str(exc.__cause__)) from exc.__cause__
            # The server closed this kept-alive connection as the request went out: send it once more.
            return self._exchange(self._open(), method, target, body, headers, retried=True)
        finally:
            self._slots.release()

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        body: bytes | None,
        headers: dict[str, str],
        retried: bool = False,
    ) -> Response:
        try:
            try:
                connection.request(method, target, body=body, headers=headers)
                answer = connection.getresponse()
            except TimeoutError:
                raise
            except (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError) as exc:
                # Broken pipe, reset, or closed before the status line: no response byte arrived.
                if retried:
                    raise ConnectionLost(str(exc)) from exc
                raise _Unanswered from exc
            content = answer.read()
            assert isinstance(answer.headers, Headers)
            response = Response(answer.status, answer.headers, content)
        except TimeoutError:
            connection.close()
            raise
        except _Unanswered:
            connection.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise ConnectionLost(str(exc)) from exc
        if answer.will_close or connection.sock is None:
            connection.close()
        else:
            self._give_back(connection)
        return response

    def close(self) -> None:
        """Close every idle connection; connections in use close when their request ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class _Unanswered(Exception):
    """The connection broke before any response byte arrived."""


def _still_open(connection: http.client.HTTPConnection) -> bool:
    """False if the server closed this idle connection: its socket reads as ready (at end of file)."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        if hasattr(select, "poll"):  # no limit on descriptor numbers, unlike select()
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return not poller.poll(0)
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
