"""``strongroom``: init, up, status, demo, and one command group per domain."""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from strongroom.cli.output import console, err_console, print_json, show
from strongroom.core.config import Config
from strongroom.core.errors import StrongroomError
from strongroom.sdk.session import Session

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Strongroom: a secure ML workbench you run yourself."
)
users_app = typer.Typer(no_args_is_help=True, help="Users and platform roles.")
teams_app = typer.Typer(no_args_is_help=True, help="Teams and their members.")
tokens_app = typer.Typer(no_args_is_help=True, help="API tokens (shown once, stored hashed).")
roles_app = typer.Typer(no_args_is_help=True, help="Assume a role: a short-lived session token.")
policy_app = typer.Typer(no_args_is_help=True, help="Cedar policies: simulate, attach, list.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
for sub, name in (
    (users_app, "users"),
    (teams_app, "teams"),
    (tokens_app, "tokens"),
    (roles_app, "roles"),
    (policy_app, "policy"),
    (audit_app, "audit"),
):
    app.add_typer(sub, name=name)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
HomeOpt = Annotated[
    Path | None, typer.Option("--home", help="Platform home (default $STRONGROOM_HOME or ~/.strongroom).")
]


def _config(home: Path | None = None, **overrides: Any) -> Config:
    values = {k: v for k, v in overrides.items() if v is not None}
    if home is not None:
        values["home"] = home.expanduser()
    return Config(**values)


def session() -> Session:
    return Session()


# -- platform lifecycle -----------------------------------------------------------------------


@app.command()
def init(
    home: HomeOpt = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy URL; default embedded SQLite.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTPS port (0 = any free port).")] = None,
    admin: Annotated[str, typer.Option(help="Name of the first PlatformAdmin.")] = "admin",
    as_json: JsonOpt = False,
) -> None:
    """Create a platform home: config, root key, CA, database, and the first admin's token."""
    from strongroom.core.platform import initialize

    result = initialize(_config(home, database_url=database_url, port=port), admin=admin)
    if as_json:
        print_json({"home": str(result.home), "admin": result.admin, "token": result.token.secret})
        return
    console.print(f"[green]Initialised[/green] {result.home}")
    console.print(f"Database: {result.database_url.split('@')[-1]}")
    console.print(f"PlatformAdmin [bold]{result.admin}[/bold]; token (shown once, only its hash is stored):")
    print(f"\n    export STRONGROOM_TOKEN={result.token.secret}\n")
    console.print("Start the platform with: strongroom up")


@app.command()
def up(
    home: HomeOpt = None,
    port: Annotated[int | None, typer.Option(help="HTTPS port (0 = any free port).")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
) -> None:
    """Serve the API over HTTPS and on the sandbox socket until SIGTERM."""
    import logging

    from strongroom.api.server import serve
    from strongroom.core.platform import Platform

    config = _config(home, port=port, host=host)
    logging.basicConfig(level=config.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Platform(config))


@app.command()
def status(home: HomeOpt = None, as_json: JsonOpt = False) -> None:
    """Say what runs where: the HTTPS address, the sandbox socket, workers, the audit head."""
    from strongroom.core.platform import read_server_info

    config = _config(home)
    info = read_server_info(config)
    if info is None:
        err_console.print(f"not running: no server in {config.home}; start it with `strongroom up`")
        raise typer.Exit(1)
    alive = _pid_alive(int(str(info.get("pid", 0))))
    reachable = _tls_reachable(config, str(info.get("host", "127.0.0.1")), int(str(info.get("port", 0))))
    report: dict[str, Any] = {**info, "process": "running" if alive else "gone", "https": reachable}
    if os.environ.get("STRONGROOM_TOKEN") and reachable == "ok":
        try:
            with Session(home=config.home) as s:
                report["audit_head_seq"] = s.status()["audit_head_seq"]
        except StrongroomError as exc:
            report["api"] = exc.detail
    show(report, as_json)
    if not alive or reachable != "ok":
        raise typer.Exit(1)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError, ValueError):
        return False
    return pid > 0


def _tls_reachable(config: Config, host: str, port: int) -> str:
    context = ssl.create_default_context(cafile=str(config.tls_dir / "ca.pem"))
    try:
        with (
            socket.create_connection((host if host not in ("0.0.0.0", "::") else "127.0.0.1", port), 3) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            return "ok" if tls.version() else "no TLS"
    except OSError as exc:
        return f"unreachable ({exc})"


@app.command()
def demo(
    home: HomeOpt = None,
    keep_running: Annotated[bool, typer.Option(help="Leave the platform up and print how to reach it.")] = False,
) -> None:
    """Run the workshop flow on a fresh home and print what happened."""
    from strongroom.demo.run import run_demo

    code = run_demo(home=home, keep_running=keep_running)
    raise typer.Exit(code)


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

    issued = session().call("POST", "/api/v1/sessions", SessionToken, json_body={"role": role, "team": team})
    if export:
        print(f"export STRONGROOM_TOKEN={issued.token}")
    else:
        show(issued, as_json)


# -- policy -----------------------------------------------------------------------------------


def _parse_tags(tags: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in tags or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r}: use key=value", param_hint="--tag")
        out[key] = value
    return out


@policy_app.command("simulate")
def policy_simulate(
    principal: Annotated[str, typer.Option(help="User name.")],
    action: Annotated[str, typer.Option(help="Action, e.g. CreateTrainingJob.")],
    resource: Annotated[str, typer.Option(help="srn:strongroom:<team>:<type>/<name>")],
    context: Annotated[str, typer.Option(help="Request context as JSON.")] = "{}",
    acting_as: Annotated[str | None, typer.Option(help="Role@team to act as.")] = None,
    owner: Annotated[str, typer.Option(help="Resource owner.")] = "",
    tag: Annotated[list[str] | None, typer.Option(help="Resource tag key=value (repeatable).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the decision and the policies that determined it."""
    try:
        parsed = json.loads(context)
    except ValueError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--context") from exc
    result = session().policies.simulate(
        principal, action, resource, parsed, acting_as=acting_as, owner=owner, tags=_parse_tags(tag)
    )
    if as_json:
        print_json(result)
        return
    colour = "green" if result.decision == "Allow" else "red"
    console.print(f"[bold {colour}]{result.decision}[/bold {colour}]  {result.explanation}")
    console.print(f"determining policies: {', '.join(result.determining_policies) or '(none: default deny)'}")


@policy_app.command("attach")
def policy_attach(team: str, name: str, file: Path, description: str = "", as_json: JsonOpt = False) -> None:
    """Attach a Cedar policy file to a team (validated against the schema)."""
    show(session().policies.attach(team, name, file.read_text(), description), as_json)


@policy_app.command("list")
def policy_list(team: str, as_json: JsonOpt = False) -> None:
    show(session().policies.list(team), as_json, ["team", "name", "description", "created_by", "created_at"])


@policy_app.command("detach")
def policy_detach(team: str, name: str) -> None:
    session().policies.detach(team, name)
    console.print(f"detached {name} from {team}")


@policy_app.command("actions")
def policy_actions(as_json: JsonOpt = False) -> None:
    """The actions policies can name."""
    actions = session().status()["actions"]
    if as_json:
        print_json(actions)
    else:
        for action in actions:
            console.print(action)


# -- audit ------------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(as_json: JsonOpt = False) -> None:
    """Walk the hash chain and the signed checkpoints; exit 1 and name the first bad event."""
    report = session().audit.verify()
    if as_json:
        print_json(report)
    elif report.ok:
        console.print(
            f"[green]OK[/green] {report.events} events, {report.checkpoints} signed checkpoints, "
            f"head {report.head_seq} {report.head_hash[:16]}…"
        )
    else:
        console.print(f"[red]FAILED[/red] {report.problem}")
    if not report.ok:
        raise typer.Exit(1)


_EVENT_COLUMNS = ["seq", "time", "principal", "role", "action", "resource", "decision", "outcome"]


@audit_app.command("tail")
def audit_tail(count: Annotated[int, typer.Option("-n", "--count")] = 20, as_json: JsonOpt = False) -> None:
    show(session().audit.tail(count), as_json, _EVENT_COLUMNS)


@audit_app.command("query")
def audit_query(
    principal: str | None = None,
    action: str | None = None,
    team: str | None = None,
    decision: str | None = None,
    request_id: str | None = None,
    limit: int = 100,
    after_seq: int = 0,
    as_json: JsonOpt = False,
) -> None:
    events = session().audit.query(
        principal=principal,
        action=action,
        team=team,
        decision=decision,
        request_id=request_id,
        limit=limit,
        after_seq=after_seq,
    )
    show(events, as_json, _EVENT_COLUMNS)


@audit_app.command("export")
def audit_export(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File (default stdout).")] = None,
    principal: str | None = None,
    action: str | None = None,
    team: str | None = None,
) -> None:
    """Export matching events as JSON lines."""
    lines = session().audit.export(principal=principal, action=action, team=team)
    if output is None:
        for line in lines:
            print(line)
        return
    count = 0
    with output.open("w") as handle:
        for line in lines:
            handle.write(line + "\n")
            count += 1
    err_console.print(f"wrote {count} events to {output}")


def main() -> None:
    try:
        app()
    except StrongroomError as exc:
        where = f" (field: {exc.field})" if exc.field else ""
        err_console.print(f"[red]error:[/red] {exc.detail}{where}")
        sys.exit(1)
