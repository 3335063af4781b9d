"""The ``BlobStore`` interface: where the (already encrypted) bytes of object versions live.

Blob paths are made by the storage service (``<bucket id>/<xx>/<version id>``), never from
user input, and each path is written once. A blob is invisible until the database row that
names it commits, so a crash mid-write leaves at most an unreferenced blob (swept later),
never a partial object.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Iterator
from typing import ClassVar


class BlobReader(abc.ABC):
    """Random access to one stored blob."""

    size: int

    @abc.abstractmethod
    def read_at(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer only at the end of the blob)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the handle."""

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlobStore(abc.ABC):
    name: ClassVar[str]

    @abc.abstractmethod
    def write(self, path: str, chunks: Iterable[bytes]) -> int:
        """Store ``chunks`` durably at ``path`` (all or nothing); return the byte count."""

    @abc.abstractmethod
    def open(self, path: str) -> BlobReader:
        """Open ``path`` for reading; ``IntegrityError`` if it is missing."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove ``path`` if it exists."""

    @abc.abstractmethod
    def walk(self) -> Iterator[tuple[str, dt.datetime]]:
        """Every stored blob (and leftover temporary file) with its modification time."""

    def describe(self) -> str:
        """Where the blobs are, for status pages and logs."""
        return self.name
