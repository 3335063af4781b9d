"""Spreading one shared HTTPS listening socket's connections over ``up --workers N`` processes.

Every API process waits on the same listening socket. The event loop's own accept drains the
whole queue at each wake-up, so when a client opens its connections together (a connection
pool, wrk) the first process to wake takes all of them and the other processes idle: with two
processes and eight connections the benchmark saw 8/0 more often than 4/4.

Here each process accepts one connection per wake-up, and a process that holds more open
connections than the least loaded of its siblings lets that sibling go first: it waits
``DEFER_SECONDS`` before it accepts. The counts live in a small shared memory map the master
creates before it forks (one slot per process, zeroed by the master when a process dies). A
sibling that is busy or stuck does not hold a connection back: after the wait, whoever wakes
first accepts. Nothing is handed between processes, so a process killed between two accepts
loses no connection: the kernel keeps it queued for the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import mmap
import socket
import ssl
from collections.abc import Callable

log = logging.getLogger("strongroom.server")

DEFER_SECONDS = 0.002
PUBLISH_SECONDS = 0.25
_RETRY_AFTER_ERROR_SECONDS = 0.1  # EMFILE and the like: let connections close before trying again
_SLOT = 4  # bytes per process: an unsigned 32-bit count
_ABSENT = 0xFFFFFFFF  # a slot whose process has not started yet, or has died


class ConnectionCounts:
    """Open HTTPS connections per API process, in memory shared by the master and its children."""

    def __init__(self, processes: int) -> None:
        self._map = mmap.mmap(-1, _SLOT * processes)  # anonymous and shared: children inherit it
        self._counts = memoryview(self._map).cast("I")
        for slot in range(processes):
            self.leave(slot)

    def set(self, slot: int, count: int) -> None:
        self._counts[slot] = count

    def leave(self, slot: int) -> None:
        """The process in ``slot`` stopped or died: its siblings stop deferring to it."""
        self._counts[slot] = _ABSENT

    def fewest_elsewhere(self, slot: int) -> int | None:
        """The smallest count among the other running processes (None: there are none)."""
        others = [count for index, count in enumerate(self._counts) if index != slot and count != _ABSENT]
        return min(others) if others else None


class BalancedListener:
    """Accepts connections from a listening socket shared with sibling processes, one per wake-up,
    deferring to a less loaded sibling; it closes like an ``asyncio.Server`` (``close``,
    ``wait_closed``) so uvicorn's shutdown stops it as it stops its own listeners."""

    def __init__(
        self,
        sock: socket.socket,
        protocol: Callable[[], asyncio.Protocol],
        *,
        tls: ssl.SSLContext | None,
        handshake_timeout: float,
        open_connections: Callable[[], int],
        counts: ConnectionCounts,
        slot: int,
    ) -> None:
        self._sock = sock
        self._protocol = protocol
        self._tls = tls
        self._handshake_timeout = handshake_timeout
        self._open_connections = open_connections
        self._counts = counts
        self._slot = slot
        self._handshaking = 0
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self._timers: list[asyncio.TimerHandle] = []
        self._closed = asyncio.Event()
        sock.setblocking(False)
        self._listen()
        self._publish_periodically()

    def _load(self) -> int:
        return self._open_connections() + self._handshaking

    def _publish(self) -> None:
        self._counts.set(self._slot, self._load())

    def _publish_periodically(self) -> None:
        # Connections also end between accepts; without this a sibling would see a stale, higher count.
        self._publish()
        self._timers = [self._loop.call_later(PUBLISH_SECONDS, self._publish_periodically)]

    def _listen(self) -> None:
        self._loop.add_reader(self._sock.fileno(), self._on_readable)

    def _pause(self, seconds: float, then: Callable[[], None]) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._timers.append(self._loop.call_later(seconds, then))

    def _resume(self) -> None:
        self._listen()
        self._accept_one()  # deferred once already: whoever is first now takes it

    def _on_readable(self) -> None:
        fewest = self._counts.fewest_elsewhere(self._slot)
        if fewest is not None and self._load() > fewest:
            self._pause(DEFER_SECONDS, self._resume)  # a less loaded sibling woke too: it goes first
            return
        self._accept_one()

    def _accept_one(self) -> None:
        try:
            connection, _address = self._sock.accept()
        except (BlockingIOError, InterruptedError):
            return  # a sibling took it
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                log.error("accept: %s; accepting again in %.1fs", exc, _RETRY_AFTER_ERROR_SECONDS)
                self._pause(_RETRY_AFTER_ERROR_SECONDS, self._listen)
                return
            raise
        connection.setblocking(False)
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._handshaking += 1
        self._publish()
        task = self._loop.create_task(self._connect(connection))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connect(self, connection: socket.socket) -> None:
        timeout = self._handshake_timeout if self._tls is not None else None
        try:
            await self._loop.connect_accepted_socket(
                self._protocol, connection, ssl=self._tls, ssl_handshake_timeout=timeout
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:  # a failed or abandoned handshake
            log.debug("connection dropped before it was served: %s", exc)
            connection.close()
        finally:
            self._handshaking -= 1

    def close(self) -> None:
        if self._closed.is_set():
            return
        with contextlib.suppress(ValueError, OSError):  # the socket may be closed already
            self._loop.remove_reader(self._sock.fileno())
        for timer in self._timers:
            timer.cancel()
        for task in self._tasks:
            task.cancel()  # handshakes still running; served connections are uvicorn's to close
        self._counts.leave(self._slot)
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()
