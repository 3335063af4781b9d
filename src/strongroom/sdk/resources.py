"""Resource clients hung off ``Session``: users, teams, tokens, policies, audit."""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from strongroom.audit.models import AuditEvent, VerifyReport
from strongroom.gitrepo.models import Commit, Repository
from strongroom.identity.models import ApiToken, IssuedToken, Membership, Team, User
from strongroom.policy.models import PolicyAttachment, SimulationResult
from strongroom.sdk.paths import q

if TYPE_CHECKING:
    from strongroom.sdk.session import Session


class _Client:
    def __init__(self, session: Session) -> None:
        self._s = session

    def _pages(self, path: str, model: type[BaseModel], params: dict[str, Any] | None = None) -> list[Any]:
        items: list[Any] = []
        query = dict(params or {})
        while True:
            body = self._s.request("GET", path, params=query).json()
            items.extend(model.model_validate(i) for i in body["items"])
            token = body.get("next_page_token")
            if not token:
                return items
            query["page_token"] = token


class Users(_Client):
    def create(self, name: str, display_name: str = "", email: str = "", *, idempotency_key: str | None = None) -> User:
        body = {"name": name, "display_name": display_name, "email": email}
        return self._s.call("POST", "/api/v1/users", User, json_body=body, idempotency_key=idempotency_key)

    def list(self) -> list[User]:
        return self._pages("/api/v1/users", User)

    def describe(self, name: str) -> dict[str, Any]:
        return dict(self._s.request("GET", f"/api/v1/users/{q(name)}").json())

    def disable(self, name: str) -> User:
        return self._s.call("POST", f"/api/v1/users/{q(name)}/disable", User)

    def enable(self, name: str) -> User:
        return self._s.call("POST", f"/api/v1/users/{q(name)}/enable", User)

    def grant_role(self, name: str, role: str) -> Membership:
        return self._s.call("POST", f"/api/v1/users/{q(name)}/roles", Membership, json_body={"role": role})


class Teams(_Client):
    def create(self, name: str, description: str = "", *, idempotency_key: str | None = None) -> Team:
        body = {"name": name, "description": description}
        return self._s.call("POST", "/api/v1/teams", Team, json_body=body, idempotency_key=idempotency_key)

    def list(self) -> builtins.list[Team]:
        return self._pages("/api/v1/teams", Team)

    def describe(self, name: str) -> dict[str, Any]:
        return dict(self._s.request("GET", f"/api/v1/teams/{q(name)}").json())

    def add_member(self, team: str, user: str, role: str) -> Membership:
        return self._s.call(
            "POST", f"/api/v1/teams/{q(team)}/members", Membership, json_body={"user": user, "role": role}
        )

    def remove_member(self, team: str, user: str, role: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{q(team)}/members/{q(user)}/{q(role)}")

    def set_guardrail_exemptions(self, team: str, exemptions: builtins.list[str]) -> Team:
        return self._s.call(
            "PUT", f"/api/v1/teams/{q(team)}/guardrail-exemptions", Team, json_body={"exemptions": exemptions}
        )


class Tokens(_Client):
    def create(self, name: str, user: str | None = None, ttl_days: int | None = None) -> IssuedToken:
        body = {"name": name, "user": user, "ttl_days": ttl_days}
        return self._s.call("POST", "/api/v1/tokens", IssuedToken, json_body=body)

    def list(self, user: str | None = None) -> list[ApiToken]:
        return self._pages("/api/v1/tokens", ApiToken, {"user": user} if user else None)

    def revoke(self, token_id: str) -> ApiToken:
        return self._s.call("DELETE", f"/api/v1/tokens/{q(token_id)}", ApiToken)


class Policies(_Client):
    def attach(self, team: str, name: str, policy: str, description: str = "") -> PolicyAttachment:
        body = {"name": name, "policy": policy, "description": description}
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/policies", PolicyAttachment, json_body=body)

    def list(self, team: str) -> list[PolicyAttachment]:
        return self._pages(f"/api/v1/teams/{q(team)}/policies", PolicyAttachment)

    def detach(self, team: str, name: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{q(team)}/policies/{q(name)}")

    def simulate(
        self,
        principal: str,
        action: str,
        resource: str,
        context: dict[str, Any] | None = None,
        *,
        acting_as: str | None = None,
        owner: str = "",
        tags: dict[str, str] | None = None,
        token_kind: str = "api",
    ) -> SimulationResult:
        body = {
            "principal": principal,
            "action": action,
            "resource": resource,
            "context": context or {},
            "acting_as": acting_as,
            "owner": owner,
            "tags": tags or {},
            "token_kind": token_kind,
        }
        return self._s.call("POST", "/api/v1/policy/simulate", SimulationResult, json_body=body)


class Audit(_Client):
    def verify(self) -> VerifyReport:
        return self._s.call("GET", "/api/v1/audit/verify", VerifyReport)

    def tail(self, count: int = 20) -> list[AuditEvent]:
        body = self._s.request("GET", "/api/v1/audit/tail", params={"count": count}).json()
        return [AuditEvent.model_validate(i) for i in body["items"]]

    def query(
        self,
        *,
        principal: str | None = None,
        action: str | None = None,
        team: str | None = None,
        decision: str | None = None,
        request_id: str | None = None,
        resource_prefix: str | None = None,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        limit: int = 100,
        after_seq: int = 0,
    ) -> list[AuditEvent]:
        params = {
            "principal": principal,
            "action": action,
            "team": team,
            "decision": decision,
            "request_id": request_id,
            "resource_prefix": resource_prefix,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "limit": limit,
            "after_seq": after_seq,
        }
        body = self._s.request("GET", "/api/v1/audit/events", params=params).json()
        return [AuditEvent.model_validate(i) for i in body["items"]]

    def export(self, **filters: Any) -> Iterator[str]:
        """Every matching event as one JSON line, streamed."""
        return self._s.stream_lines("/api/v1/audit/export", params=filters)


class Repositories(_Client):
    def create(self, team: str, name: str, description: str = "") -> Repository:
        body = {"name": name, "description": description}
        return self._s.call("POST", f"/api/v1/teams/{q(team)}/repositories", Repository, json_body=body)

    def list(self, team: str) -> builtins.list[Repository]:
        return self._pages(f"/api/v1/teams/{q(team)}/repositories", Repository)

    def describe(self, team: str, name: str) -> Repository:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/repositories/{q(name)}", Repository)

    def delete(self, team: str, name: str) -> None:
        self._s.request("DELETE", f"/api/v1/teams/{q(team)}/repositories/{q(name)}")

    def get_commit(self, team: str, name: str, sha: str) -> Commit:
        return self._s.call("GET", f"/api/v1/teams/{q(team)}/repositories/{q(name)}/commits/{q(sha)}", Commit)

    def list_commits(self, team: str, name: str, ref: str = "main", limit: int = 50) -> builtins.list[Commit]:
        body = self._s.request(
            "GET", f"/api/v1/teams/{q(team)}/repositories/{q(name)}/commits", params={"ref": ref, "limit": limit}
        ).json()
        return [Commit.model_validate(c) for c in body["items"]]
