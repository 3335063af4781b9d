"""The HTTP protocol's corked transport: what is written in one turn of the event loop leaves in
one write (a response's head and body in one TLS record and one system call)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from strongroom.api.http_limits import CorkedTransport


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        self.events.append("write")

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


def _corked(raw: _Recorder, loop: asyncio.AbstractEventLoop) -> CorkedTransport:
    return CorkedTransport(cast(asyncio.Transport, raw), loop)


def test_writes_of_one_turn_leave_together_at_its_end() -> None:
    async def run() -> None:
        raw = _Recorder()
        corked = _corked(raw, asyncio.get_running_loop())
        corked.write(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
        corked.write(b"")
        corked.write(b"0.12")
        assert raw.writes == [] and corked.get_write_buffer_size() == 42
        await asyncio.sleep(0)
        assert raw.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n0.12"]
        corked.write(b"next")
        await asyncio.sleep(0)
        assert raw.writes[1:] == [b"next"]
        assert corked.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the transport's

    asyncio.run(run())


def test_close_sends_what_waits_first_and_abort_drops_it() -> None:
    async def run() -> None:
        raw = _Recorder()
        corked = _corked(raw, asyncio.get_running_loop())
        corked.write(b"last words")
        corked.close()
        assert raw.events == ["write", "close"] and raw.writes == [b"last words"]
        await asyncio.sleep(0)  # the scheduled flush finds nothing left
        assert raw.writes == [b"last words"]

        raw = _Recorder()
        corked = _corked(raw, asyncio.get_running_loop())
        corked.write(b"never sent")
        corked.abort()
        await asyncio.sleep(0)
        assert raw.events == ["abort"] and raw.writes == []

    asyncio.run(run())


def test_a_large_write_leaves_at_once_after_what_waited() -> None:
    async def run() -> None:
        raw = _Recorder()
        corked = _corked(raw, asyncio.get_running_loop())
        corked.write(b"head")
        corked.write(b"x" * CorkedTransport.FLUSH_BYTES)  # a download's chunk: not held for the turn's end
        assert raw.writes == [b"head" + b"x" * CorkedTransport.FLUSH_BYTES]
        assert corked.get_write_buffer_size() == 0
        await asyncio.sleep(0)
        assert len(raw.writes) == 1

    asyncio.run(run())
