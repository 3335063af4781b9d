"""Loading XGBoost models safely: XGBoost's own formats only, from bytes or a ``model.tar.gz``.

The platform never unpickles anything from a bucket (security invariant 5). A training job's
``model.tar.gz`` holds the booster saved with ``Booster.save_model`` as UBJSON (the default) or
JSON; anything else, a pickle or joblib file in particular, is refused before XGBoost sees it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import xgboost as xgb

from strongroom.core.archive import MODEL_LIMITS, ArchiveLimits, list_members, read_member
from strongroom.core.errors import InvalidInput

MODEL_MEMBER = "xgboost-model"

_UBJSON_KEY_MARKERS = frozenset(b"iUIlL#$}")
_JSON_WHITESPACE = b" \t\r\n"

_FIX = (
    "save the model with booster.save_model('xgboost-model') (UBJSON) or a .json name, "
    "and pack that file as 'xgboost-model' in model.tar.gz"
)


def model_format(data: bytes, name: str = "model") -> str:
    """Say which XGBoost format ``data`` is in: ``"ubj"`` or ``"json"``.

    Only the first bytes are looked at; this is a gate before parsing, not a parser.

    Raises:
        InvalidInput: the bytes are not UBJSON or JSON; the message says what they look like
            (a Python pickle, a joblib/zlib file, XGBoost's removed legacy binary format) and how
            to save the model instead.
    """
    head = bytes(data[:64])
    if head[:1] == b"{":
        following = head[1:2]
        if following and following[0] in _UBJSON_KEY_MARKERS:
            return "ubj"
        # XGBoost's own reader decides on the first byte too, so JSON must start with "{" exactly.
        if head[1:].lstrip(_JSON_WHITESPACE)[:1] in (b'"', b"}"):
            return "json"
    raise InvalidInput(f"{name!r} is {_describe(head)}, not an XGBoost UBJSON or JSON model: {_FIX}", field="model")


def _describe(head: bytes) -> str:
    if not head:
        return "empty"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return f"a Python pickle (protocol {head[1]}), which Strongroom never loads because unpickling runs code"
    if head[:1] in (b"(", b"c", b"]", b"}", b"\x80"):
        return "what looks like a Python pickle, which Strongroom never loads because unpickling runs code"
    if head[:1] == b"\x78":
        return "zlib-compressed data (a joblib dump of a pickle?), which Strongroom never loads"
    if head[:4] == b"binf" or head[:4] == b"\x00\x00\x00\x3f":
        return "XGBoost's legacy binary format, which current XGBoost no longer reads"
    if head[:2] == b"PK":
        return "a zip file"
    if head[:2] == b"\x1f\x8b":
        return "gzip-compressed data (an archive inside the archive?)"
    return "an unknown format"


def load_booster(data: bytes | bytearray, name: str = "model") -> xgb.Booster:
    """Load a booster from XGBoost UBJSON or JSON bytes, after checking the format.

    Raises:
        InvalidInput: the bytes are another format (see :func:`model_format`) or XGBoost cannot
            parse them.
    """
    model_format(bytes(data[:64]), name)
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
    except xgb.core.XGBoostError as exc:
        lines = str(exc).strip().splitlines() or ["unknown error"]
        reason = re.sub(r"^\[[\d:]+\] \S+: ", "", lines[0])  # drop XGBoost's time stamp and source location
        raise InvalidInput(f"{name!r} is not a valid XGBoost model: {reason}", field="model") from exc
    return booster


def load_booster_from_tar(
    source: str | Path | BinaryIO, member: str | None = None, limits: ArchiveLimits = MODEL_LIMITS
) -> xgb.Booster:
    """Load the booster from a training job's ``model.tar.gz`` (a path or any binary file object).

    Every archive member is checked first (no ``..``, absolute paths, links or devices; size and
    count limits); then the model member is read in memory, never extracted to disk, and loaded
    only if it is XGBoost UBJSON or JSON.

    Args:
        source: path of the archive, or a readable binary file object (e.g. a download stream).
        member: the model's name in the archive; by default ``xgboost-model``, or the archive's
            only file.
        limits: archive limits; the default allows a 512 MiB model.

    Raises:
        InvalidInput: an unsafe or unreadable archive, no model member, or a member that is not an
            XGBoost model (a pickle in particular); the message says which and how to fix it.
    """
    source = _seekable_source(source, limits)
    if member is None:
        start = None if isinstance(source, str | Path) else source.tell()
        files = [m.name for m in list_members(source, limits) if not m.is_dir]
        if MODEL_MEMBER in files:
            member = MODEL_MEMBER
        elif len(files) == 1:
            member = files[0]
        else:
            listed = ", ".join(files) or "no files"
            raise InvalidInput(
                f"model.tar.gz has no {MODEL_MEMBER!r} and not exactly one file (it holds: {listed}); "
                "name the model member",
                field="member",
            )
        if start is not None and not isinstance(source, str | Path):
            source.seek(start)
    data = read_member(source, member, limits)
    return load_booster(data, member)


def name_features(booster: xgb.Booster, names: Sequence[str] | str | None) -> xgb.Booster:
    """``booster`` with its features named ``names`` (a list, or a comma-separated string), in memory
    only: for a model trained on headerless data, so a file's columns can be matched and the
    explanation named. ``None`` leaves the booster as it is.

    Raises:
        InvalidInput: a wrong count or a duplicate, or names that differ from those the model records.
    """
    if names is None:
        return booster
    wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n) for n in names]
    count = booster.num_features()
    if len(wanted) != count or not all(wanted) or len(set(wanted)) != len(wanted):
        raise InvalidInput(
            f"feature_names must be {count} distinct names, one per model feature in order; got {len(wanted)}",
            field="feature_names",
        )
    if booster.feature_names and list(booster.feature_names) != wanted:
        raise InvalidInput(
            f"the model already names its features ({', '.join(booster.feature_names[:5])}, ...) and they differ "
            "from feature_names; leave feature_names out",
            field="feature_names",
        )
    try:
        booster.feature_names = wanted
    except ValueError as exc:  # XGBoost refuses names with [, ] or <
        raise InvalidInput(f"invalid feature_names: {exc}", field="feature_names") from exc
    return booster


def booster_bytes(booster: xgb.Booster) -> bytes:
    """The booster in UBJSON, the format :func:`load_booster` reads and jobs ship to workers."""
    return bytes(booster.save_raw("ubj"))


def _seekable_source(source: str | Path | BinaryIO, limits: ArchiveLimits) -> str | Path | BinaryIO:
    """A one-way stream (a download) is read into memory, within the archive limit, to be read twice."""
    if isinstance(source, str | Path):
        return source
    try:
        if source.seekable():
            return source
    except (AttributeError, OSError, ValueError):
        pass
    data = source.read(limits.max_stream_bytes + 1)
    if len(data) > limits.max_stream_bytes:
        raise InvalidInput(f"model.tar.gz is larger than {limits.max_stream_bytes} bytes", field="source")
    return io.BytesIO(data)
