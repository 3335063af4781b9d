"""`strongroom keys|buckets` and `strongroom cp|ls|rm` for sr:// objects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from strongroom.cli.common import JsonOpt, session
from strongroom.cli.output import as_markup, err_console, print_json, say, show
from strongroom.core.errors import InvalidInput
from strongroom.storage.keys import parse_uri

keys_app = typer.Typer(no_args_is_help=True, help="Customer-managed team keys (KMS).")
buckets_app = typer.Typer(no_args_is_help=True, help="Encrypted, versioned team buckets.")

_KEY_COLUMNS = ["id", "aliases", "state", "keyring", "primary_version", "rotation_period_days", "deletion_date"]
VersionOpt = Annotated[str | None, typer.Option("--version-id", help="A specific version (default: the latest).")]


# -- keys -------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    team: str,
    alias: str,
    description: str = "",
    keyring: Annotated[str | None, typer.Option(help="local or pkcs11 (default: the platform's).")] = None,
    rotation_days: Annotated[int | None, typer.Option(help="Rotate automatically every N days.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a customer-managed team key and give it ALIAS."""
    with session() as s:
        show(s.keys.create(team, alias, description, keyring=keyring, rotation_period_days=rotation_days), as_json)


@keys_app.command("list")
def keys_list(team: str, as_json: JsonOpt = False) -> None:
    """List a team's keys."""
    with session() as s:
        show(s.keys.list(team), as_json, _KEY_COLUMNS)


@keys_app.command("describe")
def keys_describe(team: str, key: str, as_json: JsonOpt = False) -> None:
    """Show a key: state, versions, rotation, deletion date."""
    with session() as s:
        show(s.keys.describe(team, key), as_json)


@keys_app.command("enable")
def keys_enable(team: str, key: str, as_json: JsonOpt = False) -> None:
    """Enable a disabled key."""
    with session() as s:
        show(s.keys.enable(team, key), as_json)


@keys_app.command("disable")
def keys_disable(team: str, key: str, as_json: JsonOpt = False) -> None:
    """Refuse every use of the key (reads and writes of data under it) until re-enabled."""
    with session() as s:
        show(s.keys.disable(team, key), as_json)


@keys_app.command("rotate")
def keys_rotate(team: str, key: str, as_json: JsonOpt = False) -> None:
    """Make a new key version primary; older versions keep decrypting older data."""
    with session() as s:
        show(s.keys.rotate(team, key), as_json)


@keys_app.command("set-rotation")
def keys_set_rotation(
    team: str,
    key: str,
    days: Annotated[int, typer.Argument(help="Days between rotations; 0 turns it off.")],
    as_json: JsonOpt = False,
) -> None:
    """Rotate the key automatically every DAYS days (0: never)."""
    with session() as s:
        show(s.keys.set_rotation(team, key, days or None), as_json)


