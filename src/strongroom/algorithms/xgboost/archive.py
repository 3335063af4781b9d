"""``model.tar.gz``: written reproducibly, read defensively, never unpickled.

The archive holds one member, ``xgboost-model``: the booster in XGBoost's own UBJSON
format (JSON is accepted when reading). Writing fixes every header field (mtime 0, owner 0,
mode 0644, no gzip name or time), so identical boosters give byte-identical archives.

Reading never extracts to disk: each member is checked (plain file, relative name without
``..``, size limits) and read into memory; links, devices, absolute paths, extra members and
anything that is not a UBJSON/JSON booster are refused.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from strongroom.core.errors import IntegrityError, PayloadTooLarge

MODEL_MEMBER = "xgboost-model"
MAX_MODEL_BYTES = 1024 * 1024 * 1024
MAX_MEMBERS = 16


def archive_bytes(model: bytes) -> bytes:
    """A deterministic gzip'd tar holding ``model`` as ``xgboost-model``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(MODEL_MEMBER)
        info.size = len(model)
        info.mtime = 0
        info.mode = 0o644
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(model))
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _check_member(member: tarfile.TarInfo, max_bytes: int) -> None:
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith("/") or ".." in parts or not name or "\0" in name:
        raise IntegrityError(f"model archive member {name!r} has an unsafe path")
    if not member.isfile():
        raise IntegrityError(f"model archive member {name!r} is not a regular file (links and devices are refused)")
    if member.size > max_bytes:
        raise PayloadTooLarge(f"model archive member {name!r} is {member.size} bytes, over the {max_bytes} limit")


def read_model(archive: Path | bytes, *, max_bytes: int = MAX_MODEL_BYTES) -> bytes:
    """The booster bytes inside ``archive`` (a path or the archive's bytes), after every check.

    Raises:
        IntegrityError: not a gzip'd tar, an unsafe member, no ``xgboost-model``, or not UBJSON/JSON.
        PayloadTooLarge: a member or the decompressed archive is over ``max_bytes``.
    """
    source = io.BytesIO(archive) if isinstance(archive, bytes) else archive.open("rb")
    model: bytes | None = None
    try:
        # Bound decompression: read the tar stream through a size-limited gzip reader.
        with gzip.GzipFile(fileobj=source, mode="rb") as gz:
            data = gz.read(max_bytes + 64 * 1024 + 1)
            if len(data) > max_bytes + 64 * 1024:
                raise PayloadTooLarge(f"model archive decompresses to more than {max_bytes} bytes")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise IntegrityError(f"model archive has {len(members)} members; at most {MAX_MEMBERS} are allowed")
            for member in members:
                _check_member(member, max_bytes)
                if member.name.lstrip("./") == MODEL_MEMBER:
                    handle = tar.extractfile(member)
                    assert handle is not None
                    model = handle.read(max_bytes + 1)
    except (OSError, EOFError, tarfile.TarError) as exc:
        raise IntegrityError(f"model archive is not a readable tar.gz: {exc}") from exc
    finally:
        source.close()
    if model is None:
        raise IntegrityError(f"model archive has no {MODEL_MEMBER!r} member")
    if not model.startswith(b"{"):
        raise IntegrityError(f"{MODEL_MEMBER} is not an XGBoost UBJSON/JSON model (pickled models are refused)")
    return model
