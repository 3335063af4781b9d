"""Encrypted buckets against a real `strongroom up`: SDK, sr:// with pandas, the CLI, crashes
mid-upload, and constant-memory transfers of a large object."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.core.errors import Conflict, Forbidden, InvalidInput
from strongroom.sdk.session import Session
from tests.support import RunningServer, start_server

MIB = 1 << 20


def _team(server: RunningServer) -> tuple[Session, Session]:
    """risk with a default key and a bucket; returns (admin, alice the data scientist)."""
    admin = server.session()
    admin.teams.create("risk")
    admin.users.create("alice")
    admin.teams.add_member("risk", "alice", "DataScientist")
    admin.users.create("dana")
    admin.teams.add_member("risk", "dana", "DataScienceAdmin")
    admin.keys.create("risk", "default")
    dana = server.session(admin.tokens.create("cli", user="dana").secret)
    dana.buckets.create("risk-data", "risk")
    alice = server.session(admin.tokens.create("cli", user="alice").secret)
    return admin, alice


def test_sdk_round_trip_over_https(server: RunningServer, tmp_path: Path) -> None:
    admin, alice = _team(server)
    data = os.urandom(5 * MIB + 11)  # a full 4 MiB direct-I/O block and an unaligned tail on download
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    uri = alice.upload_data(src, bucket="risk-data", key_prefix="models")
    assert uri == "sr://risk-data/models/model.bin"
    assert alice.list_objects("risk-data", "models/") == ["models/model.bin"]
    assert (
        alice.buckets.get_object("risk-data", "models/model.bin", start=MIB - 3, end=MIB + 3) == data[MIB - 3 : MIB + 3]
    )
    files = alice.download_data(tmp_path / "out", bucket="risk-data", key_prefix="models")
    assert Path(files[0]).read_bytes() == data
    meta = alice.buckets.head_object("risk-data", "models/model.bin")
    assert meta.sha256 == hashlib.sha256(data).hexdigest() and meta.size == len(data)
    with pytest.raises(Forbidden):
        admin.buckets.get_object("risk-data", "models/model.bin")  # the platform admin reads no team data
    with pytest.raises(InvalidInput):
        alice.buckets.put_object("risk-data", "../escape", b"x")
    with pytest.raises(InvalidInput):
        alice.buckets.put_object("risk-data", "raw/./x", b"x")
    admin.keys.disable("risk", "default")
    with pytest.raises(Conflict, match="disabled"):
        alice.buckets.get_object("risk-data", "models/model.bin")
    admin.keys.enable("risk", "default")
    assert alice.buckets.get_object("risk-data", "models/model.bin") == data


def test_sr_uris_work_with_pandas_and_fsspec(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec
    import pandas as pd

    _, alice = _team(server)
    monkeypatch.setenv("STRONGROOM_URL", server.url)
    monkeypatch.setenv("STRONGROOM_CA", str(server.ca))
    monkeypatch.setenv("STRONGROOM_TOKEN", alice._token)
    frame = pd.DataFrame({"LIMIT_BAL": [20000, 120000, 90000], "default": [1, 0, 0]})
    frame.to_csv("sr://risk-data/raw/data.csv", index=False)
    assert pd.read_csv("sr://risk-data/raw/data.csv").equals(frame)
    frame.to_parquet("sr://risk-data/raw/data.parquet")
    assert pd.read_parquet("sr://risk-data/raw/data.parquet").equals(frame)
    fs = fsspec.filesystem("sr")
    assert sorted(fs.ls("risk-data/raw", detail=False)) == ["risk-data/raw/data.csv", "risk-data/raw/data.parquet"]
    with fsspec.open("sr://risk-data/raw/data.csv", "rb") as handle:
        assert handle.read(9) == b"LIMIT_BAL"
    fs.rm("sr://risk-data/raw/data.csv")
    assert not fs.exists("sr://risk-data/raw/data.csv")


def test_cli_cp_ls_rm_with_versions(server: RunningServer, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from strongroom.cli.main import app

    _, alice = _team(server)
    env = {"STRONGROOM_URL": server.url, "STRONGROOM_CA": str(server.ca), "STRONGROOM_TOKEN": alice._token}
    runner = CliRunner()
    src = tmp_path / "a.csv"
    src.write_text("v1\n")
    assert runner.invoke(app, ["cp", str(src), "sr://risk-data/raw/a.csv"], env=env).exit_code == 0
    first = alice.buckets.head_object("risk-data", "raw/a.csv").version_id
    src.write_text("v2\n")
    assert runner.invoke(app, ["cp", str(src), "sr://risk-data/raw/a.csv"], env=env).exit_code == 0
    listed = runner.invoke(app, ["ls", "sr://risk-data/raw/", "--json"], env=env)
    assert listed.exit_code == 0 and "raw/a.csv" in listed.output
    out = tmp_path / "back.csv"
    got = runner.invoke(app, ["cp", "sr://risk-data/raw/a.csv", str(out), "--version-id", first], env=env)
    assert got.exit_code == 0, got.output
    assert out.read_text() == "v1\n"
    assert runner.invoke(app, ["rm", "sr://risk-data/raw/a.csv"], env=env).exit_code == 0
    assert alice.list_objects("risk-data", "raw/") == []


def _status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field}")


def _reset_rss_peak(pid: int) -> int:
    """Reset the process's peak RSS (clear_refs 5) and return its resident size now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_bytes(pid, "VmRSS")


