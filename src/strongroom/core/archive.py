"""Safe reading of tar archives from untrusted sources (a model.tar.gz from a bucket, an upload).

Every member is checked before anything is extracted or read: no absolute path, no ``..``
component, no backslash or NUL in a name, no duplicate name, only regular files and directories
(no symbolic or hard links, devices or FIFOs), and size limits per member, in total, and on the
number of members. The decompressed stream itself is bounded too, so a compression bomb or a giant
extended header stops at the limit instead of filling memory or disk: headers are read one at a
time (an extended header over 64 KiB is refused before it is read), member data is skipped or
copied in 1 MiB chunks, never held whole.

Extraction does not rely on ``tarfile``'s extraction filters (CVE-2025-4517 bypasses
``filter="data"`` on Python before 3.11.13): this module writes each checked regular file itself,
creating every directory and file new (``O_EXCL | O_NOFOLLOW``) under an empty target, with mode
0644 or 0755 and no owner, set-uid or time taken from the archive.

This is the one reader for every archive the platform opens: model archives (batch transform,
endpoints, explanations), job code archives (unpacked by the job agent) and anything a user
uploads. :data:`MODEL_LIMITS` and :data:`CODE_LIMITS` are the limits those use.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

from strongroom.core.errors import InvalidInput

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# Room per member for the tar header and any extended (pax/GNU long name) headers; a single
# extended header larger than this is refused before it is read.
_HEADER_ALLOWANCE = 64 * KiB
_CHUNK = 1 * MiB


class ArchiveTooLarge(InvalidInput):
    """The archive breaks a size or count limit (it is refused, not truncated)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """Upper bounds applied to an archive before any of it is used."""

    max_members: int = 1000
    max_member_bytes: int = 256 * MiB
    max_total_bytes: int = 1 * GiB

    @property
    def max_stream_bytes(self) -> int:
        """How many decompressed bytes a conforming archive can span."""
        return self.max_total_bytes + (self.max_members + 2) * _HEADER_ALLOWANCE


@dataclass(frozen=True)
class ArchiveMember:
    """One checked member: a normalised relative path, its kind and size."""

    name: str
    is_dir: bool
    size: int


Source = str | Path | BinaryIO

#: Model archives (``model.tar.gz``): the model plus a few small files; nothing may pad it past the
#: model's own limit (a 512 MiB booster is far larger than any workshop model).
MODEL_LIMITS = ArchiveLimits(max_members=64, max_member_bytes=512 * MiB, max_total_bytes=512 * MiB)
#: Job code archives (``sourcedir.tar.gz``): many small files; unpacked into the job's scratch tmpfs.
CODE_LIMITS = ArchiveLimits(max_members=10_000, max_member_bytes=256 * MiB, max_total_bytes=1 * GiB)


def list_members(source: Source, limits: ArchiveLimits | None = None) -> list[ArchiveMember]:
    """Check every member of a tar archive (plain, gzip, bzip2 or xz) and list them.

    Args:
        source: a path, or a readable binary file object (read from its current position).
        limits: size and count limits; the defaults suit datasets and model archives.

    Raises:
        InvalidInput: the archive is unreadable or a member breaks a rule; the message names the
            member and the rule. Nothing has been extracted when this is raised.
    """
    with _open_tar(source, limits or ArchiveLimits()) as (tar, members):
        del tar
        return [ArchiveMember(_normalised(m.name), m.isdir(), m.size) for m in members]


def read_member(source: Source, name: str, limits: ArchiveLimits | None = None) -> bytes:
    """Check the whole archive, then return the bytes of one regular-file member.

    Raises:
        InvalidInput: the archive breaks a rule (see :func:`list_members`), or has no regular file
            called ``name``.
    """
    wanted = _normalised(name)
    with _open_tar(source, limits or ArchiveLimits()) as (tar, members):
        for member in members:
            if _normalised(member.name) == wanted and member.isfile():
                handle = tar.extractfile(member)
                if handle is None:  # pragma: no cover - isfile() members always have data
                    break
                return handle.read()
        present = ", ".join(_normalised(m.name) for m in members if m.isfile()) or "no files"
        raise InvalidInput(f"the archive has no file {wanted!r} (it holds: {present})", field="archive")


