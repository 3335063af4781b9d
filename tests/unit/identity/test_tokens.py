from __future__ import annotations

import datetime as dt

import pytest

from strongroom.core.errors import Unauthenticated
from strongroom.identity import tokens

KEY = b"k" * 32


def test_api_token_round_trip_and_hash() -> None:
    for _ in range(200):  # secrets contain '_' and '-' often; parsing must not depend on them
        token_id, secret, full = tokens.new_api_token()
        assert tokens.parse_api_token(full) == (token_id, secret)
        stored = tokens.hash_secret(KEY, secret)
        assert secret not in stored
        assert tokens.secret_matches(KEY, secret, stored)
        assert not tokens.secret_matches(KEY, secret + "x", stored)


@pytest.mark.parametrize("bad", ["", "sr_", "sr_tok_", "sr_tok_123", "sr_tok_0123456789abcdef", "Bearer x"])
def test_malformed_api_tokens(bad: str) -> None:
    with pytest.raises(Unauthenticated):
        tokens.parse_api_token(bad)


def _claims(expires: dt.datetime) -> tokens.SessionClaims:
    return tokens.SessionClaims("session", "alice", "DataScientist", "risk", "", expires, "abc")


def test_session_token_signed_and_expiring() -> None:
    now = dt.datetime.now(dt.UTC)
    token = tokens.sign_session(KEY, _claims(now + dt.timedelta(minutes=5)))
    claims = tokens.verify_session(KEY, token, now)
    assert (claims.user, claims.role, claims.team) == ("alice", "DataScientist", "risk")
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify_session(KEY, token, now + dt.timedelta(minutes=6))
    with pytest.raises(Unauthenticated, match="signature"):
        tokens.verify_session(b"other" * 8, token, now)
    payload, mac = token.removeprefix("srs_").split(".")
    forged = tokens._b64(tokens._unb64(payload).replace(b"risk", b"fraud"))
    with pytest.raises(Unauthenticated):
        tokens.verify_session(KEY, f"srs_{forged}.{mac}", now)
