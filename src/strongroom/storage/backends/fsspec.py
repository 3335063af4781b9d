"""The ``fsspec`` blob store: blobs on any fsspec filesystem (s3fs for S3/MinIO, gcsfs, ...).

Each blob is written once to its final path. On object stores a PUT (or a completed multipart
upload) is atomic, and on any filesystem the blob is invisible until its database row commits,
so a crash leaves at most an unreferenced blob for the sweeper.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from strongroom.core.errors import IntegrityError
from strongroom.storage.blobstore import BlobReader, BlobStore


class FsspecBlobStoreConfig(BaseModel):
    """``url`` is an fsspec URL of the root (``s3://bucket/strongroom``, ``memory://blobs``);
    ``options`` are passed to the filesystem (e.g. ``endpoint_url`` and ``key``/``secret`` for s3fs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    options: dict[str, Any] = Field(default_factory=dict)


class _FsspecReader(BlobReader):
    def __init__(self, handle: Any, size: int) -> None:
        self._handle = handle
        self._lock = threading.Lock()
        self.size = size

    def read_at(self, offset: int, length: int) -> bytes:
        with self._lock:
            self._handle.seek(offset)
            return bytes(self._handle.read(length))

    def close(self) -> None:
        self._handle.close()


class FsspecBlobStore(BlobStore):
    name: ClassVar[str] = "fsspec"

    def __init__(self, config: FsspecBlobStoreConfig, fs: Any | None = None) -> None:
        import fsspec

        self.config = config
        if fs is None:
            fs, root = fsspec.core.url_to_fs(config.url, **config.options)
        else:
            root = fs._strip_protocol(config.url)
        self.fs = fs
        self.root = str(root).rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)

    def _path(self, path: str) -> str:
        parts = path.split("/")
        if not path or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid blob path {path!r}")
        return f"{self.root}/{path}"

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        full = self._path(path)
        parent = full.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        written = 0
        try:
            with self.fs.open(full, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    written += len(chunk)
        except BaseException:
            self.delete(path)
            raise
        return written

    def open(self, path: str) -> BlobReader:
        full = self._path(path)
        try:
            size = int(self.fs.size(full))
            handle = self.fs.open(full, "rb", block_size=1 << 20, cache_type="none")
        except FileNotFoundError as exc:
            raise IntegrityError(f"the stored ciphertext of this object is missing ({path})") from exc
        return _FsspecReader(handle, size)

    def delete(self, path: str) -> None:
        full = self._path(path)
        try:
            self.fs.rm_file(full)
        except FileNotFoundError:
            return

    def walk(self) -> Iterator[tuple[str, dt.datetime]]:
        for full in self.fs.find(self.root):
            try:
                modified = self.fs.modified(full)
            except (NotImplementedError, FileNotFoundError):
                modified = dt.datetime.now(dt.UTC)
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=dt.UTC)
            yield str(full)[len(self.root) + 1 :], modified

    def describe(self) -> str:
        return f"fsspec:{self.config.url}"
