"""The floor for benchmarks/storage.py over HTTPS: the same server stack (uvicorn, TLS 1.3 with
Strongroom's cipher list, HTTP/1.1) serving and storing plain files, no auth, no encryption at
rest, no audit. GET streams a file in 1 MiB chunks; PUT writes the body to a temporary file,
fsyncs it and renames it into place (durable, like Strongroom's blob store).

Usage: _bare_files.py DIRECTORY CERT KEY PORT
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

ROOT = Path(sys.argv[1])
CHUNK = 1 << 20


async def get(request: Request) -> Response:
    path = ROOT / request.path_params["name"]

    async def body() -> AsyncIterator[bytes]:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                yield chunk

    return StreamingResponse(body(), headers={"content-length": str(path.stat().st_size)})


async def put(request: Request) -> Response:
    path = ROOT / request.path_params["name"]
    tmp = path.with_name(f".{path.name}.part")
    with tmp.open("wb") as out:
        async for chunk in request.stream():
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    return Response(status_code=201)


app = Starlette(routes=[Route("/files/{name}", get, methods=["GET"]), Route("/files/{name}", put, methods=["PUT"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[4]),
        ssl_certfile=sys.argv[2],
        ssl_keyfile=sys.argv[3],
        ssl_ciphers="ECDHE+AESGCM:ECDHE+CHACHA20",
        http="httptools",  # as Strongroom's listeners
        loop="uvloop",  # as strongroom up
        log_level="warning",
        access_log=False,
    )
