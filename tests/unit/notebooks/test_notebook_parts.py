"""Notebook pieces without a sandbox: the package index URL mapping, the environment module, safe
writes into the runtime directory, and the leftover-sandbox check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.api.streaming.packages import upstream_url
from strongroom.core.errors import InvalidInput
from strongroom.notebooks.spawner import SandboxSpawner, _write_private, environment_module
from strongroom.sandbox import SandboxRunner

INDEX = "https://mirror.internal/pypi/simple"


@pytest.mark.parametrize(
    ("path", "url"),
    [
        ("simple/", "https://mirror.internal/pypi/simple/"),
        ("simple/pandas/", "https://mirror.internal/pypi/simple/pandas/"),
        ("packages/ab/pandas-2.2.whl", "https://mirror.internal/pypi/packages/ab/pandas-2.2.whl"),
    ],
)
def test_package_paths_map_into_the_approved_index(path: str, url: str) -> None:
    assert upstream_url(INDEX, path) == url


@pytest.mark.parametrize(
    "path", ["simple/../../etc/passwd", "//evil.example/x", "simple/%2e%2e/x", "https://evil.example/", "a\\b"]
)
def test_package_paths_cannot_leave_the_index(path: str) -> None:
    with pytest.raises(InvalidInput):
        upstream_url(INDEX, path)


def test_environment_module_exposes_constants_and_a_fresh_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("srs_first\n")
    source = environment_module(
        {
            "TEAM": "risk",
            "DATA_BUCKET": "risk-data",
            "TOKEN_FILE": str(token_file),
            "SOCKET": "/run/strongroom/api.sock",
        }
    )
    (tmp_path / "strongroom_environment.py").write_text(source)
    code = (
        "import strongroom_environment as e, pathlib;"
        "print(e.TEAM, e.DATA_BUCKET, e.token());"
        f"pathlib.Path({str(token_file)!r}).write_text('srs_second');"
        "print(e.token())"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["risk", "risk-data", "srs_first", "srs_second"]


def test_writes_replace_a_planted_symlink_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "host-file"
    victim.write_text("precious")
    runtime = tmp_path / "ro"
    runtime.mkdir()
    (runtime / "token").symlink_to(victim)
    _write_private(runtime, "token", "srs_new")
    assert victim.read_text() == "precious"
    assert not (runtime / "token").is_symlink() and (runtime / "token").read_text() == "srs_new"
    assert oct((runtime / "token").stat().st_mode & 0o777) == "0o600"


def test_a_leftover_check_never_kills_an_unrelated_process(tmp_path: Path) -> None:
    spawner = SandboxSpawner(
        SandboxRunner(),
        api_socket=tmp_path / "api.sock",
        runtime_root=tmp_path / "rt",
        volumes_root=tmp_path / "vol",
        stop_grace_seconds=1,
    )
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        assert spawner.kill_leftover("nb-0123456789", sleeper.pid) is False
        assert sleeper.poll() is None
        assert spawner.kill_leftover("nb-0123456789", None) is False
    finally:
        sleeper.kill()
        sleeper.wait()
    assert os.path.basename(spawner.volume("risk", "lab", "nb-01")) == "lab-nb-01"
