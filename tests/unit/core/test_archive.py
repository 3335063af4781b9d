"""Safe archive reading: every member is checked before anything is extracted."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from strongroom.core.archive import ArchiveLimits, extract_archive, list_members, read_member
from strongroom.core.errors import InvalidInput

Member = tuple[tarfile.TarInfo, bytes | None]


def regular(name: str, data: bytes = b"hello") -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    return info, None


def archive(*members: Member, compress: Callable[[bytes], bytes] = gzip.compress) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return compress(buffer.getvalue())


def test_a_safe_archive_lists_reads_and_extracts(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("model")
    folder.type = tarfile.DIRTYPE
    data = archive((folder, None), regular("model/xgboost-model", b"{}"), regular("./notes.txt", b"n"))
    path = tmp_path / "model.tar.gz"
    path.write_bytes(data)
    names = [(m.name, m.is_dir, m.size) for m in list_members(path)]
    assert names == [("model", True, 0), ("model/xgboost-model", False, 2), ("notes.txt", False, 1)]
    assert read_member(path, "model/xgboost-model") == b"{}"
    assert read_member(io.BytesIO(data), "notes.txt") == b"n"
    extracted = extract_archive(path, tmp_path / "out")
    assert [p.relative_to((tmp_path / "out").resolve()).as_posix() for p in extracted] == [
        "model/xgboost-model",
        "notes.txt",
    ]
    assert (tmp_path / "out" / "model" / "xgboost-model").read_bytes() == b"{}"


@pytest.mark.parametrize("compress", [gzip.compress, lambda b: b], ids=["gzip", "plain"])
def test_plain_and_compressed_tars_and_one_way_streams(compress: Callable[[bytes], bytes]) -> None:
    data = archive(regular("a.txt", b"abc"), compress=compress)

    class OneWay(io.RawIOBase):
        def __init__(self) -> None:
            self._inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            chunk = self._inner.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    assert read_member(OneWay(), "a.txt") == b"abc"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (regular("../evil.sh"), "climbs out"),
        (regular("model/../../evil.sh"), "climbs out"),
        (regular("/etc/cron.d/evil"), "absolute path"),
        (regular("C:/evil"), "absolute path"),
        (regular("dir\\..\\evil"), "backslash"),
        (special("xgboost-model", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (special("xgboost-model", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
        (special("dev", tarfile.CHRTYPE), "device"),
        (special("blk", tarfile.BLKTYPE), "device"),
        (special("pipe", tarfile.FIFOTYPE), "FIFO"),
    ],
)
def test_unsafe_members_are_refused_before_anything_is_extracted(tmp_path: Path, member: Member, message: str) -> None:
    data = archive(regular("first.txt"), member, regular("last.txt"))
    target = tmp_path / "out"
    with pytest.raises(InvalidInput, match=message) as err:
        extract_archive(io.BytesIO(data), target)
    assert err.value.field == "archive"
    assert not target.exists() or not any(target.iterdir())
    with pytest.raises(InvalidInput, match=message):
        read_member(io.BytesIO(data), "first.txt")


def test_duplicate_names_are_refused() -> None:
    data = archive(regular("xgboost-model", b"good"), regular("./xgboost-model", b"evil"))
    with pytest.raises(InvalidInput, match="appears twice"):
        read_member(io.BytesIO(data), "xgboost-model")


def test_size_and_count_limits() -> None:
    big = archive(regular("big.bin", b"x" * 2000))
    with pytest.raises(InvalidInput, match="limit per member"):
        list_members(io.BytesIO(big), ArchiveLimits(max_member_bytes=1000))
    many = archive(*(regular(f"f{i}.txt", b"x" * 600) for i in range(4)))
    with pytest.raises(InvalidInput, match="add up to more than"):
        list_members(io.BytesIO(many), ArchiveLimits(max_total_bytes=2000))
    with pytest.raises(InvalidInput, match="more than 3 members"):
        list_members(io.BytesIO(many), ArchiveLimits(max_members=3))


def test_a_giant_extended_header_is_stopped_at_the_stream_limit() -> None:
    info, data = regular("a.txt")
    info.pax_headers = {"comment": "z" * 400_000}  # 400 kB of header for a 5-byte file
    bomb = archive((info, data))
    assert len(bomb) < 5_000  # it compresses to almost nothing
    with pytest.raises(InvalidInput, match="extended tar header claims 400016 bytes"):
        list_members(io.BytesIO(bomb), ArchiveLimits(max_members=1, max_total_bytes=1000))


def test_not_an_archive_and_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="not a readable tar archive"):
        list_members(io.BytesIO(gzip.compress(b"just text, not a tar" * 40)))
    with pytest.raises(InvalidInput, match="no archive file"):
        list_members(tmp_path / "missing.tar.gz")
    with pytest.raises(InvalidInput, match="has no file 'other'"):
        read_member(io.BytesIO(archive(regular("a.txt"))), "other")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep").write_text("x")
    with pytest.raises(InvalidInput, match="empty directory") as err:
        extract_archive(io.BytesIO(archive(regular("a.txt"))), occupied)
    assert err.value.field == "target"
