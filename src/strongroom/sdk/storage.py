"""SDK clients for keys and buckets, and the object transfer helpers ``Session`` exposes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from strongroom.core.errors import IntegrityError
from strongroom.core.fileio import write_all
from strongroom.kms.models import Key, KeyPolicy
from strongroom.storage.models import Bucket, BucketPolicy, ObjectListing, ObjectTags, ObjectVersion, VersionListing

if TYPE_CHECKING:
    from strongroom.sdk.session import Session

CHUNK = 1 << 20
Progress = Callable[[int], None]


def object_path(bucket: str, key: str) -> str:
    """The URL path of an object. Every character but unreserved ones is percent-encoded, dots
    too, so no HTTP layer can normalise ``a/../b`` into another key: the server sees the key."""
    return f"/api/v1/objects/{bucket}/" + urllib.parse.quote(key, safe="").replace(".", "%2E")


def _read_file(handle: IO[bytes], progress: Progress | None) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        if progress:
            progress(len(chunk))
        yield chunk


class Keys:
    """``session.keys``: a team's customer-managed keys."""

    def __init__(self, session: Session) -> None:
        self._s = session

    def create(
        self,
        team: str,
        alias: str,
        description: str = "",
        *,
        keyring: str | None = None,
        rotation_period_days: int | None = None,
        idempotency_key: str | None = None,
    ) -> Key:
        body = {
            "alias": alias,
            "description": description,
            "keyring": keyring,
            "rotation_period_days": rotation_period_days,
        }
        return self._s.call("POST", f"/api/v1/teams/{team}/keys", Key, json_body=body, idempotency_key=idempotency_key)

    def list(self, team: str) -> list[Key]:
        body = self._s.request("GET", f"/api/v1/teams/{team}/keys").json()
        return [Key.model_validate(i) for i in body["items"]]

    def describe(self, team: str, key: str) -> Key:
        return self._s.call("GET", f"/api/v1/teams/{team}/keys/{key}", Key)

    def enable(self, team: str, key: str) -> Key:
        return self._s.call("POST", f"/api/v1/teams/{team}/keys/{key}/enable", Key)

    def disable(self, team: str, key: str) -> Key:
        return self._s.call("POST", f"/api/v1/teams/{team}/keys/{key}/disable", Key)

    def rotate(self, team: str, key: str) -> Key:
        return self._s.call("POST", f"/api/v1/teams/{team}/keys/{key}/rotate", Key)

    def set_rotation(self, team: str, key: str, rotation_period_days: int | None) -> Key:
        body = {"rotation_period_days": rotation_period_days}
        return self._s.call("PUT", f"/api/v1/teams/{team}/keys/{key}/rotation", Key, json_body=body)

    def schedule_deletion(self, team: str, key: str, waiting_period_seconds: int | None = None) -> Key:
        body = {"waiting_period_seconds": waiting_period_seconds}
        return self._s.call("POST", f"/api/v1/teams/{team}/keys/{key}/schedule-deletion", Key, json_body=body)

    def cancel_deletion(self, team: str, key: str) -> Key:
        return self._s.call("POST", f"/api/v1/teams/{team}/keys/{key}/cancel-deletion", Key)

    def create_alias(self, team: str, key: str, alias: str) -> Key:
        return self._s.call("POST", f"/api/v1/teams/{team}/keys/{key}/aliases", Key, json_body={"alias": alias})

    def delete_alias(self, team: str, alias: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{team}/key-aliases/{alias}")

    def put_policy(self, team: str, key: str, policy: str) -> KeyPolicy:
        return self._s.call("PUT", f"/api/v1/teams/{team}/keys/{key}/policy", KeyPolicy, json_body={"policy": policy})

    def get_policy(self, team: str, key: str) -> KeyPolicy:
        return self._s.call("GET", f"/api/v1/teams/{team}/keys/{key}/policy", KeyPolicy)

    def generate_data_key(
        self, team: str, key: str, encryption_context: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """``{"plaintext": bytes, "ciphertext_blob": bytes, "key_id", "key_version"}``."""
        body = self._s.request(
            "POST",
            f"/api/v1/teams/{team}/keys/{key}/generate-data-key",
            json_body={"encryption_context": encryption_context or {}},
        ).json()
        body["plaintext"] = base64.b64decode(body["plaintext"])
        body["ciphertext_blob"] = base64.b64decode(body["ciphertext_blob"])
        return dict(body)

    def decrypt(self, team: str, ciphertext_blob: bytes, encryption_context: dict[str, str] | None = None) -> bytes:
        body = self._s.request(
            "POST",
            f"/api/v1/teams/{team}/decrypt",
            json_body={
                "ciphertext_blob": base64.b64encode(ciphertext_blob).decode(),
                "encryption_context": encryption_context or {},
            },
        ).json()
        return base64.b64decode(body["plaintext"])


class Buckets:
    """``session.buckets``: buckets and the objects in them."""

    def __init__(self, session: Session) -> None:
        self._s = session

    # -- buckets ----------------------------------------------------------------------------

    def create(
        self, name: str, team: str, *, key: str | None = None, description: str = "", idempotency_key: str | None = None
    ) -> Bucket:
        body = {"name": name, "team": team, "key": key, "description": description}
        return self._s.call("POST", "/api/v1/buckets", Bucket, json_body=body, idempotency_key=idempotency_key)

    def list(self, team: str | None = None) -> list[Bucket]:
        body = self._s.request("GET", "/api/v1/buckets", params={"team": team}).json()
        return [Bucket.model_validate(i) for i in body["items"]]

    def describe(self, name: str) -> Bucket:
        return self._s.call("GET", f"/api/v1/buckets/{name}", Bucket)

    def delete(self, name: str) -> None:
        self._s.request("DELETE", f"/api/v1/buckets/{name}")

    def put_policy(self, name: str, policy: str) -> BucketPolicy:
        return self._s.call("PUT", f"/api/v1/buckets/{name}/policy", BucketPolicy, json_body={"policy": policy})

    def get_policy(self, name: str) -> BucketPolicy:
        return self._s.call("GET", f"/api/v1/buckets/{name}/policy", BucketPolicy)

    def delete_policy(self, name: str) -> None:
        self._s.request("DELETE", f"/api/v1/buckets/{name}/policy")

    # -- objects ----------------------------------------------------------------------------

    def put_object(
        self,
        bucket: str,
        key: str,
        data: bytes | IO[bytes] | Iterable[bytes] | os.PathLike[str],
        *,
        tags: dict[str, str] | None = None,
        content_type: str | None = None,
        kms_key: str | None = None,
        sha256: str | None = None,
        progress: Progress | None = None,
    ) -> ObjectVersion:
        """Upload a new version, streaming: a path or file is read 1 MiB at a time."""
        headers: dict[str, str] = {"content-type": content_type or "application/octet-stream"}
        if tags:
            headers["x-sr-tags"] = urllib.parse.urlencode(tags)
        if kms_key:
            headers["x-sr-kms-key"] = kms_key
        if sha256:
            headers["x-sr-sha256"] = sha256
        with contextlib.ExitStack() as stack:
            content: Any
            if isinstance(data, os.PathLike):
                handle = stack.enter_context(Path(data).open("rb"))
                headers["content-length"] = str(os.fstat(handle.fileno()).st_size)
                content = _read_file(handle, progress)
            elif isinstance(data, bytes | bytearray | memoryview):
                content = bytes(data)
                if progress:
                    progress(len(content))
            elif hasattr(data, "read"):
                content = _read_file(data, progress)  # type: ignore[arg-type]
            else:
                content = iter(data)
            response = self._s.request_raw("PUT", object_path(bucket, key), content=content, headers=headers)
        return ObjectVersion.model_validate(response.json())

    @contextlib.contextmanager
    def stream(
        self, bucket: str, key: str, *, version_id: str | None = None, start: int | None = None, end: int | None = None
    ) -> Iterator[tuple[httpx.Response, Iterator[bytes]]]:
        """The response (headers) and its body chunks; ``end`` is exclusive."""
        headers = {}
        if start is not None or end is not None:
            first = start or 0
            headers["range"] = f"bytes={first}-{'' if end is None else max(end - 1, first)}"
        with self._s.stream_raw(
            "GET", object_path(bucket, key), params={"version_id": version_id}, headers=headers
        ) as r:
            yield r, r.iter_bytes()  # as the connection delivers them: no re-chunking copy

    def get_object(
        self, bucket: str, key: str, *, version_id: str | None = None, start: int | None = None, end: int | None = None
    ) -> bytes:
        with self.stream(bucket, key, version_id=version_id, start=start, end=end) as (response, chunks):
            data = b"".join(chunks)
            whole = start is None and end is None
            if whole and hashlib.sha256(data).hexdigest() != response.headers.get("x-sr-sha256"):
                raise IntegrityError(f"sr://{bucket}/{key}: the download does not match its SHA-256 (cut short?)")
            return data

    def download(
        self,
        bucket: str,
        key: str,
        path: str | os.PathLike[str],
        *,
        version_id: str | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Stream an object to ``path`` (through a temporary file, checked against its SHA-256)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.part")
        digest = hashlib.sha256()

        def counted(chunks: Iterable[bytes]) -> Iterator[bytes]:
            for chunk in chunks:
                if progress:
                    progress(len(chunk))
                yield chunk

        try:
            with self.stream(bucket, key, version_id=version_id) as (response, chunks):
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)  # the umask applies
                try:  # hashed as written, by write_all's writer thread for large files
                    write_all(fd, counted(chunks) if progress else chunks, digest)
                finally:
                    os.close(fd)
                expected = response.headers.get("x-sr-sha256")
            if digest.hexdigest() != expected:
                raise IntegrityError(f"sr://{bucket}/{key}: the download does not match its SHA-256 (cut short?)")
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return str(target)

    def head_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        params = {"key": key, "version_id": version_id}
        return self._s.call("GET", f"/api/v1/buckets/{bucket}/object", ObjectVersion, params=params)

    def delete_object(self, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        params = {"version_id": version_id}
        return self._s.call("DELETE", object_path(bucket, key), ObjectVersion, params=params)

    def copy_object(
        self,
        source_bucket: str,
        source_key: str,
        bucket: str,
        key: str,
        *,
        source_version_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ObjectVersion:
        body = {
            "key": key,
            "source_bucket": source_bucket,
            "source_key": source_key,
            "source_version_id": source_version_id,
            "tags": tags,
        }
        return self._s.call("POST", f"/api/v1/buckets/{bucket}/copy", ObjectVersion, json_body=body)

    def list_objects(
        self, bucket: str, prefix: str = "", *, delimiter: str = "", max_keys: int = 1000, page_token: str | None = None
    ) -> ObjectListing:
        """One page of a listing (``next_page_token`` says whether there is more)."""
        params = {"prefix": prefix, "delimiter": delimiter, "max_keys": max_keys, "page_token": page_token}
        return self._s.call("GET", f"/api/v1/buckets/{bucket}/list", ObjectListing, params=params)

    def iter_objects(self, bucket: str, prefix: str = "", *, delimiter: str = "") -> Iterator[ObjectVersion | str]:
        """Every object (and, with a delimiter, every common prefix as a string), page by page."""
        token: str | None = None
        while True:
            page = self.list_objects(bucket, prefix, delimiter=delimiter, page_token=token)
            yield from page.common_prefixes
            yield from page.objects
            token = page.next_page_token
            if not token:
                return

    def list_versions(self, bucket: str, prefix: str = "", *, page_token: str | None = None) -> VersionListing:
        params = {"prefix": prefix, "page_token": page_token}
        return self._s.call("GET", f"/api/v1/buckets/{bucket}/versions", VersionListing, params=params)

    def get_tags(self, bucket: str, key: str, version_id: str | None = None) -> ObjectTags:
        params = {"key": key, "version_id": version_id}
        return self._s.call("GET", f"/api/v1/buckets/{bucket}/tags", ObjectTags, params=params)

    def put_tags(self, bucket: str, key: str, tags: dict[str, str], version_id: str | None = None) -> ObjectTags:
        body = {"key": key, "version_id": version_id, "tags": tags}
        return self._s.call("PUT", f"/api/v1/buckets/{bucket}/tags", ObjectTags, json_body=body)
