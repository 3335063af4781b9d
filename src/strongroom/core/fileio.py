"""Writing large files fast: O_DIRECT through an aligned buffer where the filesystem allows it."""

from __future__ import annotations

import fcntl
import mmap
import os
from collections.abc import Iterable

_DIRECT_BLOCK = 4 * 1024 * 1024
_ALIGN = 4096


def write_all(fd: int, chunks: Iterable[bytes]) -> int:
    """Write every chunk to ``fd`` and return the byte count. Data goes through an aligned buffer
    with O_DIRECT where the filesystem supports it (falling back to ordinary writes where it does
    not): on virtual disks the page cache's write-back throttling makes buffered writes of large
    files several times slower than direct ones."""
    direct = getattr(os, "O_DIRECT", 0)
    buffer: mmap.mmap | None = None
    filled = 0
    written = 0
    use_direct = False
    if direct:
        try:
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags | direct)
            buffer = mmap.mmap(-1, _DIRECT_BLOCK)
            use_direct = True
        except OSError:
            use_direct = False
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            if not use_direct or buffer is None:
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                    written += n
                continue
            while view:
                take = min(len(view), _DIRECT_BLOCK - filled)
                buffer[filled : filled + take] = view[:take]
                filled += take
                view = view[take:]
                if filled == _DIRECT_BLOCK:
                    try:
                        written += _write_view(fd, memoryview(buffer))
                    except OSError:  # the filesystem refused O_DIRECT after all: fall back
                        _clear_direct(fd)
                        use_direct = False
                        written += _write_view(fd, memoryview(buffer))
                    filled = 0
        if buffer is not None and filled:
            aligned = filled - filled % _ALIGN
            if use_direct and aligned:
                written += _write_view(fd, memoryview(buffer)[:aligned])
            else:
                aligned = 0
            _clear_direct(fd)
            written += _write_view(fd, memoryview(buffer)[aligned:filled])
    finally:
        if buffer is not None:
            buffer.close()
    return written


def _write_view(fd: int, view: memoryview) -> int:
    total = len(view)
    while view:
        n = os.write(fd, view)
        view = view[n:]
    return total


def _clear_direct(fd: int) -> None:
    direct = getattr(os, "O_DIRECT", 0)
    if direct:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~direct)
