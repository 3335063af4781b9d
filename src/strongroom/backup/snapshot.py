"""``strongroom backup`` and ``strongroom restore``.

A backup file is ``MAGIC || header line (JSON: the passphrase salt, if any) || ciphertext``; the
ciphertext is a tar archive sealed with the streaming AEAD under a key derived from the root key.
The archive holds:

* ``database.sqlite`` (SQLite online backup API: one consistent point in time) or ``database.dump``
  (``pg_dump --format=custom`` of the platform's schema, reading a snapshot that our own transaction
  exported and reads too, so the blobs and the witness cut match the dump);
* ``blobs/``: the stored ciphertext of every object version the database snapshot refers to;
* ``home/``: ``config.toml``, ``root.check``, the platform CA and server certificate (keys wrapped or
  encrypted by the root key), the audit signing key (wrapped), and the encrypted volumes of team git
  repositories and notebooks (``volume.key``, wrapped by the team key, and ``cipher/``; never a
  mounted plaintext ``home/``);
* ``audit/checkpoints.log``: the witness file, cut at the last checkpoint the database snapshot
  holds (a checkpoint is appended to the file just before its database row commits, so the file
  copied after the snapshot may run ahead of it by one);
* ``manifest.json``: what is in it.

The root key itself is never in a backup: keep it apart. Team keys are rows of the database,
wrapped by the root key (local keyring) or inside the HSM (pkcs11).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import strongroom
from strongroom.core.archive import ArchiveLimits, GiB, extract_archive
from strongroom.core.config import Config
from strongroom.core.errors import ConfigurationError, IntegrityError, InvalidInput
from strongroom.core.rootkey import RootKey, load_root_key
from strongroom.kms.streaming import StreamingAead
from strongroom.storage.backends import build_blob_store

MAGIC = b"STRONGROOM-BACKUP-1\n"
_AD = b"strongroom/backup/v1"
_KEY_LABEL = "strongroom/backup"
_CHUNK = 1 << 20
_HOME_FILES = ("config.toml", "root.check", "audit-signing.pub", "audit-signing.key.wrapped")
_LIMITS = ArchiveLimits(max_members=10_000_000, max_member_bytes=1024 * GiB, max_total_bytes=64 * 1024 * GiB)


@dataclass(frozen=True)
class Manifest:
    """What a backup holds."""

    strongroom_version: str
    created_at: str
    database: str  # "sqlite" | "postgresql"
    audit_head_seq: int
    checkpoints: int
    blobs: int
    blob_bytes: int
    files: int


def _pg_url(url: str) -> str:
    """The libpq form of a SQLAlchemy PostgreSQL URL."""
    return "postgresql://" + url.split("://", 1)[1]


@dataclass(frozen=True)
class _Snapshot:
    """What the database copy holds, read from the copy's own point in time."""

    kind: str
    head: int
    last_checkpoint: int
    checkpoints: int
    blobs: list[str]


_HEAD = "SELECT coalesce(max(seq), 0) FROM audit_events"
_CHECKPOINTS = "SELECT coalesce(max(seq), 0), count(*) FROM audit_checkpoints"
_BLOBS = "SELECT DISTINCT blob FROM object_versions WHERE blob != ''"


def _snapshot_database(config: Config, staging: Path) -> _Snapshot:
    """Copy the database into ``staging`` at one point in time, and say what that copy holds."""
    url = config.effective_database_url
    if url.startswith("sqlite"):
        source = sqlite3.connect(url.split("///", 1)[1])
        target = sqlite3.connect(staging / "database.sqlite")
        try:
            source.backup(target)
            last, count = target.execute(_CHECKPOINTS).fetchone()
            blobs = sorted(row[0] for row in target.execute(_BLOBS))
            return _Snapshot("sqlite", target.execute(_HEAD).fetchone()[0], last, count, blobs)
        finally:
            source.close()
            target.close()
    return _dump_postgres(_pg_url(url), staging / "database.dump")