def extract_archive(source: Source, target: str | Path, limits: ArchiveLimits | None = None) -> list[Path]:
    """Check the whole archive, then extract it into ``target`` (created if needed, must be empty).

    Returns the paths of the extracted regular files.

    Raises:
        InvalidInput: the archive breaks a rule (see :func:`list_members`) or ``target`` is not an
            empty directory. On a rule violation nothing is extracted.
    """
    root = Path(target)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InvalidInput(f"extraction target {str(root)!r} must be an empty directory", field="target")
    with _open_tar(source, limits or ArchiveLimits()) as (tar, members):
        root.mkdir(parents=True, exist_ok=True)
        resolved = root.resolve()
        written = []
        for member in members:
            path = resolved.joinpath(*_normalised(member.name).split("/"))
            if member.isdir():
                _make_dirs(resolved, path)
                continue
            _make_dirs(resolved, path.parent)
            handle = tar.extractfile(member)
            if handle is None:  # pragma: no cover - checked members are regular files
                continue
            _write_new(path, handle, member.size, 0o755 if member.mode & 0o100 else 0o644)
            written.append(path)
        return written


def _make_dirs(root: Path, path: Path) -> None:
    """Create ``path`` and its parents under ``root``, refusing to follow anything not a directory."""
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        try:
            os.mkdir(current, 0o755)
        except FileExistsError as exc:
            # Only this extraction writes here (the target was empty), and it writes no links; a
            # name that is not a real directory means a member named a file as a folder.
            if current.is_symlink() or not current.is_dir():
                raise InvalidInput(
                    f"archive member path {str(current)!r} is both a file and a folder", field="archive"
                ) from exc


