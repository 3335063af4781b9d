"""What every console page shares: the session, CSRF, the security headers, rendering and errors.

A page is a thin shell: it resolves the browser's session (``strongroom.guard.connection``), opens
one ``ViewConsolePage`` ticket so the page is one audit event whose ``params.checks`` list the
service reads it made, calls the same services as the API, and renders a template. An action
(a form or htmx POST) passes the CSRF check and calls one service method, whose own ticket
decides and records it. Nothing here decides or records anything itself.
"""

from __future__ import annotations

import hmac
import math
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from strongroom.core.context import RequestContext
from strongroom.core.errors import Forbidden, InvalidInput, StrongroomError, Unauthenticated
from strongroom.guard.connection import CONSOLE_COOKIE, console_session, request_context
from strongroom.identity.console_sessions import ConsoleSession
from strongroom.platform import Platform
from strongroom.policy.engine import Target

T = TypeVar("T")
PAGE_SIZE = 25
MAX_FORM_BYTES = 64 * 1024
LOGIN_COOKIE = "__Host-strongroom-signin"

# No inline script or style anywhere: htmx and the stylesheet are files of this origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cache-control": "no-store",
}

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("strongroom.console", "templates"),
    autoescape=True,  # every value is escaped: a resource named <script> or {{7*7}} shows as written
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def platform_of(request: Request) -> Platform:
    found: Platform = request.app.state.platform
    return found


def cookie_header(name: str, value: str, max_age: int) -> str:
    """A ``__Host-`` cookie: Secure, whole-site path, no domain, HttpOnly, SameSite=Strict."""
    return f"{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Strict"


