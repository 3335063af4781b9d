"""The ``sr://`` fsspec filesystem: pandas, pyarrow and ``fsspec.open`` read and write team
objects with the caller's credentials (found as ``strongroom.Session()`` finds them).

Registered as the fsspec protocol ``sr`` (entry point), so ``pd.read_csv("sr://risk-data/raw/
data.csv")`` just works. Reads are ranged GETs (only the segments needed are decrypted);
writes stream one upload per file, in constant memory.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from strongroom.core.errors import NotFound, StrongroomError
from strongroom.sdk.session import Session
from strongroom.storage.models import ObjectVersion


class StrongroomFileSystem(AbstractFileSystem):
    """``sr://bucket/key``. Folders are key prefixes (``/``-delimited), as in S3."""

    protocol = "sr"
    root_marker = ""
    # Credentials come from the environment at call time; a cached instance would keep using
    # an old platform address or token.
    cachable = False

    def __init__(self, session: Session | None = None, **session_options: Any) -> None:
        super().__init__(**session_options)
        self._session = session
        self._owns_session = session is None
        self._options = session_options

    def __del__(self) -> None:
        session = getattr(self, "_session", None)
        if getattr(self, "_owns_session", False) and session is not None:
            session.close()

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(**self._options)
        return self._session

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        text = str(path)
        if text.startswith("sr://"):
            text = text[len("sr://") :]
        return text.rstrip("/")

    @staticmethod
    def _split(path: str) -> tuple[str, str]:
        bucket, _, key = path.partition("/")
        return bucket, key

    @staticmethod
    def _entry(meta: ObjectVersion) -> dict[str, Any]:
        return {
            "name": f"{meta.bucket}/{meta.key}",
            "size": meta.size,
            "type": "file",
            "version_id": meta.version_id,
            "sha256": meta.sha256,
            "tags": meta.tags,
            "created": meta.created_at.timestamp(),
        }

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        path = self._strip_protocol(path)
        bucket, key = self._split(path)
        if not bucket:
            entries = [{"name": b.name, "size": 0, "type": "directory"} for b in self.session.buckets.list()]
        else:
            prefix = f"{key}/" if key else ""
            entries = []
            for item in self.session.buckets.iter_objects(bucket, prefix, delimiter="/"):
                if isinstance(item, str):
                    entries.append({"name": f"{bucket}/{item.rstrip('/')}", "size": 0, "type": "directory"})
                else:
                    entries.append(self._entry(item))
            if not entries and key:
                try:
                    entries = [self._entry(self.session.buckets.head_object(bucket, key))]
                except NotFound:
                    raise FileNotFoundError(path) from None
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        path = self._strip_protocol(path)
        bucket, key = self._split(path)
        if not key:
            return {"name": bucket, "size": 0, "type": "directory"}
        try:
            return self._entry(self.session.buckets.head_object(bucket, key, kwargs.get("version_id")))
        except (NotFound, StrongroomError) as exc:
            if not isinstance(exc, NotFound) and exc.field != "key":
                raise
        listing = self.session.buckets.list_objects(bucket, key + "/", max_keys=1)
        if listing.objects or listing.common_prefixes:
            return {"name": path, "size": 0, "type": "directory"}
        raise FileNotFoundError(path)

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None, **kwargs: Any) -> Any:
        return _ObjectFile(self, self._strip_protocol(path), mode, block_size=block_size or (4 << 20), **kwargs)

    def cat_file(self, path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        bucket, key = self._split(self._strip_protocol(path))
        return self.session.buckets.get_object(bucket, key, version_id=kwargs.get("version_id"), start=start, end=end)

    def pipe_file(self, path: str, value: bytes, **kwargs: Any) -> None:
        bucket, key = self._split(self._strip_protocol(path))
        self.session.buckets.put_object(bucket, key, value, tags=kwargs.get("tags"))

    def rm_file(self, path: str) -> None:
        bucket, key = self._split(self._strip_protocol(path))
        self.session.buckets.delete_object(bucket, key)

    def _rm(self, path: str) -> None:
        self.rm_file(path)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        b1, k1 = self._split(self._strip_protocol(path1))
        b2, k2 = self._split(self._strip_protocol(path2))
        self.session.buckets.copy_object(b1, k1, b2, k2)

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        return None  # folders are key prefixes; buckets are created by the team admin

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        return None

    def created(self, path: str) -> Any:
        import datetime as dt

        return dt.datetime.fromtimestamp(self.info(path)["created"], dt.UTC)

    def modified(self, path: str) -> Any:
        return self.created(path)


class _ObjectFile(AbstractBufferedFile):
    """Reads fetch byte ranges; writes feed one streaming PUT through a bounded queue."""

    def __init__(self, fs: StrongroomFileSystem, path: str, mode: str, **kwargs: Any) -> None:
        self._tags = kwargs.pop("tags", None)
        self._version_id = kwargs.pop("version_id", None)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.result: ObjectVersion | None = None
        if "r" in mode and self._version_id is not None:
            kwargs["size"] = fs.info(path, version_id=self._version_id)["size"]
        super().__init__(fs, path, mode, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        bucket, key = StrongroomFileSystem._split(self.path)
        data: bytes = self.fs.session.buckets.get_object(bucket, key, version_id=self._version_id, start=start, end=end)
        return data

    def _initiate_upload(self) -> None:
        bucket, key = StrongroomFileSystem._split(self.path)

        def body() -> Any:
            while (chunk := self._queue.get()) is not None:
                yield chunk

        def run() -> None:
            try:
                self.result = self.fs.session.buckets.put_object(bucket, key, body(), tags=self._tags)
            except BaseException as exc:
                self._error = exc
                while self._queue.get() is not None:  # unblock the writer
                    pass

        self._thread = threading.Thread(target=run, name="sr-upload", daemon=True)
        self._thread.start()

    def _upload_chunk(self, final: bool = False) -> bool:
        if self._thread is None:
            self._initiate_upload()
        data = self.buffer.getvalue()
        if data:
            self._queue.put(data)
        if final:
            self._queue.put(None)
            assert self._thread is not None
            self._thread.join()
            if self._error is not None:
                raise self._error
        return True
