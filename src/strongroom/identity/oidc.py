"""Single sign-on with OpenID Connect: authorization code with PKCE (Authlib's client), the ID
token verified with joserfc against the provider's published keys, and the operator's mapping
from claims to a Strongroom user and roles.

Nobody is created here: the user-name claim must name an existing, enabled Strongroom user. With
a groups claim configured, the session holds only the roles the operator maps from the user's
groups *and* that the user holds; a user whose claims map to nothing gets no access.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import ssl
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from strongroom.core.config import Config
from strongroom.core.context import ROLES, TEAM_ROLES, Grant
from strongroom.core.errors import ConfigurationError, Unauthenticated, Unavailable
from strongroom.core.names import NAME_PATTERN

FLOW_SECONDS = 600
ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]


@dataclass(frozen=True)
class Flow:
    """What the browser carries between the redirect to the provider and the callback (signed)."""

    state: str
    nonce: str
    verifier: str
    expires: int


@dataclass(frozen=True)
class SignedIn:
    """Who the provider vouched for, mapped: the Strongroom user and, with a groups claim, the
    roles the groups allow (``None``: no groups claim configured, the user's own roles)."""

    user: str
    allowed: tuple[Grant, ...] | None
    subject: str


def _parse_grant(text: str) -> Grant:
    role, _, team = text.partition("@")
    if role not in ROLES or (role in TEAM_ROLES) != bool(team):
        raise ConfigurationError(f"oidc_group_roles: {text!r} is not a role (Role@team, or a platform role)")
    return Grant(role, team)


class OidcClient:
    """The console's relying party for one configured provider."""

    def __init__(self, config: Config, *, key: bytes) -> None:
        if not config.oidc_issuer.startswith("https://"):
            raise ConfigurationError("oidc_issuer must be an https:// URL")
        if not config.oidc_client_id:
            raise ConfigurationError("oidc_client_id is required with oidc_issuer")
        self.issuer = config.oidc_issuer.rstrip("/")
        self.client_id = config.oidc_client_id
        self._secret = config.oidc_client_secret.get_secret_value()
        self._verify: ssl.SSLContext = (
            ssl.create_default_context(cafile=config.oidc_ca_file)
            if config.oidc_ca_file
            else ssl.create_default_context()
        )
        self.display_name = config.oidc_display_name
        self.user_claim = config.oidc_user_claim
        self.groups_claim = config.oidc_groups_claim
        self.group_roles = {g: tuple(_parse_grant(r) for r in roles) for g, roles in config.oidc_group_roles.items()}
        self._key = key
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    # -- the provider ---------------------------------------------------------------------------

    def _get(self, url: str) -> dict[str, Any]:
        try:
            answer = httpx.get(url, verify=self._verify, timeout=10)
            answer.raise_for_status()
            found: dict[str, Any] = answer.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(f"the identity provider could not be reached ({type(exc).__name__}); try again") from exc
        return found

    def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (fetched once; its issuer must be the configured one)."""
        if self._metadata is None:
            found = self._get(self.issuer + "/.well-known/openid-configuration")
            if found.get("issuer", "").rstrip("/") != self.issuer:
                raise Unavailable("the identity provider's discovery document names another issuer")
            self._metadata = found
        return self._metadata

    def _key_set(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            self._keys = KeySet.import_key_set(self._get(self.metadata()["jwks_uri"]))  # type: ignore[arg-type]
        return self._keys

    def _client(self, redirect_uri: str) -> OAuth2Client:
        return OAuth2Client(
            client_id=self.client_id,
            client_secret=self._secret,
            token_endpoint_auth_method="client_secret_basic",
            redirect_uri=redirect_uri,
            scope="openid profile" + (f" {self.groups_claim}" if self.groups_claim else ""),
            code_challenge_method="S256",
            verify=self._verify,
            timeout=10,
        )

    # -- the flow -------------------------------------------------------------------------------

    def begin(self, redirect_uri: str) -> tuple[str, str]:
        """``(authorization URL, flow cookie)``: where to send the browser, and what it keeps.

        ``redirect_uri`` is the console's callback under the platform's configured public URL."""
        flow = Flow(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), 0)
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=flow.state,
                code_verifier=flow.verifier,
                nonce=flow.nonce,
            )
        return url, self._seal(flow)

    def _seal(self, flow: Flow) -> str:
        payload = json.dumps(
            {"s": flow.state, "n": flow.nonce, "v": flow.verifier, "e": int(time.time()) + FLOW_SECONDS}
        ).encode()
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + base64.urlsafe_b64encode(mac).decode()

    def _unseal(self, cookie: str) -> Flow:
        body, _, mac = cookie.partition(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            tag = base64.urlsafe_b64decode(mac)
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise Unauthenticated("the sign-in did not start here; sign in again") from None
        if not hmac.compare_digest(hmac.new(self._key, payload, hashlib.sha256).digest(), tag):
            raise Unauthenticated("the sign-in did not start here; sign in again")
        if int(data["e"]) < time.time():
            raise Unauthenticated("the sign-in took too long; sign in again")
        return Flow(data["s"], data["n"], data["v"], int(data["e"]))

    def finish(self, cookie: str, state: str, code: str, redirect_uri: str) -> SignedIn:
        """Check the callback belongs to the flow this browser began, redeem the code (with the PKCE
        verifier and the client secret), verify the ID token and map its claims.

        Raises ``Unauthenticated`` for anything that does not check out, or an unmapped user.
        """
        flow = self._unseal(cookie)
        if not state or not hmac.compare_digest(state.encode(), flow.state.encode()):
            raise Unauthenticated("the sign-in answer does not match the sign-in this browser began")
        if not code:
            raise Unauthenticated("the identity provider sent no authorization code")
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(
                    self.metadata()["token_endpoint"], code=code, code_verifier=flow.verifier, state=state
                )
        except Exception as exc:  # authlib raises its own errors and httpx's
            raise Unauthenticated(f"the identity provider refused the code ({type(exc).__name__})") from exc
        claims = self._verified(str(token.get("id_token", "")), flow.nonce)
        return self._map(claims)

    def _verified(self, id_token: str, nonce: str) -> dict[str, Any]:
        if not id_token:
            raise Unauthenticated("the identity provider sent no ID token")
        try:
            try:
                decoded = jwt.decode(id_token, self._key_set(), algorithms=ALGORITHMS)
            except JoseError:
                decoded = jwt.decode(id_token, self._key_set(refresh=True), algorithms=ALGORITHMS)  # keys rotated
            jwt.JWTClaimsRegistry(
                now=int(time.time()),
                leeway=60,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.client_id},
                sub={"essential": True},
                exp={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise Unauthenticated(f"the ID token did not verify ({type(exc).__name__})") from exc
        return dict(decoded.claims)

    def _map(self, claims: dict[str, Any]) -> SignedIn:
        user = claims.get(self.user_claim)
        if not isinstance(user, str) or not NAME_PATTERN.fullmatch(user):
            raise Unauthenticated(f"the identity provider's {self.user_claim!r} claim names no Strongroom user")
        if not self.groups_claim:
            return SignedIn(user, None, str(claims["sub"]))
        groups = claims.get(self.groups_claim, [])
        if not isinstance(groups, list):
            groups = []
        allowed = tuple(
            sorted({g for group in groups if isinstance(group, str) for g in self.group_roles.get(group, ())})
        )
        if not allowed:
            raise Unauthenticated(f"{user} is in no group that maps to a Strongroom role; ask your administrator")
        return SignedIn(user, allowed, str(claims["sub"]))
