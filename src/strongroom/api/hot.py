"""Plain ASGI routes for the hot paths (an endpoint invocation, a durable metric write).

``create_app`` puts them before FastAPI's routes. A request they match skips FastAPI's route
matching, dependency solving and response handling, which cost more than the work itself on
these paths; it still passes through every middleware (request id, body limit, timeout, the
audit fallback, the request metrics and access log), and its handler still authenticates with
``strongroom.guard.connection`` and calls a service, whose guard decides and audits it.

A hot endpoint answers every error itself (problem+json), so the per-route exception wrapping
Starlette puts around a function endpoint is not needed: anything unexpected still reaches the
app's exception middleware and its 500 problem.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from strongroom.api.problems import invalid_input
from strongroom.core.errors import InvalidInput

Endpoint = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)


class _Asgi:
    """``endpoint`` as a bare ASGI app (an object, which Starlette's ``Route`` calls as it is)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive, send))
        await response(scope, receive, send)


class HotRoute(Route):
    """A route that names itself in the request's scope, as FastAPI's routes do: the request
    metrics and the access log label a request by ``scope["route"].path`` (without it, every
    request it served was counted as ``unmatched``)."""

    def __init__(self, path: str, endpoint: Endpoint, *, methods: list[str], name: str) -> None:
        super().__init__(path, _Asgi(endpoint), methods=methods, name=name)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def parse_body(model: type[M], raw: bytes) -> M:
    """``raw`` JSON validated as ``model``; an invalid body raises ``InvalidInput`` naming its
    fields, with the messages FastAPI's validation gives on the other routes (it validates the
    decoded JSON as Python values, which pydantic words differently from JSON input)."""
    try:
        decoded = json.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}", field="body") from None
    try:
        return model.model_validate(decoded)
    except ValidationError as exc:
        raise invalid_input(exc.errors(include_url=False), prefix=("body",)) from None