@keys_app.command("schedule-deletion")
def keys_schedule_deletion(
    team: str,
    key: str,
    waiting_seconds: Annotated[int | None, typer.Option(help="Waiting period (default: the platform's).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """After the waiting period the key is destroyed and data under it is unrecoverable."""
    with session() as s:
        show(s.keys.schedule_deletion(team, key, waiting_seconds), as_json)


@keys_app.command("cancel-deletion")
def keys_cancel_deletion(team: str, key: str, as_json: JsonOpt = False) -> None:
    """Cancel a scheduled deletion (the key stays disabled until enabled)."""
    with session() as s:
        show(s.keys.cancel_deletion(team, key), as_json)


@keys_app.command("alias")
def keys_alias(team: str, key: str, alias: str, as_json: JsonOpt = False) -> None:
    """Give a key another alias."""
    with session() as s:
        show(s.keys.create_alias(team, key, alias), as_json)


@keys_app.command("policy")
def keys_policy(
    team: str,
    key: str,
    file: Annotated[Path | None, typer.Option("--set", help="Cedar file to attach ('' file clears).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a key's policy, or attach one with --set FILE."""
    with session() as s:
        result = s.keys.put_policy(team, key, file.read_text()) if file else s.keys.get_policy(team, key)
        if as_json:
            print_json(result)
        else:
            say(result.policy or "(no key policy)")


# -- buckets ----------------------------------------------------------------------------------


@buckets_app.command("create")
def buckets_create(
    name: str,
    team: str,
    key: Annotated[str | None, typer.Option(help="Team key alias or id (default: 'default').")] = None,
    description: str = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an encrypted, versioned bucket for TEAM."""
    with session() as s:
        show(s.buckets.create(name, team, key=key, description=description), as_json)


@buckets_app.command("list")
def buckets_list(team: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False) -> None:
    """List the buckets you can see."""
    with session() as s:
        show(s.buckets.list(team), as_json, ["name", "team", "default_key_id", "has_policy", "created_at"])


@buckets_app.command("describe")
def buckets_describe(name: str, as_json: JsonOpt = False) -> None:
    """Show a bucket: team, default key, policy."""
    with session() as s:
        show(s.buckets.describe(name), as_json)


@buckets_app.command("delete")
def buckets_delete(name: str) -> None:
    """Delete an empty bucket."""
    with session() as s:
        s.buckets.delete(name)
    say(f"deleted bucket {name}")


@buckets_app.command("policy")
def buckets_policy(
    name: str,
    file: Annotated[Path | None, typer.Option("--set", help="Cedar file to attach.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the bucket policy.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a bucket's policy, attach one with --set FILE, or remove it with --clear."""
    with session() as s:
        if clear:
            s.buckets.delete_policy(name)
            say(f"removed the policy of {name}")
            return
        result = s.buckets.put_policy(name, file.read_text()) if file else s.buckets.get_policy(name)
        if as_json:
            print_json(result)
        else:
            say(result.policy or "(no bucket policy)")


# -- cp / ls / rm -----------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
    )


def cp(
    source: str,
    destination: str,
    version_id: VersionOpt = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="name=value (uploads), repeatable.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Copy a local file to sr://bucket/key, sr:// to a local file, or sr:// to sr://."""
    with session() as s:
        tags = dict(t.split("=", 1) for t in tag or [])
        if source.startswith("sr://") and destination.startswith("sr://"):
            sb, sk = parse_uri(source)
            db, dk = parse_uri(destination)
            result = s.buckets.copy_object(
                sb, sk, db, dk or sk.rsplit("/", 1)[-1], source_version_id=version_id, tags=tags or None
            )
            show(result, as_json)
        elif destination.startswith("sr://"):
            bucket, key = parse_uri(destination)
            path = Path(source)
            if path.is_dir():
                raise InvalidInput(f"{source} is a directory; copy its files one at a time", field="source")
            if not path.is_file():
                raise InvalidInput(f"{source}: no such file", field="source")
            if not key or key.endswith("/"):
                key = f"{key}{path.name}"
            with _progress() as bar:
                task = bar.add_task(as_markup(f"up {path.name}"), total=path.stat().st_size)
                result = s.buckets.put_object(
                    bucket, key, path, tags=tags or None, progress=lambda n: bar.advance(task, n)
                )
            if as_json:
                print_json(result)
            else:
                say(f"{result.uri} version {result.version_id}")
        elif source.startswith("sr://"):
            bucket, key = parse_uri(source)
            meta = s.buckets.head_object(bucket, key, version_id)
            target = Path(destination)
            if target.is_dir():
                target = target / key.rsplit("/", 1)[-1]
            with _progress() as bar:
                task = bar.add_task(as_markup(f"down {key.rsplit('/', 1)[-1]}"), total=meta.size)
                s.buckets.download(bucket, key, target, version_id=version_id, progress=lambda n: bar.advance(task, n))
            if as_json:
                print_json({"path": str(target), "version_id": meta.version_id, "sha256": meta.sha256})
            else:
                say(f"{target} ({meta.size} bytes, version {meta.version_id})")
        else:
            raise typer.BadParameter("one side must be an sr:// URI")


def ls(
    uri: Annotated[str, typer.Argument(help="sr://bucket[/prefix] (or nothing: your buckets)")] = "",
    versions: Annotated[bool, typer.Option("--versions", help="Every version and delete marker.")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List buckets, folders and objects."""
    with session() as s:
        if not uri:
            show(s.buckets.list(), as_json, ["name", "team", "created_at"])
            return
        bucket, prefix = parse_uri(uri)
        if versions:
            show(
                s.buckets.list_versions(bucket, prefix).versions,
                as_json,
                ["key", "version_id", "is_latest", "delete_marker", "size", "created_at"],
            )
            return
        items = list(s.buckets.iter_objects(bucket, prefix, delimiter="" if recursive else "/"))
        if as_json:
            print_json(items)
            return
        for item in items:
            if isinstance(item, str):
                say((f"{'DIR':>12}", "bold"), f"  sr://{bucket}/{item}")
            else:
                say(f"{item.size:>12}  {item.uri}  {item.created_at:%Y-%m-%d %H:%M}")


def rm(uri: str, version_id: VersionOpt = None, as_json: JsonOpt = False) -> None:
    """Delete an object (a delete marker; earlier versions stay) or, with --version-id, one version for good."""
    bucket, key = parse_uri(uri)
    with session() as s:
        result = s.buckets.delete_object(bucket, key, version_id)
    if as_json:
        print_json(result)
    elif version_id:
        say(f"deleted version {version_id} of {uri}")
    else:
        say(f"deleted {uri} (delete marker {result.version_id}; older versions remain)")
