"""Buckets (JSON control plane, /api/v1/buckets) and object bytes (streaming data plane,
/api/v1/objects/{bucket}/{key}). Object uploads are exempt from the request-size limit."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

import anyio
import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from strongroom.api.deps import context, platform
from strongroom.api.pagination import Page
from strongroom.api.streaming.threaded import threaded_body
from strongroom.core.context import RequestContext
from strongroom.core.errors import InvalidInput
from strongroom.platform import Platform
from strongroom.storage.models import (
    Bucket,
    BucketPolicy,
    ObjectListing,
    ObjectTags,
    ObjectVersion,
    VersionListing,
)

OBJECTS_PREFIX = "/api/v1/objects/"
router = APIRouter(prefix="/api/v1", tags=["storage"])
Ctx = Annotated[RequestContext, Depends(context)]
P = Annotated[Platform, Depends(platform)]
_CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBucket(Strict):
    name: str = Field(max_length=63)
    team: str = Field(max_length=64)
    key: str | None = Field(default=None, max_length=128)
    description: str = Field(default="", max_length=1024)


class PolicyBody(Strict):
    policy: str = Field(max_length=65536)


class TagsBody(Strict):
    key: str = Field(max_length=4096)
    version_id: str | None = Field(default=None, max_length=64)
    tags: dict[str, str]


class CopyBody(Strict):
    key: str = Field(max_length=4096)
    source_bucket: str = Field(max_length=63)
    source_key: str = Field(max_length=4096)
    source_version_id: str | None = Field(default=None, max_length=64)
    tags: dict[str, str] | None = None


# -- buckets ------------------------------------------------------------------------------------


@router.post("/buckets", status_code=201)
def create_bucket(body: CreateBucket, ctx: Ctx, p: P) -> Bucket:
    return p.storage.create_bucket(ctx, body.team, body.name, key=body.key, description=body.description)


@router.get("/buckets")
def list_buckets(ctx: Ctx, p: P, team: str | None = None) -> Page[Bucket]:
    return Page[Bucket](items=p.storage.list_buckets(ctx, team))


@router.get("/buckets/{bucket}")
def describe_bucket(bucket: str, ctx: Ctx, p: P) -> Bucket:
    return p.storage.describe_bucket(ctx, bucket)


@router.delete("/buckets/{bucket}", status_code=204)
def delete_bucket(bucket: str, ctx: Ctx, p: P) -> Response:
    p.storage.delete_bucket(ctx, bucket)
    return Response(status_code=204)


@router.put("/buckets/{bucket}/policy")
def put_bucket_policy(bucket: str, body: PolicyBody, ctx: Ctx, p: P) -> BucketPolicy:
    return p.storage.put_bucket_policy(ctx, bucket, body.policy)


@router.get("/buckets/{bucket}/policy")
def get_bucket_policy(bucket: str, ctx: Ctx, p: P) -> BucketPolicy:
    return p.storage.get_bucket_policy(ctx, bucket)


@router.delete("/buckets/{bucket}/policy", status_code=204)
def delete_bucket_policy(bucket: str, ctx: Ctx, p: P) -> Response:
    p.storage.put_bucket_policy(ctx, bucket, "")
    return Response(status_code=204)


@router.get("/buckets/{bucket}/list")
def list_objects(
    bucket: str,
    ctx: Ctx,
    p: P,
    prefix: str = "",
    delimiter: str = "",
    max_keys: Annotated[int, Query(ge=1, le=1000)] = 1000,
    page_token: str | None = None,
) -> ObjectListing:
    return p.storage.list_objects(
        ctx, bucket, prefix=prefix, delimiter=delimiter, max_keys=max_keys, page_token=page_token
    )


@router.get("/buckets/{bucket}/versions")
def list_versions(
    bucket: str,
    ctx: Ctx,
    p: P,
    prefix: str = "",
    max_keys: Annotated[int, Query(ge=1, le=1000)] = 1000,
    page_token: str | None = None,
) -> VersionListing:
    return p.storage.list_versions(ctx, bucket, prefix=prefix, max_keys=max_keys, page_token=page_token)


@router.get("/buckets/{bucket}/object")
def head_object(bucket: str, ctx: Ctx, p: P, key: str = "", version_id: str | None = None) -> ObjectVersion:
    return p.storage.head_object(ctx, bucket, key, version_id)


@router.get("/buckets/{bucket}/tags")
def get_object_tags(bucket: str, ctx: Ctx, p: P, key: str = "", version_id: str | None = None) -> ObjectTags:
    return p.storage.get_object_tags(ctx, bucket, key, version_id)


@router.put("/buckets/{bucket}/tags")
def put_object_tags(bucket: str, body: TagsBody, ctx: Ctx, p: P) -> ObjectTags:
    return p.storage.put_object_tags(ctx, bucket, body.key, body.tags, body.version_id)


@router.post("/buckets/{bucket}/copy", status_code=201)
def copy_object(bucket: str, body: CopyBody, ctx: Ctx, p: P) -> ObjectVersion:
    return p.storage.copy_object(
        ctx,
        body.source_bucket,
        body.source_key,
        bucket,
        body.key,
        source_version_id=body.source_version_id,
        tags=body.tags,
    )


# -- object bytes -------------------------------------------------------------------------------


class _Body:
    """The request body as a blocking iterator of ~1 MiB chunks, for a worker thread.

    The event loop reads the socket; the worker thread encrypts and writes. Chunks cross
    threads about once per MiB, so the hop costs nothing next to the work.
    """

    def __init__(self, request: Request) -> None:
        self._stream: AsyncIterator[bytes] = request.stream()
        self._done = False

    async def _next(self) -> bytes:
        buffer = bytearray()
        while len(buffer) < _CHUNK:
            try:
                piece = await self._stream.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            buffer += piece
        return bytes(buffer)

    def chunks(self) -> Iterator[bytes]:
        while not self._done:
            chunk = anyio.from_thread.run(self._next)
            if chunk:
                yield chunk


def _tags_header(value: str | None) -> dict[str, str] | None:
    """``x-sr-tags: a=1&b=2`` (URL-encoded, like S3's x-amz-tagging)."""
    if value is None:
        return None
    try:
        pairs = urllib.parse.parse_qsl(value, keep_blank_values=True, strict_parsing=bool(value))
    except ValueError as exc:
        raise InvalidInput("x-sr-tags must be URL-encoded name=value pairs", field="x-sr-tags") from exc
    return dict(pairs)


@router.put("/objects/{bucket}/{key:path}")
async def put_object(
    bucket: str,
    key: str,
    request: Request,
    ctx: Ctx,
    p: P,
    content_type: Annotated[str | None, Header()] = None,
    x_sr_tags: Annotated[str | None, Header()] = None,
    x_sr_sha256: Annotated[str | None, Header()] = None,
    x_sr_kms_key: Annotated[str | None, Header()] = None,
) -> ObjectVersion:
    """Upload a new version; the body streams (no size limit; memory stays at a few MiB)."""
    body = _Body(request)
    tags = _tags_header(x_sr_tags)

    def run() -> ObjectVersion:
        return p.storage.put_object(
            ctx,
            bucket,
            key,
            body.chunks(),
            tags=tags,
            content_type=content_type or "application/octet-stream",
            kms_key=x_sr_kms_key,
            expected_sha256=x_sr_sha256,
        )

    return await anyio.to_thread.run_sync(run)


def _parse_range(header: str | None) -> tuple[int, int | None] | None:
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if not match or (not match.group(1) and not match.group(2)):
        raise InvalidInput("Range must be 'bytes=start-end', 'bytes=start-' or 'bytes=-suffix'", field="Range")
    first, last = match.group(1), match.group(2)
    if not first:
        return -int(last), None  # suffix: resolved once the size is known
    return int(first), int(last) + 1 if last else None


@router.get("/objects/{bucket}/{key:path}", response_model=None)
def get_object(
    bucket: str,
    key: str,
    ctx: Ctx,
    p: P,
    version_id: str | None = None,
    range_header: Annotated[str | None, Header(alias="range")] = None,
) -> Response:
    """Download (a range of) a version; decrypted on the fly, one segment at a time."""
    wanted = _parse_range(range_header)
    start, end = wanted if wanted else (0, None)
    if start < 0:
        size = p.storage.head_object(ctx, bucket, key, version_id).size
        start, end = max(size + start, 0), None
    stream = p.storage.open_object(ctx, bucket, key, version_id=version_id, start=start, end=end)
    meta = stream.meta
    headers: dict[str, Any] = {
        "content-length": str(stream.length),
        "etag": f'"{meta.sha256}"',
        "accept-ranges": "bytes",
        "x-sr-version-id": meta.version_id,
        "x-sr-sha256": meta.sha256,
        "x-sr-size": str(meta.size),
        "x-sr-kms-key-id": meta.kms_key_id,
    }
    if meta.tags:
        headers["x-sr-tags"] = urllib.parse.urlencode(meta.tags)
    status = 200
    if wanted:
        status = 206
        headers["content-range"] = f"bytes {stream.start}-{max(stream.end - 1, stream.start)}/{meta.size}"
    body = threaded_body(stream.chunks)
    return StreamingResponse(body, status_code=status, headers=headers, media_type=meta.content_type)


@router.delete("/objects/{bucket}/{key:path}")
def delete_object(bucket: str, key: str, ctx: Ctx, p: P, version_id: str | None = None) -> ObjectVersion:
    return p.storage.delete_object(ctx, bucket, key, version_id)
