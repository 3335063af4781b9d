"""Object keys, bucket names, tags and prefixes: parsed once, normalised, then checked.

Object keys follow S3's rules (UTF-8, at most 1024 bytes) and, because they also become paths
(``sr://bucket/raw/data.csv``, ``strongroom cp``), path rules: no absolute keys, no empty,
``.`` or ``..`` segments, no backslashes, no control or bidirectional-override characters.
The checks run on the NFC-normalised key, which is also what is stored, so two spellings of
the same text cannot name two objects and no normalisation can turn a checked key into a bad one.
Keys are never decoded here: the HTTP layer decodes a URL once, and that text is the key.
"""

from __future__ import annotations

import re
import unicodedata

from strongroom.core.errors import InvalidInput

MAX_KEY_BYTES = 1024
MAX_TAGS = 10
_BUCKET = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_TAG_KEY = re.compile(r"[A-Za-z0-9 +\-=._:/@]{1,128}")
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}


def _bad_char(text: str) -> str | None:
    for char in text:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs") or char in _BIDI or char in ("\ufffe", "\uffff"):
            return f"U+{ord(char):04X}"
    return None


def check_bucket_name(name: object, field: str = "bucket") -> str:
    """Bucket names: 3-63 lowercase letters, digits and '-', starting and ending alphanumeric."""
    if not isinstance(name, str) or not _BUCKET.fullmatch(name):
        raise InvalidInput(
            f"bucket name {name!r} is not valid: 3-63 characters of lowercase letters, digits and '-', "
            "starting and ending with a letter or digit",
            field=field,
        )
    return name


def check_object_key(key: object, field: str = "key") -> str:
    """Return the normalised key, or raise ``InvalidInput`` saying what is wrong with it."""
    if not isinstance(key, str):
        raise InvalidInput("an object key is text", field=field)
    normal = unicodedata.normalize("NFC", key)
    if not normal:
        raise InvalidInput("an object key cannot be empty", field=field)
    if len(normal.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidInput(f"an object key is at most {MAX_KEY_BYTES} bytes of UTF-8", field=field)
    bad = _bad_char(normal)
    if bad:
        raise InvalidInput(f"object key contains the control or invisible character {bad}", field=field)
    if normal.startswith("/"):
        raise InvalidInput("an object key cannot be absolute (start with '/')", field=field)
    if "\\" in normal:
        raise InvalidInput("an object key cannot contain '\\'; use '/' to separate folders", field=field)
    for segment in normal.split("/"):
        if segment in ("", ".", ".."):
            shown = segment or "an empty segment ('//' or a trailing '/')"
            raise InvalidInput(f"an object key cannot contain {shown!s} as a path segment", field=field)
    return normal


def check_prefix(prefix: object, field: str = "prefix") -> str:
    """A listing prefix: any beginning of a valid key (it may end in '/' or mid-segment)."""
    if prefix is None or prefix == "":
        return ""
    if not isinstance(prefix, str):
        raise InvalidInput("a prefix is text", field=field)
    normal = unicodedata.normalize("NFC", prefix)
    if len(normal.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidInput(f"a prefix is at most {MAX_KEY_BYTES} bytes", field=field)
    bad = _bad_char(normal)
    if bad:
        raise InvalidInput(f"prefix contains the control or invisible character {bad}", field=field)
    if normal.startswith("/") or "\\" in normal:
        raise InvalidInput("a prefix cannot start with '/' or contain '\\'", field=field)
    segments = normal.split("/")
    if any(s in (".", "..") for s in segments) or any(s == "" for s in segments[:-1]):
        raise InvalidInput("a prefix cannot contain '.', '..' or empty path segments", field=field)
    return normal


def check_tags(tags: object, field: str = "tags") -> dict[str, str]:
    """Object tags: at most 10; keys 1-128 of ``A-Za-z0-9 +-=._:/@``; values at most 256 characters."""
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise InvalidInput("tags are a mapping of names to values", field=field)
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"an object has at most {MAX_TAGS} tags", field=field)
    out: dict[str, str] = {}
    for name, value in tags.items():
        if not isinstance(name, str) or not _TAG_KEY.fullmatch(name):
            raise InvalidInput(f"tag name {name!r} is not valid (1-128 of A-Za-z0-9 +-=._:/@)", field=field)
        if not isinstance(value, str) or len(value) > 256 or _bad_char(value):
            raise InvalidInput(f"tag {name!r}: values are text of at most 256 printable characters", field=field)
        out[name] = value
    return out


def parse_uri(uri: str, field: str = "uri") -> tuple[str, str]:
    """``sr://bucket/key`` -> ``(bucket, key)``; the key may be empty (a bucket) or a prefix.

    The key part obeys the same rules as an object put (:func:`check_prefix`: no ``..``, ``.`` or
    empty segments, no backslash or control characters), so a URI accepted here cannot fail later
    when something is written under it. ``?`` and ``#`` are ordinary key characters, not a query or
    fragment: ``sr://b/#/../x`` is refused for its ``..`` segment.

    Raises:
        InvalidInput: naming ``field``, when the URI is not ``sr://``, the bucket name or the key is bad.
    """
    if not isinstance(uri, str) or not uri.startswith("sr://"):
        raise InvalidInput(f"{uri!r} is not an sr:// URI (sr://bucket/key)", field=field)
    bucket, _, key = uri[len("sr://") :].partition("/")
    check_bucket_name(bucket, field)
    try:
        return bucket, check_prefix(key, field)
    except InvalidInput as exc:
        raise InvalidInput(f"{uri!r}: {exc.detail}", field=field) from None