def _dump_postgres(url: str, dump: Path) -> _Snapshot:
    """``pg_dump`` the platform's schema from a snapshot this transaction exported and reads too."""
    import psycopg

    if shutil.which("pg_dump") is None:
        raise ConfigurationError("backing up PostgreSQL needs pg_dump (Debian: postgresql-client)")
    with psycopg.connect(url, autocommit=False) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_export_snapshot(), current_schema()")
            snapshot_id, schema = cur.fetchone() or ("", "")
            head = (cur.execute(_HEAD).fetchone() or (0,))[0]
            last, count = cur.execute(_CHECKPOINTS).fetchone() or (0, 0)
            blobs = sorted(row[0] for row in cur.execute(_BLOBS))
            # pg_dump reads the same snapshot while this transaction holds it open.
            only = [f"--schema={schema}"] if schema != "public" else []
            done = subprocess.run(
                [
                    "pg_dump",
                    "--format=custom",
                    "--no-owner",
                    "--no-privileges",
                    f"--snapshot={snapshot_id}",
                    *only,
                    "--file",
                    str(dump),
                    url,
                ],
                capture_output=True,
                text=True,
            )
        conn.rollback()
    if done.returncode != 0:
        raise ConfigurationError(f"pg_dump failed: {done.stderr.strip()[-500:]}")
    return _Snapshot("postgresql", head, last, count, blobs)


def _witness_lines(path: Path, last_seq: int) -> bytes:
    """The witness file up to (and with) the checkpoint at ``last_seq``."""
    if not path.exists():
        return b""
    kept = []
    for line in path.read_bytes().splitlines(keepends=True):
        # A line without its newline is a checkpoint being appended as we read: later than the snapshot.
        if not line.endswith(b"\n") or json.loads(line)["seq"] > last_seq:
            break
        kept.append(line)
    return b"".join(kept)


def _volume_files(root: Path) -> Iterator[Path]:
    """The ciphertext side of encrypted volumes under ``root``: ``volume.key`` and ``cipher/``."""
    if not root.is_dir():
        return
    for dirpath, dirs, files in os.walk(root):
        here = Path(dirpath)
        if "home" in dirs:
            dirs.remove("home")  # the mounted plaintext view: never copied
        relative = here.relative_to(root).parts
        for name in files:
            if name == "volume.key" or "cipher" in relative:
                yield here / name


def create_backup(config: Config, destination: Path) -> Manifest:
    """Write an encrypted snapshot of the platform at ``config.home`` to ``destination``.

    Runs while the platform serves: the database copy is one point in time; the blobs and files it
    refers to are copied after it.

    Raises:
        ConfigurationError: no home, or the database kind cannot be backed up here.
        IntegrityError: an object's ciphertext disappeared while the backup ran (run it again).
    """
    home = config.home
    if not (home / "root.check").exists():
        raise ConfigurationError(f"{home} is not a Strongroom home")
    root = load_root_key(home)
    destination = destination.expanduser().resolve()
    if destination.is_dir():
        raise InvalidInput(
            f"{destination} is a folder; name the backup file, e.g. {destination / 'strongroom.srbak'}", field="file"
        )
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".strongroom-backup-", dir=destination.parent))
    try:
        tree = staging / "tree"
        tree.mkdir()
        snap = _snapshot_database(config, tree)
        witness = _witness_lines(config.audit_witness_path, snap.last_checkpoint)
        (tree / "audit").mkdir()
        (tree / "audit" / "checkpoints.log").write_bytes(witness)
        blob_bytes = _copy_blobs(config, snap.blobs, tree / "blobs")
        files = _copy_home(config, tree / "home")
        manifest = Manifest(
            strongroom_version=strongroom.__version__,
            created_at=dt.datetime.now(dt.UTC).isoformat(),
            database=snap.kind,
            audit_head_seq=snap.head,
            checkpoints=snap.checkpoints,
            blobs=len(snap.blobs),
            blob_bytes=blob_bytes,
            files=files,
        )
        (tree / "manifest.json").write_text(json.dumps(asdict(manifest), indent=2))
        plain = staging / "backup.tar"
        with tarfile.open(plain, "w") as tar:
            for entry in sorted(tree.iterdir()):
                tar.add(entry, arcname=entry.name)
        _seal(root, home, plain, destination)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _copy_blobs(config: Config, blobs: list[str], target: Path) -> int:
    store = build_blob_store(config)
    total = 0
    for path in blobs:
        try:
            reader = store.open(path)
        except IntegrityError as exc:
            raise IntegrityError(
                f"the object ciphertext {path} was deleted while the backup ran; run the backup again"
            ) from exc
        out = target.joinpath(*path.split("/"))
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with out.open("wb") as handle:
                offset = 0
                while offset < reader.size:
                    chunk = reader.read_at(offset, min(_CHUNK, reader.size - offset))
                    if not chunk:
                        break
                    handle.write(chunk)
                    offset += len(chunk)
                total += offset
        finally:
            reader.close()
    return total


