"""Smart-HTTP git through the platform: `git http-backend` (git's own CGI) behind our TLS,
token authentication and the GitPull/GitPush policy.

Clients authenticate with ``Authorization: Bearer <token>`` (``git -c http.extraHeader=...``)
or HTTP Basic with the token as the password (what git's credential helpers send).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from strongroom.api.problems import problem
from strongroom.core.errors import NotFound, StrongroomError
from strongroom.guard import Ticket
from strongroom.guard.connection import authenticate, request_context

_PATH = re.compile(r"^/git/(?P<team>[a-z0-9][a-z0-9-]{0,62})/(?P<repo>[a-z0-9][a-z0-9-]{0,62})\.git(?P<rest>/.*)?$")
_ALLOWED_REST = re.compile(r"^/(info/refs|git-upload-pack|git-receive-pack|HEAD)$")
_CHUNK = 64 * 1024


_REALM = 'Basic realm="strongroom git"'


async def git_endpoint(request: Request) -> Response:
    platform = request.app.state.platform
    match = _PATH.match(request.url.path)
    rest = (match.group("rest") or "") if match else ""
    if match is None or not _ALLOWED_REST.match(rest):
        return problem(request, NotFound("not a git smart-HTTP path (/git/<team>/<repo>.git/...)"))
    team, repo = match.group("team"), match.group("repo")
    service = request.query_params.get("service", "")
    push = rest == "/git-receive-pack" or service == "git-receive-pack"
    try:
        principal = await authenticate(
            request,
            platform.identity,
            basic=True,
            hint="git needs your token: use it as the password, or send 'Authorization: Bearer <token>'",
        )
        ctx = request_context(request, principal)
        ticket, project_root = await asyncio.to_thread(platform.git.begin_transfer, ctx, team, repo, push)
    except StrongroomError as exc:
        return problem(request, exc, realm=_REALM)
    return await _run_backend(request, ticket, project_root, repo, rest)


async def _run_backend(request: Request, ticket: Ticket, project_root: Path, repo: str, rest: str) -> Response:
    env = {
        "PATH": "/usr/bin:/bin",
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(project_root),
        "PATH_INFO": f"/{repo}.git{rest}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_USER": ticket.ctx.principal.user,
        "REMOTE_ADDR": ticket.ctx.source,
        "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
    }
    if "content-encoding" in request.headers:
        env["HTTP_CONTENT_ENCODING"] = request.headers["content-encoding"]
    if "content-length" in request.headers:
        env["CONTENT_LENGTH"] = request.headers["content-length"]
    process = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin and process.stdout and process.stderr

    async def feed() -> None:
        # The backend may stop reading before the body ends (a gzipped push is read only to the end
        # of its gzip stream) and exit: the rest is read and dropped, the backend's output answers.
        stdin = process.stdin
        assert stdin is not None
        try:
            async for chunk in request.stream():
                if not chunk or stdin.is_closing():
                    continue
                try:
                    stdin.write(chunk)
                    await stdin.drain()
                except ConnectionError:  # its input closed under the write: the same case
                    stdin.close()
        finally:
            with contextlib.suppress(Exception):
                stdin.close()

    # Read the backend's output from the start (so it never blocks on a full pipe) but only
    # answer once the request body is fully consumed: the streaming response then owns the
    # ASGI receive channel (it listens for disconnects) without racing our body reader.
    output: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def drain() -> None:
        while chunk := await process.stdout.read(_CHUNK):  # type: ignore[union-attr]
            await output.put(chunk)
        await output.put(None)

    reader = asyncio.create_task(drain())
    error: BaseException | None = None
    try:
        await feed()
    except BaseException as exc:
        error = exc
    pending = b""
    status, headers = 200, {}
    while error is None:
        chunk = await output.get()
        if chunk is None:
            break
        pending += chunk
        head, sep, after = pending.partition(b"\r\n\r\n")
        if not sep:
            head, sep, after = pending.partition(b"\n\n")
        if sep:
            pending = after
            for line in head.decode("latin-1").splitlines():
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name.strip():
                    headers[name.strip()] = value.strip()
            break
    if error is not None:
        reader.cancel()
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await asyncio.to_thread(ticket.finish, error)
        raise error

    async def body() -> AsyncIterator[bytes]:
        failure: BaseException | None = None
        try:
            if pending:
                yield pending
            while (chunk := await output.get()) is not None:
                yield chunk
            await reader
            code = await process.wait()
            if code != 0 or status >= 400:
                detail = (await process.stderr.read()).decode(errors="replace")[:500]  # type: ignore[union-attr]
                failure = GitTransferError(f"git http-backend exited with {code}: {detail}".strip())
        except BaseException as exc:
            failure = exc
            reader.cancel()
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise
        finally:
            await asyncio.to_thread(ticket.finish, failure)

    headers.pop("Content-Length", None)
    return StreamingResponse(body(), status_code=status, headers=headers)


class GitTransferError(StrongroomError):
    slug = "git-transfer-failed"
    status = 500
    title = "Git transfer failed"


def routes() -> list[Route]:
    return [Route("/git/{path:path}", git_endpoint, methods=["GET", "POST"])]
