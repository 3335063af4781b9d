"""Canonical form and hashing of audit events, and redaction of secrets in parameters."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "id",
    "time",
    "principal",
    "token_kind",
    "role",
    "team",
    "action",
    "resource",
    "decision",
    "policies",
    "outcome",
    "error",
    "request_id",
    "source",
    "user_agent",
    "params",
    "prev_hash",
)
REDACTED = "***redacted***"
_SECRET_KEY = re.compile(r"token|secret|password|passphrase|private|credential|key_material|authorization", re.I)
_SECRET_VALUE = re.compile(r"\b(?:sr|srs)_[A-Za-z0-9_\-.]{16,}")


def canonical(event: Mapping[str, Any]) -> bytes:
    """Canonical JSON of the hashed fields: sorted keys, no spaces, UTF-8."""
    body = {name: event[name] for name in HASHED_FIELDS}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical(event)).hexdigest()


def _member(name: str, value: Any) -> str:
    return f"{_dump(name)}:{_dump(value)}"


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_BEFORE_PREV_HASH = sorted(name for name in HASHED_FIELDS if name < "prev_hash")
_BEFORE_SEQ = sorted(name for name in HASHED_FIELDS if "prev_hash" < name < "seq")
_AFTER_SEQ = sorted(name for name in HASHED_FIELDS if name > "seq")


def canonical_pieces(event: Mapping[str, Any]) -> tuple[str, str, str]:
    """The canonical JSON of ``event`` cut around the values of ``prev_hash`` and ``seq``.

    For a writer that learns the sequence number and the previous hash only under the chain lock
    (PostgreSQL's ``strongroom_audit_append``): ``a + '"' + prev_hash + '"' + b + str(seq) + c`` is
    exactly ``canonical(event)`` with those two values, as a string.
    """
    members = ",".join
    return (
        "{" + members(_member(name, event[name]) for name in _BEFORE_PREV_HASH) + ',"prev_hash":',
        "," + members(_member(name, event[name]) for name in _BEFORE_SEQ) + ',"seq":',
        "," + members(_member(name, event[name]) for name in _AFTER_SEQ) + "}",
    )


def redact(value: Any, key: str = "") -> Any:
    """Copy of ``value`` with secret-looking keys and token-looking strings replaced."""
    if key and _SECRET_KEY.search(key) and not key.endswith(("_id", "_ids")):
        return REDACTED
    if isinstance(value, Mapping):
        return {str(k): redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_VALUE.sub(REDACTED, value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def find_secret(value: Any, path: str = "") -> str | None:
    """The path of the first value that carries a Strongroom token, if any."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = find_secret(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_secret(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, str) and _SECRET_VALUE.search(value):
        return path or "value"
    return None