def _pattern(total: int) -> Iterator[bytes]:
    block = hashlib.sha256(b"seed").digest() * (MIB // 32)
    sent = 0
    while sent < total:
        piece = block[: min(MIB, total - sent)]
        sent += len(piece)
        yield piece


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_2_gib_object_streams_up_and_down_in_constant_memory(server: RunningServer) -> None:
    _, alice = _team(server)
    before = _reset_rss_peak(server.process.pid)
    total = 2 << 30
    digest = hashlib.sha256()
    for piece in _pattern(total):
        digest.update(piece)
    stored = alice.buckets.put_object("risk-data", "big/2gib.bin", _pattern(total))
    assert stored.size == total and stored.sha256 == digest.hexdigest()
    down = hashlib.sha256()
    size = 0
    with alice.buckets.stream("risk-data", "big/2gib.bin") as (_, chunks):
        for chunk in chunks:
            down.update(chunk)
            size += len(chunk)
    assert size == total and down.hexdigest() == digest.hexdigest()
    # The server has served other tests; what matters is that 2 GiB did not grow it.
    growth = _status_bytes(server.process.pid, "VmHWM") - before
    assert growth < 64 * MIB, f"server peak RSS grew by {growth / MIB:.0f} MiB while streaming 2 GiB"


def test_kill_9_during_a_put_never_exposes_a_partial_object(initialized: tuple, tmp_path: Path) -> None:
    config, token = initialized
    server = start_server(config, token)
    try:
        _, alice = _team(server)
        old = os.urandom(100_000)
        alice.buckets.put_object("risk-data", "model.bin", old)
        alice_token = alice._token
        started = threading.Event()

        def slow_body() -> Iterator[bytes]:
            for _ in range(64):
                started.set()
                yield os.urandom(MIB)
                time.sleep(0.02)

        def upload() -> None:
            try:
                alice.buckets.put_object("risk-data", "model.bin", slow_body())
            except Exception:  # the server dies under it
                return

        uploader = threading.Thread(target=upload)
        uploader.start()
        started.wait(10)
        time.sleep(0.5)
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        uploader.join(30)
    finally:
        server.stop()
    again = start_server(config, token)
    try:
        alice = again.session(alice_token)
        assert alice.buckets.get_object("risk-data", "model.bin") == old
        versions = alice.buckets.list_versions("risk-data", "model.bin").versions
        assert len(versions) == 1
    finally:
        again.stop()
