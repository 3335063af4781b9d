"""``strongroom.Session``: an authenticated client of one platform, over HTTPS or a Unix socket.

Where it finds the platform, first match wins:

1. arguments: ``Session(url=..., token=..., ca=...)`` or ``Session(socket=..., token=...)``;
2. environment: ``STRONGROOM_URL`` / ``STRONGROOM_SOCKET``, ``STRONGROOM_TOKEN``, ``STRONGROOM_CA``;
3. the local home (``$STRONGROOM_HOME``, default ``~/.strongroom``): the running server's
   address from ``run/server.json`` and the platform CA from ``tls/ca.pem``.

Every HTTPS connection verifies the platform CA; there is no switch to turn that off.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import ssl
import threading
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

import httpx
from pydantic import TypeAdapter

from strongroom.core.errors import StrongroomError, error_from_problem
from strongroom.sdk.transport import (
    IDEMPOTENT_METHODS,
    ConnectFailed,
    ConnectionLost,
    Pool,
    Response,
    encode_json,
    encode_query,
)

if TYPE_CHECKING:
    from strongroom.sdk.catalog import Catalog, Notebooks
    from strongroom.sdk.jobs import Jobs
    from strongroom.sdk.lineage import LineageClient
    from strongroom.sdk.model_registry import ModelRegistry
    from strongroom.sdk.monitor import MonitoringClient
    from strongroom.sdk.resources import Audit, Policies, Repositories, Teams, Tokens, Users
    from strongroom.sdk.serving import EndpointConfigs, Endpoints, Models
    from strongroom.sdk.storage import Buckets, Keys
    from strongroom.sdk.tracking import ExperimentsClient

M = TypeVar("M")
USER_AGENT = "strongroom-sdk"


class PlatformUnreachable(StrongroomError):
    slug = "platform-unreachable"
    status = 503
    title = "Platform unreachable"


def _home() -> Path:
    return Path(os.environ.get("STRONGROOM_HOME", "~/.strongroom")).expanduser()


def _server_info(home: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((home / "run" / "server.json").read_text()))
    except (OSError, ValueError):
        return {}


C = TypeVar("C")


class _Client(Generic[C]):
    """A session's domain client (``session.buckets``...), made and its module imported on first use.

    Made under the session's lock, so threads racing to it get one client: the experiments client
    owns the session's one background writer. Kept in the session's ``__dict__``, which later reads
    find before this descriptor.
    """

    def __init__(self, module: str, name: str, *, with_team: bool = False) -> None:
        self._module, self._name, self._with_team = module, name, with_team
        self._attribute = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._attribute = attribute

    @overload
    def __get__(self, session: None, owner: type) -> _Client[C]: ...
    @overload
    def __get__(self, session: Session, owner: type) -> C: ...
    def __get__(self, session: Session | None, owner: type) -> _Client[C] | C:
        if session is None:
            return self
        with session._clients_lock:
            made: C | None = session.__dict__.get(self._attribute)
            if made is None:
                kind = getattr(importlib.import_module(self._module), self._name)
                made = kind(session, session._team) if self._with_team else kind(session)
                session.__dict__[self._attribute] = made
            return made


class Session:
    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        socket: str | os.PathLike[str] | None = None,
        ca: str | os.PathLike[str] | None = None,
        timeout: float = 60.0,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        env = os.environ
        home_path = Path(home).expanduser() if home else _home()
        url = url or env.get("STRONGROOM_URL")
        socket = socket or env.get("STRONGROOM_SOCKET")
        if not url and not socket:
            info = _server_info(home_path)
            url = str(info["url"]) if info.get("url") else None
        token = token or env.get("STRONGROOM_TOKEN")
        # Inside sandboxes the platform replaces the execution token before it expires (a token file
        # for jobs, ``strongroom_environment.token()`` in notebooks): read it afresh for every request,
        # so a long-lived Session keeps working.
        self._token_source = (
            None
            if token
            else (_token_file_source(env.get("STRONGROOM_TOKEN_FILE")) or _environment_module_token_source())
        )
        if not token and self._token_source is not None:
            token = self._token_source()
        if not token:
            raise StrongroomError(
                "no token: pass Session(token=...) or set STRONGROOM_TOKEN (an admin issues tokens with "
                "`strongroom tokens create`)",
                field="token",
            )
        self._token = token
        headers = {"user-agent": USER_AGENT}
        auth = _TokenAuth(self.current_token)
        if socket:
            self.where = f"unix socket {socket}"
            transport = httpx.HTTPTransport(uds=str(socket), retries=0)
            self._client = httpx.Client(
                base_url="http://strongroom", transport=transport, headers=headers, timeout=timeout, auth=auth
            )
            self._pool = Pool(socket_path=str(socket), timeout=timeout)
        elif url:
            if not url.startswith("https://"):
                raise StrongroomError(f"{url!r}: Strongroom speaks HTTPS only; use an https:// URL", field="url")
            ca_path = Path(ca or env.get("STRONGROOM_CA") or home_path / "tls" / "ca.pem")
            if not ca_path.exists():
                raise StrongroomError(f"platform CA {ca_path} not found; pass ca=... or set STRONGROOM_CA", field="ca")
            context = ssl.create_default_context(cafile=str(ca_path))
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self.where = url
            self._client = httpx.Client(base_url=url, verify=context, headers=headers, timeout=timeout, auth=auth)
            parts = urlsplit(url)
            self._pool = Pool(
                host=parts.hostname or "",
                port=parts.port or 443,
                context=context,
                base_path=parts.path,
                timeout=timeout,
            )
            self.ca_path = ca_path
        elif not (home_path / "root.check").exists():
            raise PlatformUnreachable(f"no Strongroom home at {home_path}; create one with `strongroom init`")
        else:
            raise PlatformUnreachable(
                f"platform not running at {home_path} (no run/server.json); start it with `strongroom up`"
            )
        self.url = url
        self.socket = str(socket) if socket else None
        if socket:
            self.ca_path = Path(ca) if ca else Path()
        self._ca = ca
        self._timeout = timeout
        # Transfers may take long; a stall of `timeout` seconds between bytes still fails them.
        self._transfer_timeout = httpx.Timeout(timeout, connect=min(timeout, 30.0))
        self._team = env.get("STRONGROOM_TEAM") or None
        self._clients_lock = threading.RLock()  # see _Client

    # Each domain's client is made, and its module imported, on first use: a session that only
    # moves objects (a job's agent, running beside the algorithm it started) imports a fifth of the SDK.
    users: _Client[Users] = _Client("strongroom.sdk.resources", "Users")
    teams: _Client[Teams] = _Client("strongroom.sdk.resources", "Teams")
    tokens: _Client[Tokens] = _Client("strongroom.sdk.resources", "Tokens")
    policies: _Client[Policies] = _Client("strongroom.sdk.resources", "Policies")
    audit: _Client[Audit] = _Client("strongroom.sdk.resources", "Audit")
    repositories: _Client[Repositories] = _Client("strongroom.sdk.resources", "Repositories")
    jobs: _Client[Jobs] = _Client("strongroom.sdk.jobs", "Jobs")
    keys: _Client[Keys] = _Client("strongroom.sdk.storage", "Keys")
    buckets: _Client[Buckets] = _Client("strongroom.sdk.storage", "Buckets")
    experiments: _Client[ExperimentsClient] = _Client("strongroom.sdk.tracking", "ExperimentsClient", with_team=True)
    lineage: _Client[LineageClient] = _Client("strongroom.sdk.lineage", "LineageClient", with_team=True)
    catalog: _Client[Catalog] = _Client("strongroom.sdk.catalog", "Catalog")
    notebooks: _Client[Notebooks] = _Client("strongroom.sdk.catalog", "Notebooks")
    models: _Client[Models] = _Client("strongroom.sdk.serving", "Models")
    endpoint_configs: _Client[EndpointConfigs] = _Client("strongroom.sdk.serving", "EndpointConfigs")
    endpoints: _Client[Endpoints] = _Client("strongroom.sdk.serving", "Endpoints")
    model_registry: _Client[ModelRegistry] = _Client("strongroom.sdk.model_registry", "ModelRegistry")
    monitoring: _Client[MonitoringClient] = _Client("strongroom.sdk.monitor", "MonitoringClient")

    def current_token(self) -> str:
        """The token requests carry now (inside a notebook: the freshest execution token)."""
        if self._token_source is not None:
            try:
                return self._token_source()
            except OSError:
                return self._token
        return self._token

    def __repr__(self) -> str:
        return f"Session({self.where})"

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush queued experiment writes, then close the connection."""
        experiments = self.__dict__.get("experiments")  # only if it was made (see _Client)
        try:
            if experiments is not None:
                experiments.close()
        finally:
            self._pool.close()
            self._client.close()

    # -- transport --------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one JSON request; raise the matching ``StrongroomError`` for a problem response.

        Sent over the session's keep-alive pool (``strongroom.sdk.transport``). A request that meets
        a connection the server had just closed is sent again once, if that is harmless: an
        idempotent method, or an ``idempotency_key`` (the server deduplicates it).
        """
        method = method.upper()
        sent = {"user-agent": USER_AGENT, "authorization": f"Bearer {self.current_token()}"}
        body = None
        if json_body is not None:
            body = encode_json(json_body)
            sent["content-type"] = "application/json"
        if idempotency_key:
            sent["idempotency-key"] = idempotency_key
        for name, value in (headers or {}).items():
            sent[name.lower()] = value
        try:
            response = self._pool.request(
                method,
                path,
                query=encode_query(params) if params else "",
                body=body,
                headers=sent,
                retry_safe=method in IDEMPOTENT_METHODS or bool(idempotency_key),
            )
        except ConnectFailed as exc:
            raise PlatformUnreachable(
                f"platform not running at {self.where} ({exc}); start it with `strongroom up`"
            ) from exc
        except TimeoutError as exc:
            raise PlatformUnreachable(f"platform at {self.where} did not answer in time") from exc
        except ConnectionLost as exc:
            raise PlatformUnreachable(f"platform at {self.where} closed the connection ({exc})") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def request_raw(
        self,
        method: str,
        path: str,
        *,
        content: Any = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send a request with a raw (possibly streamed) body; errors as ``request`` raises them."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._client.request(
                method, path, content=content, headers=dict(headers or {}), params=clean, timeout=self._transfer_timeout
            )
        except httpx.ConnectError as exc:
            raise PlatformUnreachable(f"platform not running at {self.where} ({exc})") from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    @contextlib.contextmanager
    def stream_raw(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Iterator[httpx.Response]:
        """A streamed response (the caller iterates its body); errors raised before the body."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            with self._client.stream(
                method, path, params=clean, headers=dict(headers or {}), timeout=self._transfer_timeout
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                yield response
        except httpx.ConnectError as exc:
            raise PlatformUnreachable(f"platform not running at {self.where} ({exc})") from exc

    def call(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        response = self.request(method, path, **kwargs)
        return TypeAdapter(model).validate_python(response.json())

    def stream_lines(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[str]:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        with self._client.stream("GET", path, params=clean) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            yield from response.iter_lines()

    # -- conveniences -----------------------------------------------------------------------

    def whoami(self) -> Any:
        from strongroom.identity.models import WhoAmI

        return self.call("GET", "/api/v1/whoami", WhoAmI)

    def status(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/v1/status").json())

    # -- data (sr:// URIs) -------------------------------------------------------------------

    def upload_data(self, path: str | os.PathLike[str], bucket: str, key_prefix: str = "data") -> str:
        """Upload a file or a directory tree; return its ``sr://`` URI (as the workshop does)."""
        local = Path(path)
        prefix = key_prefix.strip("/")
        if local.is_dir():
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                relative = file.relative_to(local).as_posix()
                self.buckets.put_object(bucket, f"{prefix}/{relative}" if prefix else relative, file)
            return f"sr://{bucket}/{prefix}" if prefix else f"sr://{bucket}"
        key = f"{prefix}/{local.name}" if prefix else local.name
        self.buckets.put_object(bucket, key, local)
        return f"sr://{bucket}/{key}"

    def download_data(self, path: str | os.PathLike[str], bucket: str, key_prefix: str = "") -> list[str]:
        """Download every object under ``key_prefix`` into the directory ``path``; return the files."""
        root = Path(path).resolve()
        files: list[str] = []
        for item in self.buckets.iter_objects(bucket, key_prefix):
            if isinstance(item, str):
                continue
            relative = item.key[len(key_prefix) :].lstrip("/") if key_prefix else item.key
            target = (root / relative).resolve()
            if root not in target.parents:
                raise StrongroomError(f"object key {item.key!r} would be written outside {root}", field="key")
            files.append(self.buckets.download(bucket, item.key, target))
        return files

    def list_objects(self, bucket: str, key_prefix: str = "") -> list[str]:
        """The keys under ``key_prefix`` (latest versions)."""
        return [o.key for o in self.buckets.iter_objects(bucket, key_prefix) if not isinstance(o, str)]

    def assume_role(self, role: str, team: str = "") -> Session:
        """A new session acting only as ``role`` (in ``team``), with a short-lived token."""
        from strongroom.identity.models import SessionToken

        issued: SessionToken = self.call(
            "POST", "/api/v1/sessions", SessionToken, json_body={"role": role, "team": team}
        )
        return Session(url=self.url, socket=self.socket, token=issued.token, ca=self._ca, timeout=self._timeout)


def _error(response: Response | httpx.Response) -> StrongroomError:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "type" in body:
        return error_from_problem(body)
    return StrongroomError(f"HTTP {response.status_code}: {response.text[:200]}")


class _TokenAuth(httpx.Auth):
    """Sets ``Authorization: Bearer`` from a callable on every request (tokens may be refreshed)."""

    def __init__(self, token: Any) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = f"Bearer {self._token()}"
        yield request


def _token_file(path: str | None) -> str | None:
    """Inside sandboxes the platform keeps a fresh execution-role token in a file."""
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError:
        return None


def _token_file_source(path: str | None) -> Any:
    """A callable reading the token file afresh, if ``path`` names a readable, non-empty one."""
    if not path or _token_file(path) is None:
        return None
    return lambda: _token_file(path) or ""


def _environment_module_token_source() -> Any:
    """Inside a notebook, the platform-provided ``strongroom_environment.token`` reads the current token."""
    try:
        import strongroom_environment
    except ImportError:
        return None
    getter = getattr(strongroom_environment, "token", None)
    if not callable(getter):
        return None
    return lambda: str(getter())


def _environment_module_token() -> str | None:
    """The current token from ``strongroom_environment``, if this runs inside a notebook."""
    source = _environment_module_token_source()
    return source() if source is not None else None
