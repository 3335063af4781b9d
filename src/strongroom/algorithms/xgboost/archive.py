"""``model.tar.gz``: written reproducibly, read defensively, never unpickled.

The archive holds one member, ``xgboost-model``: the booster in XGBoost's own UBJSON
format (JSON is accepted when reading). Writing fixes every header field (mtime 0, owner 0,
mode 0644, no gzip name or time), so identical boosters give byte-identical archives.

Reading never extracts to disk: the platform's one archive reader checks every member (plain
file, relative name without ``..``, size limits while streaming) before the model member is read
into memory; links, devices, absolute paths, padding past the limit and anything that is not a
UBJSON/JSON booster are refused.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

from strongroom.core.archive import MODEL_LIMITS, ArchiveLimits, ArchiveTooLarge, read_member
from strongroom.core.errors import IntegrityError, InvalidInput, PayloadTooLarge

MODEL_MEMBER = "xgboost-model"
MAX_MODEL_BYTES = MODEL_LIMITS.max_total_bytes


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


def read_model(archive: Path | bytes, *, max_bytes: int = MAX_MODEL_BYTES) -> bytes:
    """The booster bytes inside ``archive`` (a path or the archive's bytes), after every check.

    The archive goes through the platform's one archive reader (:mod:`strongroom.core.archive`):
    every member is checked before the model is read, and the decompressed stream is bounded while
    it streams, so a compression bomb or padding next to the model stops at ``max_bytes``.

    Raises:
        IntegrityError: not a tar archive, an unsafe member, no ``xgboost-model``, or not UBJSON/JSON.
        PayloadTooLarge: the archive's members add up to more than ``max_bytes``.
    """
    limits = ArchiveLimits(
        max_members=MODEL_LIMITS.max_members,
        max_member_bytes=min(max_bytes, MODEL_LIMITS.max_member_bytes),
        max_total_bytes=min(max_bytes, MODEL_LIMITS.max_total_bytes),
    )
    source = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    try:
        model = read_member(source, MODEL_MEMBER, limits)
    except ArchiveTooLarge as exc:
        raise PayloadTooLarge(f"model archive refused: {exc.detail}") from exc
    except InvalidInput as exc:
        raise IntegrityError(f"model archive refused: {exc.detail}") from exc
    if not model.startswith(b"{"):
        raise IntegrityError(f"{MODEL_MEMBER} is not an XGBoost UBJSON/JSON model (pickled models are refused)")
    return model
