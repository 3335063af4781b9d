"""Token formats.

API tokens: ``sr_<id>_<secret>``. The id finds the row; the secret is compared with the
stored HMAC-SHA256 (keyed by a root-key-derived server key) in constant time.

Session and execution-role tokens: ``srs_<payload>.<mac>``, a base64url JSON payload (user,
role, team, scope, expiry, id, parent) authenticated with HMAC-SHA256 under another derived key.
They are short-lived; on every use the user, the membership and the parent (the API token a
session was assumed with) are checked again, so disabling a user, removing a membership or
revoking the API token ends every session derived from it at once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from strongroom.core.errors import Unauthenticated

API_PREFIX = "sr_"
SESSION_PREFIX = "srs_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_api_token() -> tuple[str, str, str]:
    """Return ``(token_id, secret, full_token)``."""
    token_id = "tok_" + secrets.token_hex(8)
    secret = _b64(secrets.token_bytes(32))
    return token_id, secret, f"{API_PREFIX}{token_id}_{secret}"


def parse_api_token(token: str) -> tuple[str, str]:
    if not token.startswith(API_PREFIX + "tok_"):
        raise Unauthenticated("malformed API token")
    body = token[len(API_PREFIX) :]
    token_id, sep, secret = body[:20], body[20:21], body[21:]
    if sep != "_" or not secret:
        raise Unauthenticated("malformed API token")
    return token_id, secret


def hash_secret(key: bytes, secret: str) -> str:
    return hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()


def secret_matches(key: bytes, secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(key, secret), stored_hash)


@dataclass(frozen=True)
class SessionClaims:
    kind: str  # "session" | "execution"
    user: str
    role: str
    team: str
    scope: str
    expires_at: dt.datetime
    token_id: str
    parent: str = ""  # the API token (``tok_...``) this session was derived from; "" for execution roles


def sign_session(key: bytes, claims: SessionClaims) -> str:
    payload = json.dumps(
        {
            "k": claims.kind,
            "sub": claims.user,
            "role": claims.role,
            "team": claims.team,
            "scope": claims.scope,
            "exp": int(claims.expires_at.timestamp()),
            "jti": claims.token_id,
            **({"par": claims.parent} if claims.parent else {}),
        },
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{SESSION_PREFIX}{_b64(payload)}.{_b64(mac)}"


def verify_session(key: bytes, token: str, now: dt.datetime) -> SessionClaims:
    if not token.startswith(SESSION_PREFIX):
        raise Unauthenticated("malformed session token")
    payload_b64, sep, mac_b64 = token[len(SESSION_PREFIX) :].partition(".")
    try:
        payload, mac = _unb64(payload_b64), _unb64(mac_b64)
    except (binascii.Error, ValueError) as exc:
        raise Unauthenticated("malformed session token") from exc
    if not sep or not hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).digest(), mac):
        raise Unauthenticated("session token signature is invalid")
    data = json.loads(payload)
    expires = dt.datetime.fromtimestamp(int(data["exp"]), dt.UTC)
    if expires <= now:
        raise Unauthenticated("session token expired; assume the role again")
    return SessionClaims(
        kind=data["k"],
        user=data["sub"],
        role=data["role"],
        team=data["team"],
        scope=data.get("scope", ""),
        expires_at=expires,
        token_id=data["jti"],
        parent=data.get("par", ""),
    )
