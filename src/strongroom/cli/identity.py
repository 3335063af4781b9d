"""`strongroom users|teams|tokens|roles`."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import console, print_json, show

users_app = typer.Typer(no_args_is_help=True, help="Users and platform roles.")
teams_app = typer.Typer(no_args_is_help=True, help="Teams and their members.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (shown once, stored hashed).")
roles_app = typer.Typer(no_args_is_help=True, help="Assume a role: a short-lived session token.")


# -- users ------------------------------------------------------------------------------------


@users_app.command("create")
def users_create(name: str, display_name: str = "", email: str = "", as_json: JsonOpt = False) -> None:
    show(session().users.create(name, display_name, email), as_json)


@users_app.command("list")
def users_list(as_json: JsonOpt = False) -> None:
    show(session().users.list(), as_json, ["name", "display_name", "email", "disabled", "created_at"])


@users_app.command("describe")
def users_describe(name: str, as_json: JsonOpt = False) -> None:
    show(session().users.describe(name), as_json)


@users_app.command("disable")
def users_disable(name: str, as_json: JsonOpt = False) -> None:
    show(session().users.disable(name), as_json)


@users_app.command("enable")
def users_enable(name: str, as_json: JsonOpt = False) -> None:
    show(session().users.enable(name), as_json)


@users_app.command("grant-role")
def users_grant_role(
    name: str, role: Annotated[str, typer.Argument(help="PlatformAdmin or Auditor")], as_json: JsonOpt = False
) -> None:
    show(session().users.grant_role(name, role), as_json)


# -- teams ------------------------------------------------------------------------------------


@teams_app.command("create")
def teams_create(name: str, description: str = "", as_json: JsonOpt = False) -> None:
    show(session().teams.create(name, description), as_json)


@teams_app.command("list")
def teams_list(as_json: JsonOpt = False) -> None:
    show(session().teams.list(), as_json, ["name", "description", "guardrail_exemptions", "created_at"])


@teams_app.command("describe")
def teams_describe(name: str, as_json: JsonOpt = False) -> None:
    detail = session().teams.describe(name)
    if as_json:
        print_json(detail)
        return
    show(detail["team"], False)
    show(detail["members"], False, ["user", "role", "created_at"], title="members")


@teams_app.command("add-member")
def teams_add_member(team: str, user: str, role: str, as_json: JsonOpt = False) -> None:
    show(session().teams.add_member(team, user, role), as_json)


@teams_app.command("remove-member")
def teams_remove_member(team: str, user: str, role: str) -> None:
    session().teams.remove_member(team, user, role)
    console.print(f"removed {role} of {user} in {team}")


@teams_app.command("exempt")
def teams_exempt(
    team: str,
    guardrails: Annotated[
        list[str] | None, typer.Argument(help="network-isolation, volume-kms-key; none clears")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the guardrails a team is exempted from (detective controls still watch it)."""
    show(session().teams.set_guardrail_exemptions(team, guardrails or []), as_json)


# -- tokens -----------------------------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    name: str,
    user: Annotated[str | None, typer.Option(help="Issue for another user (PlatformAdmin).")] = None,
    ttl_days: Annotated[int | None, typer.Option(help="Days until it expires.")] = None,
    as_json: JsonOpt = False,
) -> None:
    issued = session().tokens.create(name, user, ttl_days)
    if as_json:
        print_json(issued)
        return
    show(issued.token, False)
    console.print("\nToken (shown once; store it now):\n")
    print(f"    {issued.secret}\n")


@tokens_app.command("list")
def tokens_list(user: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False) -> None:
    show(session().tokens.list(user), as_json, ["id", "user", "name", "expires_at", "revoked_at", "last_used_at"])


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, as_json: JsonOpt = False) -> None:
    show(session().tokens.revoke(token_id), as_json)


# -- roles ------------------------------------------------------------------------------------


@roles_app.command("assume")
def roles_assume(
    role: str,
    team: Annotated[str, typer.Option(help="Team, for team roles.")] = "",
    export: Annotated[bool, typer.Option("--export", help="Print a shell export line.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Get a short-lived session token acting only as ROLE (in --team)."""
    from strongroom.identity.models import SessionToken

    issued: SessionToken = session().call(
        "POST", "/api/v1/sessions", SessionToken, json_body={"role": role, "team": team}
    )
    if export:
        print(f"export STRONGROOM_TOKEN={issued.token}")
    else:
        show(issued, as_json)
