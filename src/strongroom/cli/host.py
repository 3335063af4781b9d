"""Commands run on the platform's host by whoever holds its root key: no token, no running server."""

from __future__ import annotations

from typing import Annotated

import typer

from strongroom.cli.common import HomeOpt, JsonOpt, config_for
from strongroom.cli.output import console, print_json

admin_app = typer.Typer(no_args_is_help=True, help="Recover the platform when no admin token is left.")


@admin_app.command("recover")
def admin_recover(
    home: HomeOpt = None,
    user: Annotated[str, typer.Option(help="The PlatformAdmin to recover (created if missing).")] = "admin",
    ttl_days: Annotated[
        int | None, typer.Option(help="Days the new token lives (default: default_token_ttl_days).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a new PlatformAdmin token for USER and revoke USER's old tokens (audited as the platform)."""
    import datetime as dt

    from strongroom.core.platform import Platform

    if ttl_days is not None and not 1 <= ttl_days <= 3650:
        raise typer.BadParameter("between 1 and 3650", param_hint="--ttl-days")
    platform = Platform(config_for(home))
    try:
        issued, revoked = platform.identity.recover_admin(
            user, dt.timedelta(days=ttl_days) if ttl_days is not None else None
        )
    finally:
        platform.close()
    if as_json:
        print_json({"user": user, "token": issued.secret, "expires_at": issued.token.expires_at, "revoked": revoked})
        return
    console.print(f"PlatformAdmin [bold]{user}[/bold]: revoked {len(revoked)} old token(s); new token (shown once):")
    print(f"\n    export STRONGROOM_TOKEN={issued.secret}\n")
