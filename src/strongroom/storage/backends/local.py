"""The ``local`` blob store: one file per blob under a directory.

Writes go to a temporary file in the blob's directory, are fsync'ed, renamed into place and the
directory is fsync'ed, so after a crash a blob is either complete at its path or absent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from strongroom.core.errors import IntegrityError
from strongroom.core.fileio import fsync_directory, write_all
from strongroom.storage.blobstore import BlobReader, BlobStore

TMP_PREFIX = ".tmp-"
# Blobs are written with O_DIRECT, so reads start cold: keep this many reads ahead in flight.
_READ_AHEAD = 4


class LocalBlobStoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path


class _FileReader(BlobReader):
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.size = os.fstat(fd).st_size

    def read_at(self, offset: int, length: int) -> bytes:
        data = os.pread(self._fd, length, offset)
        os.posix_fadvise(self._fd, offset + length, _READ_AHEAD * length, os.POSIX_FADV_WILLNEED)
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class LocalBlobStore(BlobStore):
    name: ClassVar[str] = "local"

    def __init__(self, config: LocalBlobStoreConfig) -> None:
        self.config = config
        self.root = config.root
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, path: str) -> Path:
        # Paths come from the storage service; refuse anything else outright.
        parts = path.split("/")
        if not path or any(p in ("", ".", "..") or p.startswith(TMP_PREFIX) for p in parts):
            raise ValueError(f"invalid blob path {path!r}")
        return self.root.joinpath(*parts)

    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        target = self._path(path)
        directory = target.parent
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            fsync_directory(directory.parent)
        tmp = directory / f"{TMP_PREFIX}{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            written = write_all(fd, chunks)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        os.close(fd)
        os.replace(tmp, target)
        fsync_directory(directory)
        return written

    def open(self, path: str) -> BlobReader:
        try:
            return _FileReader(os.open(self._path(path), os.O_RDONLY))
        except FileNotFoundError as exc:
            raise IntegrityError(f"the stored ciphertext of this object is missing ({path})") from exc

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(path).unlink()

    def walk(self) -> Iterator[tuple[str, dt.datetime]]:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                full = Path(dirpath) / name
                try:
                    mtime = full.stat().st_mtime
                except FileNotFoundError:
                    continue
                yield full.relative_to(self.root).as_posix(), dt.datetime.fromtimestamp(mtime, dt.UTC)

    def remove_leftover(self, path: str) -> None:
        """Delete a temporary file a crashed write left behind (the sweeper calls this)."""
        full = self.root.joinpath(*path.split("/"))
        if full.name.startswith(TMP_PREFIX) and self.root in full.parents:
            with contextlib.suppress(FileNotFoundError):
                full.unlink()

    def describe(self) -> str:
        return f"local:{self.root}"
