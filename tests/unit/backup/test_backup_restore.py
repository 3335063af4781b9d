"""Back up a platform while it is being written to, restore it into a new home, compare."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strongroom.cli.main import app
from strongroom.core.config import Config
from strongroom.core.context import Grant
from strongroom.platform import Platform
from tests.conftest import ON_POSTGRESQL, ON_SQLITE
from tests.support import context_for

runner = CliRunner()
ADMIN = context_for("admin", Grant("PlatformAdmin"))
DANA = context_for("dana", Grant("DataScienceAdmin", "risk"))
ALICE = context_for("alice", Grant("DataScientist", "risk"))
# These check the home's own files (witness, keys, modes): a SQLite home restores without a new
# database (a PostgreSQL backup needs one: test_a_postgresql_platform_restores_into_a_new_database).


def _rows(n: int) -> bytes:
    """Headerless CSV rows in the credit-card-default layout, different per object."""
    return b"".join(
        f"{20000 + n},2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1\n".encode() for _ in range(300)
    )


def _objects(platform: Platform) -> dict[str, str]:
    listed = platform.storage.list_objects(ALICE, "risk-data")
    return {
        o.key: hashlib.sha256(platform.storage.get_object_bytes(ALICE, "risk-data", o.key)).hexdigest()
        for o in listed.objects
    }


def _back_up_under_load(config: Config, backup: Path) -> tuple[dict[str, object], dict[str, str], int]:
    """Objects before, then a writer putting objects (and signing checkpoints) while the backup runs.

    Returns the backup's manifest, the objects the platform held afterwards and how many were written.
    """
    platform = Platform(config)
    platform.identity.create_team(ADMIN, "risk")
    platform.kms.create_key(ADMIN, "risk", "default", "risk data key")
    platform.storage.create_bucket(DANA, "risk", "risk-data")
    for n in range(5):
        platform.storage.put_object(ALICE, "risk-data", f"before/{n}.csv", [_rows(n)])
    platform.audit_log.checkpoint()
    stop, written = threading.Event(), []

    def write_load() -> None:
        n = 100
        while not stop.is_set():
            platform.storage.put_object(ALICE, "risk-data", f"during/{n}.csv", [_rows(n)])
            written.append(n)
            if n % 3 == 0:
                platform.audit_log.checkpoint()  # the witness file grows while the backup copies it
            n += 1

    writer = threading.Thread(target=write_load)
    writer.start()
    try:
        while len(written) < 3:
            stop.wait(0.05)
        result = runner.invoke(app, ["backup", str(backup), "--home", str(config.home), "--json"])
        after_backup = len(written)
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    original = _objects(platform)
    platform.close()
    return json.loads(result.output), original, after_backup


@ON_SQLITE  # the PostgreSQL variant is test_a_postgresql_platform_restores_into_a_new_database
def test_backup_under_write_load_restores_into_a_new_home(initialized: tuple[Config, str], tmp_path: Path) -> None:
    config, _ = initialized
    backup = tmp_path / "nightly.srbak"
    made, original, after_backup = _back_up_under_load(config, backup)
    assert after_backup > 3, "the backup ran while objects were being written"
    raw = backup.read_bytes()
    assert raw.startswith(b"STRONGROOM-BACKUP-1\n") and b"20000" not in raw and b"risk-data" not in raw
    assert oct(backup.stat().st_mode & 0o777) == "0o600"

    new_home = tmp_path / "restored"
    result = runner.invoke(
        app, ["restore", str(backup), "--home", str(new_home), "--root-key", str(config.home / "root.key"), "--json"]
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["audit_verify"]["ok"] is True
    same = "SELECT seq, hash FROM audit_events WHERE seq <= ? ORDER BY seq"
    head = made["audit_head_seq"]
    copied_chain = sqlite3.connect(new_home / "strongroom.db").execute(same, (head + 1_000_000,)).fetchall()
    assert copied_chain == sqlite3.connect(config.home / "strongroom.db").execute(same, (head,)).fetchall()
    restored = Platform(Config(home=new_home))
    try:
        assert restored.audit_log.verify().ok
        copy = _objects(restored)  # every object read succeeds, and holds what was written
        assert {k: original[k] for k in copy} == copy
        assert {f"before/{n}.csv" for n in range(5)} <= set(copy)
        assert len(copy) == made["blobs"] and 5 < len(copy) < len(original)
        witnessed = restored.config.audit_witness_path.read_text().splitlines()
        assert [json.loads(line)["seq"] for line in witnessed][-1] == restored.audit_log.last_checkpoint().seq
        assert not (new_home / ".restore").exists()
    finally:
        restored.close()


def test_restore_refuses_a_wrong_root_key_and_a_home_in_use(initialized: tuple[Config, str], tmp_path: Path) -> None:
    config, _ = initialized
    backup = tmp_path / "b.srbak"
    assert runner.invoke(app, ["backup", str(backup), "--home", str(config.home)]).exit_code == 0
    wrong = tmp_path / "wrong.key"
    wrong.write_text("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
    wrong.chmod(0o600)

    refused = runner.invoke(app, ["restore", str(backup), "--home", str(tmp_path / "n1"), "--root-key", str(wrong)])
    assert refused.exit_code == 1 and "failed authentication" in refused.output
    assert not (tmp_path / "n1").exists()
    in_use = runner.invoke(app, ["restore", str(backup), "--home", str(config.home)])
    assert in_use.exit_code == 1 and "not empty" in in_use.output
    garbled = tmp_path / "garbled.key"
    garbled.write_bytes(b"\x8f\x00 not base64")
    garbled.chmod(0o600)
    refused = runner.invoke(app, ["restore", str(backup), "--home", str(tmp_path / "n2"), "--root-key", str(garbled)])
    assert refused.exit_code == 1 and "must hold base64 of 32 bytes" in refused.output
    assert refused.exception is None or isinstance(refused.exception, SystemExit)  # an error, not a traceback
    assert not (tmp_path / "n2").exists()


def test_a_backup_into_a_folder_is_refused_and_leaves_no_partial_file(
    initialized: tuple[Config, str], tmp_path: Path
) -> None:
    config, _ = initialized
    folder = tmp_path / "backups"
    folder.mkdir()
    refused = runner.invoke(app, ["backup", str(folder), "--home", str(config.home)])
    assert refused.exit_code == 1 and "is a folder; name the backup file" in refused.output
    assert not list(tmp_path.glob("*.partial")) and not list(folder.iterdir())


@ON_SQLITE
def test_a_checkpoint_being_appended_to_the_witness_file_does_not_fail_the_backup(
    initialized: tuple[Config, str], tmp_path: Path
) -> None:
    config, _ = initialized
    witness = config.audit_witness_path
    complete = witness.read_bytes()
    with witness.open("ab") as handle:
        handle.write(b'{"seq": 99999, "hash": "ab')  # caught mid-append
    backup = tmp_path / "b.srbak"
    made = runner.invoke(app, ["backup", str(backup), "--home", str(config.home)])
    assert made.exit_code == 0, made.output
    witness.write_bytes(complete)
    restored = runner.invoke(
        app, ["restore", str(backup), "--home", str(tmp_path / "r"), "--root-key", str(config.home / "root.key")]
    )
    assert restored.exit_code == 0, restored.output
    assert (tmp_path / "r" / "audit" / "checkpoints.log").read_bytes() == complete


@ON_SQLITE
def test_a_restore_drill_on_the_same_host_never_overwrites_the_live_witness_file(
    initialized: tuple[Config, str], tmp_path: Path
) -> None:
    config, _ = initialized
    live = tmp_path / "witness" / "checkpoints.log"  # kept outside the home, as docs/operations.md advises
    live.parent.mkdir()
    live.write_bytes(config.audit_witness_path.read_bytes())
    settings = config.home / "config.toml"
    settings.write_text(settings.read_text().replace('audit_witness_file = ""', f'audit_witness_file = "{live}"'))
    backup = tmp_path / "b.srbak"
    assert runner.invoke(app, ["backup", str(backup), "--home", str(config.home)]).exit_code == 0
    with live.open("ab") as handle:  # the live platform signs on after the backup
        handle.write(b'{"seq": 99999}\n')
    before = live.read_bytes()

    drill = runner.invoke(
        app, ["restore", str(backup), "--home", str(tmp_path / "drill"), "--root-key", str(config.home / "root.key")]
    )
    assert drill.exit_code == 1 and "sets audit_witness_file to" in drill.output and "in use" in drill.output
    assert live.read_bytes() == before and not (tmp_path / "drill").exists()


@ON_SQLITE
def test_restored_keys_and_folders_are_private_to_the_owner(initialized: tuple[Config, str], tmp_path: Path) -> None:
    config, _ = initialized
    backup = tmp_path / "b.srbak"
    assert runner.invoke(app, ["backup", str(backup), "--home", str(config.home)]).exit_code == 0
    new_home = tmp_path / "restored"
    restored = runner.invoke(
        app, ["restore", str(backup), "--home", str(new_home), "--root-key", str(config.home / "root.key")]
    )
    assert restored.exit_code == 0, restored.output
    for wrapped in ("tls/ca.key.wrapped", "tls/server.key.enc", "audit-signing.key.wrapped"):
        assert oct((new_home / wrapped).stat().st_mode & 0o777) == "0o600", wrapped
    for folder in ("tls", "audit"):
        assert oct((new_home / folder).stat().st_mode & 0o777) == "0o700", folder


@pytest.mark.postgres
@ON_POSTGRESQL
def test_a_postgresql_platform_restores_into_a_new_database(initialized: tuple[Config, str], tmp_path: Path) -> None:
    import psycopg

    from tests.conftest import POSTGRES_URL

    config, _ = initialized
    schema = config.database_url.rsplit("%3D", 1)[1]
    backup = tmp_path / "pg.srbak"
    made, original, after_backup = _back_up_under_load(config, backup)
    assert after_backup > 3 and 5 < int(str(made["blobs"])) < len(original)

    server = "postgresql://" + POSTGRES_URL.split("://", 1)[1].rsplit("/", 1)[0]
    database = f"sr_restore_{tmp_path.name[-8:].replace('-', '_').lower()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        target = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{database}?options=-csearch_path%3D{schema}"
        key = ["--root-key", str(config.home / "root.key")]
        no_url = runner.invoke(app, ["restore", str(backup), "--home", str(tmp_path / "n0"), *key])
        assert no_url.exit_code == 1 and "--database-url" in no_url.output
        restored_home = tmp_path / "restored"
        result = runner.invoke(
            app,
            [
                "restore",
                str(backup),
                "--home",
                str(restored_home),
                "--root-key",
                str(config.home / "root.key"),
                "--database-url",
                target,
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["audit_verify"]["ok"] is True
        restored = Platform(Config(home=restored_home))
        try:
            assert restored.config.database_url == target
            copy = _objects(restored)
            assert {k: original[k] for k in copy} == copy and len(copy) == made["blobs"]
            assert restored.audit_log.verify().ok
        finally:
            restored.close()
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