def secured(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """Render ``template`` (autoescaped) with the security headers."""
    body = _templates.get_template(template).render(
        request_id=request.scope.get("state", {}).get("request_id", ""), **values
    )
    response = HTMLResponse(body, status_code=status)
    secured(response)
    return response


def redirect(request: Request, path: str) -> Response:
    """Go to ``path`` of this console (a path, never a URL built from request headers); for htmx,
    the ``HX-Redirect`` header makes the browser follow."""
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError("console redirects stay on this server")
    if request.headers.get("hx-request") == "true":
        return secured(Response(status_code=204, headers={"hx-redirect": path}))
    return secured(RedirectResponse(path, status_code=303))


@dataclass(frozen=True)
class Pager:
    """One page of a list: ``?page=N`` (no secret, only a number)."""

    items: list[Any]
    page: int
    pages: int
    total: int

    @property
    def previous(self) -> int | None:
        return self.page - 1 if self.page > 1 else None

    @property
    def next(self) -> int | None:
        return self.page + 1 if self.page < self.pages else None


def page_number(request: Request, name: str = "page") -> int:
    raw = request.query_params.get(name, "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise InvalidInput(f"{name} must be a page number from 1", field=name)
    return int(raw)


def paginate(items: Sequence[T], page: int, size: int = PAGE_SIZE) -> Pager:
    pages = max(1, math.ceil(len(items) / size))
    page = min(page, pages)
    start = (page - 1) * size
    return Pager(list(items[start : start + size]), page, pages, len(items))


def across_teams(teams: Sequence[str], fetch: Callable[[str], Iterable[T]]) -> tuple[list[T], list[str]]:
    """Every team's items (``fetch(team)``, a service call the guard decides) and the teams that refused."""
    found: list[T] = []
    refused: list[str] = []
    for team in teams:
        try:
            found.extend(fetch(team))
        except Forbidden:
            refused.append(team)
    return found, refused


def paginate_teams(
    teams: Sequence[str],
    count: Callable[[str], int],
    fetch: Callable[[str, int, int], list[T]],
    newest: Callable[[T], Any],
    page: int,
    size: int = PAGE_SIZE,
    reach: int = 1000,
) -> tuple[Pager, list[str]]:
    """One page of a list kept per team (newest first) without loading more than the page shows.

    ``count(team)`` and ``fetch(team, offset, limit)`` are service calls (each decided by the
    guard); a team whose count is refused is returned in the second list. One team's page is read
    at its offset; several teams' pages are merged from the first ``page * size`` items of each,
    as far back as ``reach`` items a team (the pager stops there).
    """
    totals: dict[str, int] = {}
    refused: list[str] = []
    for team in teams:
        try:
            totals[team] = count(team)
        except Forbidden:
            refused.append(team)
    total = sum(totals.values())
    reachable = total if len(totals) <= 1 else sum(min(n, reach) for n in totals.values())
    pages = max(1, math.ceil(reachable / size))
    page = min(page, pages)
    start = (page - 1) * size
    if len(totals) == 1:
        [(team, found)] = totals.items()
        items = fetch(team, start, size) if found else []
    else:
        merged = [item for team, found in totals.items() if found for item in fetch(team, 0, min(start + size, reach))]
        merged.sort(key=newest, reverse=True)
        items = merged[start : start + size]
    return Pager(items, page, pages, total), refused


class Form:
    """A urlencoded form body, read once."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name)
        return values[0] if values else default

    def items(self) -> Iterator[tuple[str, str]]:
        for name, values in self._fields.items():
            yield name, values[0]


async def read_form(request: Request) -> Form:
    body = await request.body()
    if not body:
        return Form({})
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise InvalidInput("console forms are sent as application/x-www-form-urlencoded", field="content-type")
    if len(body) > MAX_FORM_BYTES:
        raise InvalidInput(f"the form is larger than {MAX_FORM_BYTES} bytes", field="body")
    try:
        fields = urllib.parse.parse_qs(body.decode(), keep_blank_values=True, max_num_fields=200)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("the form could not be read", field="body") from exc
    return Form(fields)


def same_origin(request: Request) -> None:
    """Refuse a state-changing request another site made the browser send (defence in depth beside
    SameSite=Strict and the CSRF token)."""
    public = urllib.parse.urlsplit(request.app.state.public_url)
    origin = request.headers.get("origin")
    # Under Referrer-Policy: no-referrer a browser sends "Origin: null" even for its own forms;
    # Sec-Fetch-Site (below) and the CSRF token still stand then.
    if origin not in (None, "null") and origin != f"{public.scheme}://{public.netloc}":
        raise Forbidden("this request came from another site; the console accepts forms from its own pages only")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise Forbidden("this request came from another site; the console accepts forms from its own pages only")


def check_csrf(request: Request, form: Form, expected: str) -> None:
    presented = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not presented or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Forbidden("the form's CSRF token is missing or wrong; reload the page and try again", field="csrf_token")


@dataclass(frozen=True)
class Caller:
    """The signed-in browser of one request."""

    session: ConsoleSession
    ctx: RequestContext

    @property
    def user(self) -> str:
        return self.session.user


async def caller(request: Request) -> Caller:
    """The session of this request (raises ``Unauthenticated``)."""
    platform = platform_of(request)
    session = await console_session(request, platform.console_sessions.resolve)
    return Caller(session, request_context(request, session.principal))


async def action(request: Request) -> tuple[Caller, Form]:
    """The caller of a state-changing request, once its origin and CSRF token are checked."""
    same_origin(request)
    who = await caller(request)
    form = await read_form(request)
    check_csrf(request, form, who.session.csrf)
    return who, form


def may(request: Request, who: Caller, action: str, target: Target) -> bool:
    """Whether to show a control: the guard's answer without acting (the action itself is decided
    and audited again when it is sent)."""
    return platform_of(request).guard.simulate(who.session.principal, action, target).allowed


@contextmanager
def viewing(request: Request, who: Caller, page: str, **params: Any) -> Iterator[None]:
    """The page's one audit event (``ViewConsolePage``); service reads inside are its checks."""
    guard = platform_of(request).guard
    with guard.begin(who.ctx, "ViewConsolePage", Target("console-page", "", page, owner=who.user), params=params):
        yield


async def run(fn: Callable[[], T]) -> T:
    """Run blocking service work off the event loop (the guard's request state goes along)."""
    return await anyio.to_thread.run_sync(fn)


def error_page(request: Request, error: StrongroomError, who: Caller | None = None) -> Response:
    if isinstance(error, Unauthenticated):
        if request.method == "GET" and request.headers.get("hx-request") != "true":
            response = redirect(request, "/console/signin")
        else:
            response = render(request, "error.html", 401, error=error, who=None)
            response.headers["hx-redirect"] = "/console/signin"
        if request.cookies.get(CONSOLE_COOKIE):
            response.headers["set-cookie"] = cookie_header(CONSOLE_COOKIE, "", 0)
        return response
    if request.headers.get("hx-request") == "true":
        return render(request, "_error.html", error.status, error=error)
    return render(request, "error.html", error.status, error=error, who=who)


Handler = Callable[[Request], Awaitable[Response]]


def page(handler: Handler) -> Handler:
    """Render a ``StrongroomError`` a handler raises as an HTML page with its status."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except StrongroomError as error:
            who = None
            try:
                principal = request.scope.get("state", {}).get("principal")
                if principal is not None and not isinstance(error, Unauthenticated):
                    who = await caller(request)
            except StrongroomError:
                who = None
            return error_page(request, error, who)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped
