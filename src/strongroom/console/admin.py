"""Administration: teams (create; members added and removed with their roles; keys rotated; team
policies viewed, attached and detached), users (create; their API tokens issued and revoked).

PlatformAdmins do all of it; a team's DataScienceAdmin manages its own team's members and keys as
the API lets it. Each action is the one service call the API makes, decided and audited by its
own ticket; a control is shown only to a role the guard would let act. A new token's secret is
shown once, in the answer to the form that made it: never in a URL, never again.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from strongroom.console import web
from strongroom.console.catalog import teams_of
from strongroom.core.context import TEAM_ROLES
from strongroom.core.errors import Forbidden, InvalidInput, StrongroomError
from strongroom.core.names import check_name
from strongroom.identity.service import team_target
from strongroom.kms.service import KEY_ID
from strongroom.policy.engine import Target


def _team(request: Request) -> str:
    return check_name(request.path_params["team"], "team")


def _user(value: str, field: str = "user") -> str:
    return check_name(value, field)


def _text(form: web.Form, name: str, limit: int) -> str:
    """A free-text field held to the same length as the API's body for it."""
    value = form.get(name)
    if len(value) > limit:
        raise InvalidInput(f"{name} is longer than {limit} characters", field=name)
    return value


def _ttl(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit():
        raise InvalidInput("ttl_days is a number of days from 1 to 3650", field="ttl_days")
    return int(raw)


@web.page
async def admin(request: Request) -> Response:
    """The teams of one's roles (every team for a PlatformAdmin), and the create forms one may use."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> web.Pager:
        with web.viewing(request, who, "admin"):
            return web.paginate(teams_of(platform, who), number)

    teams = await web.run(view)
    controls = {
        "team": web.may(request, who, "CreateTeam", Target("team", "", "*")),
        "user": web.may(request, who, "CreateUser", Target("user", "", "*")),
        # another user's token: only an identity administrator (one's own are on "My tokens")
        "token": web.may(request, who, "CreateApiToken", Target("token", "", "*", owner="")),
    }
    return web.render(request, "admin.html", who=who, teams=teams, controls=controls)


@web.page
async def create_team(request: Request) -> Response:
    who, form = await web.action(request)
    platform = web.platform_of(request)
    name = form.get("name").strip()
    description = _text(form, "description", 1024)
    created = await web.run(lambda: platform.identity.create_team(who.ctx, name, description))
    return web.redirect(request, f"/console/admin/teams/{created.name}")


@web.page
async def create_user(request: Request) -> Response:
    who, form = await web.action(request)
    platform = web.platform_of(request)
    name, display, email = form.get("name").strip(), _text(form, "display_name", 256), _text(form, "email", 256)
    created = await web.run(lambda: platform.identity.create_user(who.ctx, name, display, email))
    return web.redirect(request, f"/console/admin/users/{created.name}")


@web.page
async def issue_token(request: Request) -> Response:
    """Issue an API token; the answer (not a redirect) shows its secret this once."""
    who, form = await web.action(request)
    platform = web.platform_of(request)
    user = _user(form.get("user").strip() or who.user)
    name, ttl = form.get("name").strip(), _ttl(form.get("ttl_days").strip())
    issued = await web.run(lambda: platform.identity.create_token(who.ctx, name, user, ttl))
    return web.render(request, "token_issued.html", who=who, issued=issued)


@web.page
async def users(request: Request) -> Response:
    who = await web.caller(request)
    platform = web.platform_of(request)
    number = web.page_number(request)

    def view() -> web.Pager:
        with web.viewing(request, who, "admin-users"):
            return web.paginate(platform.identity.list_users(who.ctx), number)

    listed = await web.run(view)
    return web.render(request, "admin_users.html", who=who, users=listed)


@web.page
async def user(request: Request) -> Response:
    """A user's roles and API tokens (never their secrets), with revoke and issue."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    name = _user(request.path_params["user"], "name")
    number = web.page_number(request)

    def view() -> tuple[Any, list[Any], web.Pager]:
        with web.viewing(request, who, "admin-user", user=name):
            found, memberships = platform.identity.describe_user(who.ctx, name)
            tokens = platform.identity.list_tokens(who.ctx, name)
        return found, memberships, web.paginate(tokens, number)

    found, memberships, tokens = await web.run(view)
    issues = web.may(request, who, "CreateApiToken", Target("token", "", "*", owner=name))
    return web.render(
        request, "admin_user.html", who=who, user=found, memberships=memberships, tokens=tokens, issues=issues
    )


@web.page
async def revoke_token(request: Request) -> Response:
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    name = _user(request.path_params["user"], "name")
    token_id = request.path_params["token"]
    if not re.fullmatch(r"tok_[0-9a-f]{16}", token_id):
        raise InvalidInput("not a token id", field="token_id")
    await web.run(lambda: platform.identity.revoke_token(who.ctx, token_id))
    return web.redirect(request, f"/console/admin/users/{name}")


@web.page
async def team(request: Request) -> Response:
    """A team's members with their roles; add and remove for those who may."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    name = _team(request)
    number = web.page_number(request)

    def view() -> tuple[Any, web.Pager]:
        with web.viewing(request, who, "admin-team", team=name):
            found, members = platform.identity.describe_team(who.ctx, name)
        return found, web.paginate(members, number)

    found, members = await web.run(view)
    manages = web.may(request, who, "AddTeamMember", team_target(name))
    return web.render(
        request, "admin_team.html", who=who, team=found, members=members, manages=manages, roles=TEAM_ROLES
    )


@web.page
async def add_member(request: Request) -> Response:
    who, form = await web.action(request)
    platform = web.platform_of(request)
    name = _team(request)
    member, role = _user(form.get("user").strip()), form.get("role")
    await web.run(lambda: platform.identity.add_member(who.ctx, name, member, role))
    return web.redirect(request, f"/console/admin/teams/{name}")


@web.page
async def remove_member(request: Request) -> Response:
    who, form = await web.action(request)
    platform = web.platform_of(request)
    name = _team(request)
    member, role = _user(form.get("user")), form.get("role")
    if role not in TEAM_ROLES:
        raise InvalidInput(f"role is one of {', '.join(TEAM_ROLES)}", field="role")
    await web.run(lambda: platform.identity.remove_member(who.ctx, name, member, role))
    return web.redirect(request, f"/console/admin/teams/{name}")


@web.page
async def keys(request: Request) -> Response:
    """A team's keys (versions, rotation), with rotate for those who may."""
    who = await web.caller(request)
    platform = web.platform_of(request)
    name = _team(request)
    number = web.page_number(request)

    def view() -> web.Pager:
        with web.viewing(request, who, "admin-keys", team=name):
            return web.paginate(platform.kms.list_keys(who.ctx, name), number)

    listed = await web.run(view)
    rotatable = {
        k.id
        for k in listed.items
        if web.may(request, who, "RotateKey", Target("key", name, k.id, policy_scope=f"key/{k.id}"))
    }
    return web.render(request, "admin_keys.html", who=who, team=name, keys=listed, rotatable=rotatable)


@web.page
async def rotate_key(request: Request) -> Response:
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    name = _team(request)
    key_id = request.path_params["key"]
    if not KEY_ID.fullmatch(key_id):
        raise InvalidInput("not a key id", field="key")
    await web.run(lambda: platform.kms.rotate(who.ctx, name, key_id))
    return web.redirect(request, f"/console/admin/teams/{name}/keys")


@web.page
async def policies(request: Request) -> Response:
    """A team's attached policies (their Cedar text), with attach and detach for those who may."""
    who = await web.caller(request)
    return await _show_policies(request, who, None, {})


async def _show_policies(
    request: Request, who: web.Caller, error: StrongroomError | None, values: dict[str, str]
) -> Response:
    platform = web.platform_of(request)
    name = _team(request)
    number = web.page_number(request)

    def view() -> web.Pager:
        with web.viewing(request, who, "admin-policies", team=name):
            return web.paginate(platform.policies.list(who.ctx, name), number)

    listed = await web.run(view)
    attaches = web.may(request, who, "AttachTeamPolicy", Target("policy", name, "*"))
    return web.render(
        request,
        "admin_policies.html",
        error.status if error is not None else 200,
        who=who,
        team=name,
        policies=listed,
        attaches=attaches,
        error=error,
        values=values,
    )


@web.page
async def attach_policy(request: Request) -> Response:
    """Attach a Cedar policy to the team; a policy the engine refuses shows the form again with the text."""
    who, form = await web.action(request)
    platform = web.platform_of(request)
    name = _team(request)
    values = {k: form.get(k) for k in ("name", "policy")} | {"description": _text(form, "description", 1024)}
    try:
        await web.run(
            lambda: platform.policies.attach(
                who.ctx, name, values["name"].strip(), values["policy"], values["description"]
            )
        )
    except StrongroomError as error:
        if isinstance(error, Forbidden):  # a refusal is the guard's answer, not a form to correct
            raise
        return await _show_policies(request, who, error, values)
    return web.redirect(request, f"/console/admin/teams/{name}/policies")


@web.page
async def detach_policy(request: Request) -> Response:
    who, _ = await web.action(request)
    platform = web.platform_of(request)
    name = _team(request)
    policy = check_name(request.path_params["policy"], "name")
    await web.run(lambda: platform.policies.detach(who.ctx, name, policy))
    return web.redirect(request, f"/console/admin/teams/{name}/policies")


ROUTES: list[BaseRoute] = [
    Route("/console/admin", admin, methods=["GET"]),
    Route("/console/admin/teams", create_team, methods=["POST"]),
    Route("/console/admin/users", users, methods=["GET"]),
    Route("/console/admin/users", create_user, methods=["POST"]),
    Route("/console/admin/tokens", issue_token, methods=["POST"]),
    Route("/console/admin/users/{user}", user, methods=["GET"]),
    Route("/console/admin/users/{user}/tokens/{token}/revoke", revoke_token, methods=["POST"]),
    Route("/console/admin/teams/{team}", team, methods=["GET"]),
    Route("/console/admin/teams/{team}/members", add_member, methods=["POST"]),
    Route("/console/admin/teams/{team}/members/remove", remove_member, methods=["POST"]),
    Route("/console/admin/teams/{team}/keys", keys, methods=["GET"]),
    Route("/console/admin/teams/{team}/keys/{key}/rotate", rotate_key, methods=["POST"]),
    Route("/console/admin/teams/{team}/policies", policies, methods=["GET"]),
    Route("/console/admin/teams/{team}/policies", attach_policy, methods=["POST"]),
    Route("/console/admin/teams/{team}/policies/{policy}/detach", detach_policy, methods=["POST"]),
]
