"""write_all: every byte lands, in order, whether the filesystem takes O_DIRECT or not."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.core import fileio

BLOCK = fileio._DIRECT_BLOCK


def _pieces(data: bytes, seed: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    at = 0
    while at < len(data):
        size = rng.choice([1, 7, 4095, 4096, 65536, 1 << 20, BLOCK + 3])
        yield data[at : at + size]
        at += size


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345])
def test_every_byte_lands_in_order(tmp_path: Path, size: int) -> None:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "out.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        assert fileio.write_all(fd, _pieces(data, size)) == size
    finally:
        os.close(fd)
    assert path.read_bytes() == data


def test_a_filesystem_that_refuses_direct_writes_gets_ordinary_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every filesystem here takes O_DIRECT, so the refusal some (network filesystems) give is
    simulated: a write on a descriptor with O_DIRECT set fails with EINVAL and writes nothing."""
    real_write = os.write

    def refusing_write(fd: int, data: bytes | memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", refusing_write)
    data = random.Random(1).randbytes(2 * BLOCK + 999)
    path = tmp_path / "plain.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        assert fileio.write_all(fd, _pieces(data, 2)) == len(data)
    finally:
        os.close(fd)
    monkeypatch.undo()
    assert path.read_bytes() == data


def test_large_writes_overlap_the_next_block_and_leave_no_thread(tmp_path: Path) -> None:
    seen: set[str] = set()

    def chunks() -> Iterator[bytes]:
        for _ in range(4):
            seen.update(t.name for t in threading.enumerate())
            yield b"x" * BLOCK

    fd = os.open(tmp_path / "big.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        assert fileio.write_all(fd, chunks()) == 4 * BLOCK
    finally:
        os.close(fd)
    assert any(name.startswith("strongroom-write") for name in seen)
    assert not any(t.name.startswith("strongroom-write") for t in threading.enumerate())


def test_a_failing_source_stops_cleanly_and_raises(tmp_path: Path) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"y" * (2 * BLOCK)
        raise ConnectionError("the network went away")

    fd = os.open(tmp_path / "cut.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with pytest.raises(ConnectionError, match="went away"):
            fileio.write_all(fd, chunks())
    finally:
        os.close(fd)
    assert not any(t.name.startswith("strongroom-write") for t in threading.enumerate())


def test_a_write_error_reaches_the_caller(tmp_path: Path) -> None:
    read_only = os.open(tmp_path / "ro.bin", os.O_RDONLY | os.O_CREAT, 0o600)
    try:
        with pytest.raises(OSError):
            fileio.write_all(read_only, [b"z" * (2 * BLOCK)])
    finally:
        os.close(read_only)


@pytest.mark.parametrize("size", [0, 4095, BLOCK, 3 * BLOCK + 12345])
@pytest.mark.parametrize("direct", [True, False])
def test_the_digest_sees_exactly_the_bytes_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int, direct: bool
) -> None:
    """The SDK's download checks an object's SHA-256 on what write_all hashed: every byte, once, in order."""
    if not direct:
        monkeypatch.setattr(fileio, "_set_direct", lambda fd: False)
    data = random.Random(size).randbytes(size)
    path = tmp_path / "out.bin"
    digest = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        fileio.write_all(fd, _pieces(data, size + 1), digest)
    finally:
        os.close(fd)
    assert path.read_bytes() == data
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
