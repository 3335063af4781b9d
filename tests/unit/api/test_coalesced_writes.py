"""A response's writes made in one turn of the event loop go out to the transport as one."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from strongroom.api.http_limits import _CoalescedWrites


class _Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return f"extra:{name}"


def test_writes_of_one_turn_are_sent_together_in_order() -> None:
    async def scenario() -> list[list[bytes]]:
        transport = _Transport()
        wrapped = _CoalescedWrites(cast(asyncio.Transport, transport), asyncio.get_running_loop())
        wrapped.write(b"HTTP/1.1 200 OK\r\n\r\n")
        wrapped.write(b"")
        wrapped.write(b'{"metrics": 1}')
        seen = [list(transport.writes)]  # nothing sent within the turn
        await asyncio.sleep(0)
        seen.append(list(transport.writes))
        big = b"x" * _CoalescedWrites.FLUSH_BYTES
        wrapped.write(b"head")
        wrapped.write(big)  # a download's chunk: sent at once, after what was waiting
        seen.append(list(transport.writes))
        wrapped.write(b"last")
        wrapped.close()  # what waits is sent before the transport closes
        seen.append(list(transport.writes))
        assert transport.closed and wrapped.get_extra_info("peername") == "extra:peername"
        await asyncio.sleep(0)
        return seen

    seen = asyncio.run(scenario())
    assert seen[0] == []
    assert seen[1] == [b'HTTP/1.1 200 OK\r\n\r\n{"metrics": 1}']
    assert seen[2][-1] == b"head" + b"x" * _CoalescedWrites.FLUSH_BYTES
    assert seen[3][-1] == b"last"
