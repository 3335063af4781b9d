"""The data plane's frames, spoken on both sides of the sandbox wall (and by ``up --workers``'s relay).

A frame is a 10-byte head (status, meta length, body length; big-endian), then ``meta`` (a
request's JSON parameters, or an answer's content type), then the body. Requests carry status 0.
Connections are persistent and pipelined: answers come back in the order the requests went out,
so one connection per event loop carries every concurrent request (no HTTP parsing, no
connect-per-request on the hot path).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the worker in the sandbox reads frames blocking; it need not import asyncio
    import asyncio

HEAD = struct.Struct(">HII")
MAX_META = 64 * 1024
MAX_BODY = 1024**3  # a model archive is the largest thing sent (its own limit is the same)


class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class FrameError(Exception):
    """The peer sent something that is not a frame (the connection is dropped)."""


def pack(status: int, meta: bytes, body: bytes) -> bytes:
    return HEAD.pack(status, len(meta), len(body)) + meta + body


def _sizes(head: bytes) -> tuple[int, int, int]:
    status, meta, body = HEAD.unpack(head)
    if meta > MAX_META or body > MAX_BODY:
        raise FrameError(f"a frame of {meta} + {body} bytes is over the limit")
    return status, meta, body


def read_frame(stream: _Readable) -> tuple[int, bytes, bytes] | None:
    """The next frame of a blocking stream; None at a clean end of stream."""
    head = stream.read(HEAD.size)
    if not head:
        return None
    if len(head) < HEAD.size:
        raise FrameError("the stream ended inside a frame head")
    status, meta_size, body_size = _sizes(head)
    data = stream.read(meta_size + body_size) if meta_size + body_size else b""
    if len(data) < meta_size + body_size:
        raise FrameError("the stream ended inside a frame")
    return status, data[:meta_size], data[meta_size:]


async def read_frame_async(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """The next frame; raises ``asyncio.IncompleteReadError`` at the end of the stream."""
    status, meta_size, body_size = _sizes(await reader.readexactly(HEAD.size))
    data = await reader.readexactly(meta_size + body_size) if meta_size + body_size else b""
    return status, data[:meta_size], data[meta_size:]
