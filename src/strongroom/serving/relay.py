"""Invocations from every API process of ``strongroom up --workers N`` reach the one pool of
endpoint workers, owned by the process that runs the background workers.

That process listens on a private Unix socket (``run/serving.sock``, mode 0600, in the 0700 run
directory; sandboxes never see it). Another API process has already authenticated, authorized
and audited the call (``ServingService.invoke``); it relays only the scoring: team, endpoint,
variant, content type and body go in, the answer (or the problem that stopped it) comes back.
Capture records are written by the owner, into the one spool per endpoint.

The relay speaks the data plane's ``wire`` frames: each API process keeps one persistent,
pipelined connection (a :class:`~strongroom.serving.channel.Channel`); the owner scores the
requests of a connection concurrently, on an event loop of its own, and answers them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

from strongroom.core.errors import (
    InvalidInput,
    PayloadTooLarge,
    StrongroomError,
    Unavailable,
    UnsupportedMediaType,
)
from strongroom.serving.channel import Channel, ChannelClosed
from strongroom.serving.inside import wire

log = logging.getLogger(__name__)

Score = Callable[[str, str, bytes, str, str, str], Awaitable[tuple[bytes, str]]]
_ERRORS: dict[int, type[StrongroomError]] = {
    e.status: e for e in (InvalidInput, PayloadTooLarge, UnsupportedMediaType, Unavailable)
}
_TIMEOUT = 60.0


async def _answer(score: Score, meta: bytes, body: bytes) -> bytes:
    try:
        params = json.loads(meta)
        answer, out_type = await score(
            params["team"], params["endpoint"], body, params["content_type"], params["variant"], params["explain"]
        )
        return wire.pack(200, out_type.encode(), answer)
    except StrongroomError as exc:
        return wire.pack(exc.status, b"application/problem+json", json.dumps(exc.to_problem()).encode())
    except Exception as exc:  # the relaying process answers 503; the cause is logged here
        log.exception("serving relay: scoring failed")
        problem = Unavailable(f"the endpoint could not score the request: {type(exc).__name__}").to_problem()
        return wire.pack(503, b"application/problem+json", json.dumps(problem).encode())


class RelayServer:
    """The owner's side: scores relayed invocations with ``score`` (on an event loop in a thread of
    its own) until ``close``."""

    def __init__(self, path: Path, score: Score) -> None:
        path.unlink(missing_ok=True)
        self.path = path
        self._score = score
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        old = os.umask(0o177)
        try:
            self._server = self._loop.run_until_complete(asyncio.start_unix_server(self._serve, str(path)))
        finally:
            os.umask(old)
        self._thread = threading.Thread(target=self._loop.run_forever, name="serving-relay", daemon=True)
        self._thread.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answers: asyncio.Queue[asyncio.Task[bytes] | None] = asyncio.Queue()

        async def send_in_order() -> None:
            while (task := await answers.get()) is not None:
                writer.write(await task)
                await writer.drain()

        sender = asyncio.get_running_loop().create_task(send_in_order())
        try:
            while True:
                _, meta, body = await wire.read_frame_async(reader)
                answers.put_nowait(asyncio.get_running_loop().create_task(_answer(self._score, meta, body)))
        except (OSError, asyncio.IncompleteReadError, wire.FrameError):
            pass
        finally:
            answers.put_nowait(None)
            with contextlib.suppress(Exception):
                await sender
            writer.close()

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


class RelayClient:
    """Another API process's side: hands the scoring to the owner."""

    def __init__(self, path: Path) -> None:
        self._channel = Channel(str(path), timeout=_TIMEOUT)

    async def __call__(
        self, team: str, name: str, body: bytes, content_type: str, target_variant: str, explain: str = ""
    ) -> tuple[bytes, str]:
        params = {"team": team, "endpoint": name, "content_type": content_type, "variant": target_variant}
        meta = json.dumps({**params, "explain": explain}).encode()
        try:
            status, out_meta, answer = await self._channel.request(meta, body)
        except (ChannelClosed, TimeoutError) as exc:
            raise Unavailable(
                f"endpoint {team}/{name}: the process that runs the endpoints does not answer; retry shortly"
            ) from exc
        if status == 200:
            return answer, out_meta.decode()
        problem = json.loads(answer)
        error = _ERRORS.get(status, Unavailable)
        extra = {k: v for k, v in problem.items() if k not in ("type", "title", "status", "detail", "field")}
        raise error(str(problem.get("detail", "")), field=problem.get("field"), **extra)

    def close(self) -> None:
        self._channel.close()
