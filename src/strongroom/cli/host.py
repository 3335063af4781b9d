"""Commands run on the platform's host by whoever holds its root key: no token, no running server."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from strongroom.cli.common import HomeOpt, JsonOpt, config_for
from strongroom.cli.output import print_json, say

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

    from strongroom.platform import Platform

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
    say("PlatformAdmin ", (user, "bold"), f": revoked {len(revoked)} old token(s); new token (shown once):")
    say(f"\n    export STRONGROOM_TOKEN={issued.secret}\n")


def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the encrypted backup.")],
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an encrypted, consistent snapshot of the platform (safe while it serves)."""
    from strongroom.backup.snapshot import create_backup

    manifest = create_backup(config_for(home), file)
    if as_json:
        print_json({"file": str(file), **asdict(manifest)})
        return
    say(
        ("Backed up", "green"),
        f" to {file}: audit head {manifest.audit_head_seq}, "
        f"{manifest.checkpoints} checkpoints, {manifest.blobs} objects ({manifest.blob_bytes} bytes), "
        f"{manifest.files} files. Keep the root key apart from it.",
    )


def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `strongroom backup`.", exists=True, dir_okay=False)],
    home: Annotated[Path, typer.Option("--home", help="The new, empty platform home.")],
    root_key: Annotated[
        Path | None,
        typer.Option(help="The root key file (else STRONGROOM_ROOT_KEY or STRONGROOM_ROOT_PASSPHRASE).", exists=True),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="For a PostgreSQL backup: a new, empty database to restore into.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Bring a platform back from a backup into a new home, then verify its audit log."""
    from strongroom.backup.snapshot import restore_backup
    from strongroom.platform import Platform

    manifest = restore_backup(file, home, root_key_file=root_key, database_url=database_url)
    platform = Platform(config_for(home))
    try:
        report = platform.audit_log.verify()
    finally:
        platform.close()
    if as_json:
        print_json({"home": str(home), **asdict(manifest), "audit_verify": report})
    else:
        verdict = ("OK", "green") if report.ok else (f"FAILED {report.problem}", "red")
        say(f"Restored {home} from a backup of {manifest.created_at}; audit verify: ", verdict)
    if not report.ok:
        raise typer.Exit(1)


def install_service(
    home: HomeOpt = None,
    user: Annotated[str, typer.Option(help="The dedicated user the service runs as.")] = "strongroom",
    unit_dir: Annotated[Path, typer.Option(help="Where the unit goes.")] = Path("/etc/systemd/system"),
    env_file: Annotated[Path, typer.Option(help="The environment file (0600).")] = Path(
        "/etc/strongroom/strongroom.env"
    ),
    after: Annotated[str, typer.Option(help="Units to start after, e.g. postgresql.service.")] = "",
) -> None:
    """Write a systemd unit and environment file that run `strongroom up` for this home."""
    from strongroom.core.systemd import install

    config = config_for(home)
    files = install(config.home, user=user, unit_dir=unit_dir, env_file=env_file, after=after)
    say(f"Wrote {files.unit} and {files.env}. Then, as root:")
    for problem in files.problems:
        say(("warning:", "yellow"), f" {problem}")
    # The unit runs `up`, which needs an initialised home: say so where there is none yet.
    init = "" if (config.home / "root.check").exists() else f"\n    strongroom init --home {config.home}"
    say(
        f"\n    id {user} || useradd --system --home-dir {config.home} --shell /usr/sbin/nologin {user}"
        f"{init}"
        f"\n    chown -R {user}:{user} {config.home}"
        "\n    systemctl daemon-reload && systemctl enable --now strongroom"
        "\n    systemctl reload strongroom   # SIGHUP: policies and certificates, no restart\n"
    )
