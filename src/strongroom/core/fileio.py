"""Writing files: large ones fast (O_DIRECT through aligned buffers where the filesystem allows it),
small ones atomically and durably."""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol


class Digest(Protocol):
    """What :func:`write_all` feeds the written bytes to (a ``hashlib`` hash)."""

    def update(self, data: bytes | memoryview, /) -> None: ...


_DIRECT_BLOCK = 4 * 1024 * 1024
_ALIGN = 4096


def write_all(fd: int, chunks: Iterable[bytes], digest: Digest | None = None) -> int:
    """Write every chunk to ``fd`` and return the byte count; ``digest``, if given, is fed every byte.

    Data goes through aligned buffers with O_DIRECT where the filesystem supports it (falling back
    to ordinary writes where it does not): on virtual disks the page cache's write-back throttling
    makes buffered writes of large files several times slower than direct ones. Each full block is
    written by a helper thread while the caller fills the next, so the disk and whatever produces
    the chunks (the network, decryption) work at the same time; the helper also hashes each block
    it writes, so hashing leaves the producer's thread too.
    """
    if not _set_direct(fd):
        return _write_plain(fd, chunks, digest)
    writer = _DirectWriter(fd, digest)
    try:
        for chunk in chunks:
            writer.add(chunk)
        return writer.finish()
    finally:
        writer.close()


class _DirectWriter:
    """Fills one aligned block while the previous one is written (at most one write in flight)."""

    def __init__(self, fd: int, digest: Digest | None = None) -> None:
        self.fd = fd
        self.digest = digest
        self.buffers = [mmap.mmap(-1, _DIRECT_BLOCK)]
        self.current = self.buffers[0]
        self.filled = 0
        self.written = 0
        self.direct = True
        self.pool: ThreadPoolExecutor | None = None
        self.in_flight: tuple[Future[int], mmap.mmap] | None = None

    def add(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            take = min(len(view), _DIRECT_BLOCK - self.filled)
            self.current[self.filled : self.filled + take] = view[:take]
            self.filled += take
            view = view[take:]
            if self.filled == _DIRECT_BLOCK:
                self._hand_off()

    def _hand_off(self) -> None:
        full = self.current
        self._settle()
        if len(self.buffers) == 1:
            self.buffers.append(mmap.mmap(-1, _DIRECT_BLOCK))
        self.current = self.buffers[1] if full is self.buffers[0] else self.buffers[0]
        self.filled = 0
        if not self.direct:
            self.written += _write_view(self.fd, memoryview(full), self.digest)
            return
        if self.pool is None:  # small files never start the thread
            self.pool = ThreadPoolExecutor(1, thread_name_prefix="strongroom-write")
        self.in_flight = (self.pool.submit(_write_view, self.fd, memoryview(full), self.digest), full)

    def _settle(self) -> None:
        """Wait for the write in flight; if the filesystem refused O_DIRECT, write it plainly."""
        if self.in_flight is None:
            return
        future, buffer = self.in_flight
        self.in_flight = None
        try:
            self.written += future.result()
        except OSError:  # the filesystem refused O_DIRECT after all (nothing was written)
            _clear_direct(self.fd)
            self.direct = False
            self.written += _write_view(self.fd, memoryview(buffer), self.digest)

    def finish(self) -> int:
        self._settle()
        aligned = self.filled - self.filled % _ALIGN if self.direct else 0
        if aligned:
            self.written += _write_view(self.fd, memoryview(self.current)[:aligned], self.digest)
        _clear_direct(self.fd)
        self.written += _write_view(self.fd, memoryview(self.current)[aligned : self.filled], self.digest)
        return self.written

    def close(self) -> None:
        if self.in_flight is not None:  # an error cut the stream short: let the write end first
            with contextlib.suppress(Exception):
                self.in_flight[0].result()
            self.in_flight = None
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        for buffer in self.buffers:
            with contextlib.suppress(BufferError):  # a traceback may still hold a view; GC frees it
                buffer.close()


def _write_plain(fd: int, chunks: Iterable[bytes], digest: Digest | None = None) -> int:
    written = 0
    for chunk in chunks:
        written += _write_view(fd, memoryview(chunk), digest)
    return written


def _write_view(fd: int, view: memoryview, digest: Digest | None = None) -> int:
    """Write all of ``view``, then (it was written: an O_DIRECT refusal raises before) hash it."""
    whole = view
    total = len(view)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    if digest is not None:
        digest.update(whole)
    return total


def _set_direct(fd: int) -> bool:
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | direct)
    except OSError:
        return False
    return True


def _clear_direct(fd: int) -> None:
    direct = getattr(os, "O_DIRECT", 0)
    if direct:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~direct)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) so a reader sees the old file or all of the new one,
    and a crash after the return keeps the new one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_durably(path: Path, data: bytes) -> None:
    """Append ``data`` to ``path`` (created 0600 if missing) and fsync it before returning.

    ``O_APPEND`` makes each write land at the end even with several writers; a new file's
    directory entry is made durable too.
    """
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        _write_plain(fd, [data])
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_directory(path.parent)