def _copy_home(config: Config, target: Path) -> int:
    home = config.home
    wanted = [home / name for name in _HOME_FILES if (home / name).exists()]
    wanted += sorted(p for p in config.tls_dir.iterdir() if p.is_file()) if config.tls_dir.is_dir() else []
    wanted += list(_volume_files(home / "git"))
    volumes = config.effective_notebook_volumes_path
    copied = 0
    for source in wanted:
        out = target / source.relative_to(home)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out)
        copied += 1
    for source in _volume_files(volumes):
        out = target / "notebooks" / source.relative_to(volumes)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, out)
        copied += 1
    return copied


def _backup_key(root: RootKey) -> StreamingAead:
    return StreamingAead(root.derive(_KEY_LABEL))


def _seal(root: RootKey, home: Path, plain: Path, destination: Path) -> None:
    salt = home / "root.salt"
    header = {"salt": base64.b64encode(salt.read_bytes()).decode() if salt.exists() else None}

    partial = destination.with_name(destination.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC + json.dumps(header).encode() + b"\n")
            for piece in _backup_key(root).encrypt(_chunks(plain), _AD):
                out.write(piece)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, destination)
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-written backup left to be mistaken for one
        raise


def restore_backup(
    source: Path, home: Path, *, root_key_file: Path | None = None, database_url: str | None = None
) -> Manifest:
    """Bring a platform back from ``source`` into the new, empty home ``home``.

    The root key comes from ``root_key_file`` (copied to ``home/root.key``), or from
    ``STRONGROOM_ROOT_KEY`` / ``STRONGROOM_ROOT_PASSPHRASE``. A PostgreSQL backup is restored into
    ``database_url``, a new database without a Strongroom schema, which the new home then uses.

    Raises:
        ConfigurationError: ``home`` is not empty, or no root key was given.
        IntegrityError: the file is not a backup of a platform with this root key, or was modified.
    """
    home = home.expanduser().resolve()
    if home.exists() and any(home.iterdir()):
        raise ConfigurationError(f"{home} is not empty; restore into a new, empty home", field="home")
    with source.open("rb") as handle:
        if handle.read(len(MAGIC)) != MAGIC:
            raise InvalidInput(f"{source} is not a Strongroom backup", field="file")
        header = json.loads(handle.readline())
        offset = handle.tell()
    created = not home.exists()
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(home, 0o700)
    try:
        return _restore_into(source, offset, header, home, root_key_file, database_url)
    except BaseException:
        if created:  # a failed restore leaves nothing behind to be mistaken for a platform
            shutil.rmtree(home, ignore_errors=True)
        raise