def _write_new(path: Path, data: IO[bytes], size: int, mode: int) -> None:
    """Write exactly ``size`` bytes (the checked header size) into a new file, in chunks."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as exc:
        raise InvalidInput(f"archive member {str(path)!r} would overwrite a file", field="archive") from exc
    with os.fdopen(fd, "wb") as out:
        remaining = size
        while remaining > 0:
            chunk = data.read(min(_CHUNK, remaining))
            if not chunk:
                raise InvalidInput(f"archive member {path.name!r} is truncated", field="archive")
            out.write(chunk)
            remaining -= len(chunk)


@contextmanager
def _open_tar(source: Source, limits: ArchiveLimits) -> Iterator[tuple[tarfile.TarFile, list[tarfile.TarInfo]]]:
    with _raw_handle(source, limits.max_stream_bytes) as raw:
        stream = _BoundedReader(_decompressed(raw), limits.max_stream_bytes)
        try:
            tar = tarfile.open(fileobj=stream, mode="r:", tarinfo=_CheckedTarInfo)  # noqa: SIM115 - closed below
        except _StreamTooLong as exc:
            raise ArchiveTooLarge(str(exc), field="archive") from exc
        except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as exc:
            raise InvalidInput(f"not a readable tar archive: {exc}", field="archive") from exc
        try:
            members = _checked_members(tar, limits)
            yield tar, members
        except _StreamTooLong as exc:
            raise ArchiveTooLarge(str(exc), field="archive") from exc
        except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as exc:
            raise InvalidInput(f"the archive is corrupt or truncated: {exc}", field="archive") from exc
        finally:
            tar.close()


def _checked_members(tar: tarfile.TarFile, limits: ArchiveLimits) -> list[tarfile.TarInfo]:
    members: list[tarfile.TarInfo] = []
    seen: set[str] = set()
    total = 0
    while True:
        member = tar.next()
        if member is None:
            break
        if len(members) >= limits.max_members:
            raise ArchiveTooLarge(
                f"the archive has more than {limits.max_members} members; refusing to read it", field="archive"
            )
        _check_name(member.name)
        kind = _kind(member)
        if kind is not None:
            raise InvalidInput(
                f"archive member {member.name!r} is a {kind}; only regular files and directories are allowed",
                field="archive",
            )
        if member.size > limits.max_member_bytes:
            raise ArchiveTooLarge(
                f"archive member {member.name!r} is {member.size} bytes, over the {limits.max_member_bytes}-byte "
                "limit per member",
                field="archive",
            )
        total += member.size
        if total > limits.max_total_bytes:
            raise ArchiveTooLarge(
                f"the archive's members add up to more than {limits.max_total_bytes} bytes", field="archive"
            )
        name = _normalised(member.name)
        if name in seen and not member.isdir():
            raise InvalidInput(
                f"archive member {name!r} appears twice (a later copy could replace the first)", field="archive"
            )
        seen.add(name)
        members.append(member)
    return members


def _check_name(name: str) -> None:
    if not name or "\x00" in name:
        raise InvalidInput("an archive member has an empty name or a NUL byte in its name", field="archive")
    if "\\" in name:
        raise InvalidInput(f"archive member {name!r} has a backslash in its name", field="archive")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidInput(f"archive member {name!r} has an absolute path", field="archive")
    if ".." in PurePosixPath(name).parts:
        raise InvalidInput(f"archive member {name!r} climbs out of the archive with '..'", field="archive")


def _kind(member: tarfile.TarInfo) -> str | None:
    """Why a member is refused, or None for regular files and directories."""
    if member.issym():
        return f"symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "device"
    if member.isfifo():
        return "FIFO"
    if member.issparse():
        return "sparse file"
    if member.isfile() or member.isdir():
        return None
    return "special file"


def _normalised(name: str) -> str:
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    return "/".join(parts)


@contextmanager
def _raw_handle(source: Source, limit: int) -> Iterator[BinaryIO]:
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"no archive file at {str(path)!r}", field="archive")
        with path.open("rb") as handle:
            yield handle
        return
    if not hasattr(source, "read"):
        raise InvalidInput("the archive must be a path or a binary file object", field="archive")
    if not _seekable(source):
        # tarfile needs to seek back to a member's data after checking all headers; spool a
        # one-way stream (a download) into memory first, within the limit.
        data = source.read(limit + 1)
        if len(data) > limit:
            raise ArchiveTooLarge(f"the archive is larger than {limit} bytes; refusing to read it", field="archive")
        yield io.BytesIO(data)
        return
    yield source


def _seekable(handle: BinaryIO) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _decompressed(raw: BinaryIO) -> BinaryIO:
    start = raw.tell()
    magic = raw.read(6)
    raw.seek(start)
    if magic.startswith(b"\x1f\x8b"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    if magic.startswith(b"BZh"):
        return cast(BinaryIO, bz2.BZ2File(raw, mode="rb"))
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(BinaryIO, lzma.LZMAFile(raw, mode="rb"))
    return raw


class _StreamTooLong(OSError):
    pass


_EXTENDED_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _CheckedTarInfo(tarfile.TarInfo):
    """Refuses an extended header (pax, GNU long name) over the allowance before reading it.

    ``tarfile`` reads such a header's whole body into memory; without this a single pax header
    could claim gigabytes.
    """

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_TYPES and self.size > _HEADER_ALLOWANCE:
            raise _StreamTooLong(
                f"an extended tar header claims {self.size} bytes, over the {_HEADER_ALLOWANCE}-byte limit; refusing it"
            )
        return super()._proc_member(tarfile_)  # type: ignore[misc]


class _BoundedReader(io.RawIOBase):
    """A read-only view of a (decompressed) stream that refuses to go past ``limit`` bytes."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self._origin = inner.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._inner.tell() - self._origin

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            offset += self._origin
        position = self._inner.seek(offset, whence) - self._origin
        self._check(position)
        return position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer)
        room = self._limit - self.tell()
        if room <= 0:
            self._check(self.tell() + 1)
        data = self._inner.read(min(len(view), room + 1))
        self._check(self.tell())
        view[: len(data)] = data
        return len(data)

    def _check(self, position: int) -> None:
        if position > self._limit:
            raise _StreamTooLong(
                f"the archive decompresses to more than {self._limit} bytes; refusing it (a compression bomb?)"
            )
