"""The pipelined channel to a worker: answers reach the requests that asked, in order, even after
a request timed out; a peer that dies fails what it held, and the next request reconnects."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from strongroom.serving.channel import Channel, ChannelClosed
from strongroom.serving.inside import wire


async def _peer(path: Path, served: list[int], writers: list[asyncio.StreamWriter]) -> asyncio.AbstractServer:
    """A worker stand-in: answers each frame, in order, with its body; ``{"sleep": s}`` waits first,
    ``{"die": true}`` closes the connection without answering."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        try:
            while True:
                _, meta, body = await wire.read_frame_async(reader)
                params = json.loads(meta)
                if params.get("die"):
                    writer.close()
                    return
                await asyncio.sleep(params.get("sleep", 0))
                served.append(int(body))
                writer.write(wire.pack(200, b"text/csv", body))
        except asyncio.IncompleteReadError:
            writer.close()

    return await asyncio.start_unix_server(serve, str(path))


def test_concurrent_requests_share_one_connection_and_get_their_own_answers(tmp_path: Path) -> None:
    async def run() -> None:
        served: list[int] = []
        writers: list[asyncio.StreamWriter] = []
        server = await _peer(tmp_path / "w.sock", served, writers)
        channel = Channel(str(tmp_path / "w.sock"), timeout=5)
        answers = await asyncio.gather(*(channel.request(b"{}", str(i).encode()) for i in range(50)))
        assert [int(body) for _, _, body in answers] == list(range(50))
        assert served == list(range(50))  # one connection, in order
        # One request times out; its late answer is dropped and the next request gets its own.
        with pytest.raises(TimeoutError):
            await channel.request(json.dumps({"sleep": 0.3}).encode(), b"7", timeout=0.05)
        status, content_type, body = await channel.request(b"{}", b"8")
        assert (status, content_type, body) == (200, b"text/csv", b"8")
        # A peer that dies fails the requests it held; the next request opens a new connection.
        with pytest.raises(ChannelClosed):
            await channel.request(json.dumps({"die": True}).encode(), b"9")
        assert (await channel.request(b"{}", b"10"))[2] == b"10"
        channel.close()  # closes each connection on its own loop: give it a turn
        await asyncio.sleep(0.1)
        assert all(w.is_closing() for w in writers)  # the peer saw each connection end
        server.close()
        await server.wait_closed()

    asyncio.run(run())


def test_a_peer_that_is_gone_is_a_closed_channel(tmp_path: Path) -> None:
    async def run() -> None:
        with pytest.raises(ChannelClosed):
            await Channel(str(tmp_path / "nobody.sock"), timeout=1).request(b"{}", b"1")

    asyncio.run(run())


def test_requests_of_one_event_loop_turn_leave_in_one_write(tmp_path: Path) -> None:
    """Sixteen requests made in the same turn of the event loop reach the peer as one write (one
    system call here, one wake-up of the worker), and each still gets its own answer."""

    async def run() -> None:
        chunks: list[int] = []

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            pending = b""
            while data := await reader.read(1 << 20):
                chunks.append(len(data))
                pending += data
                while len(pending) >= wire.HEAD.size:
                    _, meta_size, body_size = wire.HEAD.unpack_from(pending)
                    end = wire.HEAD.size + meta_size + body_size
                    if len(pending) < end:
                        break
                    writer.write(wire.pack(200, b"text/csv", pending[wire.HEAD.size + meta_size : end]))
                    pending = pending[end:]
            writer.close()

        server = await asyncio.start_unix_server(serve, str(tmp_path / "w.sock"))
        channel = Channel(str(tmp_path / "w.sock"), timeout=5)
        assert (await channel.request(b"{}", b"0"))[2] == b"0"  # the connection is open
        chunks.clear()
        answers = await asyncio.gather(*(channel.request(b"{}", str(i).encode()) for i in range(16)))
        assert [int(body) for _, _, body in answers] == list(range(16))
        assert sum(chunks) == sum(len(wire.pack(0, b"{}", str(i).encode())) for i in range(16))
        assert len(chunks) == 1  # one write carried them all
        channel.close()
        await asyncio.sleep(0.05)
        server.close()
        await server.wait_closed()

    asyncio.run(run())


def test_a_channel_closed_while_it_connects_fails_the_request_as_closed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed and replaced while a request waits for its connection to open: the request
    gets ChannelClosed (the caller tries the next worker), not a CancelledError (a 500)."""

    async def run() -> None:
        channel = Channel(str(tmp_path / "w.sock"), timeout=5)

        async def slow_connect() -> object:
            await asyncio.sleep(5)
            raise AssertionError("never reached")

        monkeypatch.setattr(channel, "_connect", slow_connect)
        request = asyncio.ensure_future(channel.request(b"{}", b"1"))
        await asyncio.sleep(0.05)
        channel.close()  # as the pool does when it replaces the worker
        with pytest.raises(ChannelClosed):
            await request

    asyncio.run(run())