def _restore_into(
    source: Path,
    offset: int,
    header: dict[str, str | None],
    home: Path,
    root_key_file: Path | None,
    database_url: str | None,
) -> Manifest:
    if header.get("salt"):
        (home / "root.salt").write_bytes(base64.b64decode(str(header["salt"])))
    if root_key_file is not None:
        fd = os.open(home / "root.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(root_key_file.read_bytes())
    root = load_root_key(home)
    staging = home / ".restore"
    staging.mkdir(mode=0o700)
    try:
        plain = staging / "backup.tar"
        size = source.stat().st_size - offset
        with source.open("rb") as handle, plain.open("wb") as out:

            def read_at(position: int, length: int) -> bytes:
                handle.seek(offset + position)
                return handle.read(length)

            try:
                for piece in _backup_key(root).decrypt_range(read_at, size, _AD):
                    out.write(piece)
            except IntegrityError as exc:
                raise IntegrityError(
                    f"{source} cannot be read with this root key: the key is not the one of the platform it "
                    f"was backed up from, or the file was modified or truncated ({exc})"
                ) from exc
        tree = staging / "tree"
        extract_archive(plain, tree, _LIMITS)
        plain.unlink()
        manifest = Manifest(**json.loads((tree / "manifest.json").read_text()))
        _place(tree, home, manifest, database_url)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _place(tree: Path, home: Path, manifest: Manifest, database_url: str | None) -> None:
    if manifest.database == "sqlite" and database_url:
        raise ConfigurationError("this backup holds a SQLite database; restore it without --database-url")
    if manifest.database == "postgresql" and not database_url:
        raise ConfigurationError(
            "this backup holds a PostgreSQL database: give --database-url of a new, empty database",
            field="database_url",
        )
    saved = tree / "home"
    _private(tree)
    for entry in sorted(saved.iterdir()):
        if entry.name != "notebooks":
            shutil.move(str(entry), home / entry.name)
    if (home / "root.check").exists():
        load_root_key(home)  # the restored check value must match the key we decrypted with
    if database_url:
        _set_database_url(home / "config.toml", database_url)
    config = Config(home=home)
    _refuse_live_paths(config)
    if (saved / "notebooks").is_dir():
        volumes = config.effective_notebook_volumes_path
        volumes.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(saved / "notebooks", volumes, dirs_exist_ok=True)
    for sub in ("run", "logs", "git", "tls"):
        (home / sub).mkdir(mode=0o700, exist_ok=True)
    if manifest.database == "sqlite":
        if config.database_url:
            raise ConfigurationError("the restored config.toml names a database_url, but this backup holds SQLite")
        shutil.move(str(tree / "database.sqlite"), config.effective_database_url.split("///", 1)[1])
    else:
        _restore_postgres(tree / "database.dump", config.effective_database_url)
    witness = config.audit_witness_path
    witness.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.move(str(tree / "audit" / "checkpoints.log"), witness)
    store = build_blob_store(config)
    blobs = tree / "blobs"
    if blobs.is_dir():
        for path in sorted(p for p in blobs.rglob("*") if p.is_file()):
            store.write(path.relative_to(blobs).as_posix(), _chunks(path))


def _refuse_live_paths(config: Config) -> None:
    """Refuse to write where the restored ``config.toml`` points outside the new home at files that
    already exist: on the host the backup came from (a restore drill), those are the live
    platform's witness file, blob store or notebook volumes, which the restore would overwrite."""
    places = [("audit_witness_file", config.audit_witness_path, config.audit_witness_path.exists())]
    for field, folder in (
        ("notebook_volumes_path", config.effective_notebook_volumes_path),
        ("blob_store_path", config.effective_blob_store_path if config.blob_store == "local" else None),
    ):
        if folder is not None:
            places.append((field, folder, folder.is_dir() and any(folder.iterdir())))
    for field, path, in_use in places:
        if in_use and not path.resolve().is_relative_to(config.home):
            raise ConfigurationError(
                f"the restored config.toml sets {field} to {path}, outside the new home, and it is in use "
                "(by the platform this backup came from?); restoring would overwrite it. Restore on another "
                f"host, or set {field} to a new path with STRONGROOM_{field.upper()} and in the new home's "
                "config.toml afterwards",
                field=field,
            )


def _private(tree: Path) -> None:
    """Owner-only modes for the restored files (0600) and folders (0700), as ``init`` makes the keys.

    The archive's extraction does not carry modes over, so the wrapped keys would otherwise come
    back readable by every user who can reach the home.
    """
    for dirpath, _dirs, files in os.walk(tree):
        os.chmod(dirpath, 0o700)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o600)


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


def _set_database_url(config_file: Path, url: str) -> None:
    """Point the restored ``config.toml`` at the new database."""
    line = f"database_url = {json.dumps(url)}"
    text = config_file.read_text() if config_file.exists() else ""
    lines = text.splitlines()
    found = [i for i, existing in enumerate(lines) if existing.split("=", 1)[0].strip() == "database_url"]
    if found:
        lines[found[0]] = line
    else:
        lines.insert(0, line)
    config_file.write_text("\n".join(lines) + "\n")


def _restore_postgres(dump: Path, url: str) -> None:
    from strongroom.db import migrate

    if migrate.current_revision(url):
        raise ConfigurationError("the database already holds a Strongroom schema; use a new one", field="database_url")
    if shutil.which("pg_restore") is None:
        raise ConfigurationError("restoring PostgreSQL needs pg_restore (Debian: postgresql-client)")
    done = subprocess.run(
        ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--dbname", _pg_url(url), str(dump)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ConfigurationError(f"pg_restore failed: {done.stderr.strip()[-500:]}")
