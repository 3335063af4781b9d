"""`pip install strongroom` is the SDK and CLI only, and that is enough to work with a platform."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support import RunningServer

ROOT = Path(__file__).resolve().parents[2]


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


@pytest.mark.slow  # builds a fresh virtualenv and installs the package into it: ~30-60 s
@pytest.mark.timeout(600)
def test_the_client_only_install_talks_to_a_platform(server: RunningServer, tmp_path: Path) -> None:
    slim = tmp_path / "slim"
    venv.EnvBuilder(with_pip=True).create(slim)
    python = slim / "bin" / "python"
    empty_mb = _size_mb(slim)
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(ROOT)],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    client_mb = _size_mb(slim) - empty_mb
    print(f"client-only install: {client_mb:.0f} MB over an empty virtualenv")
    assert client_mb < 100

    missing = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util as u; print([m for m in ('sqlalchemy', 'fastapi', 'xgboost', "
            "'jupyterlab', 'dask', 'shap') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert missing.stdout.strip() == "[]"

    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRONGROOM_", "PYTHON", "VIRTUAL_ENV"))}
    env |= {"STRONGROOM_URL": server.url, "STRONGROOM_CA": str(server.ca), "STRONGROOM_TOKEN": server.admin_token}
    script = "from strongroom.sdk import Session\nwith Session() as s:\n    print(s.whoami().user)\n"
    used = subprocess.run([str(python), "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert used.returncode == 0 and used.stdout.strip() == "admin", used.stderr[-2000:]
    cli = subprocess.run(
        [str(slim / "bin" / "strongroom"), "teams", "list", "--json"], capture_output=True, text=True, env=env
    )
    assert cli.returncode == 0 and cli.stdout.strip() == "[]", cli.stderr

    up = subprocess.run(
        [str(slim / "bin" / "strongroom"), "up", "--home", str(tmp_path / "h")], capture_output=True, text=True, env=env
    )
    assert up.returncode == 1 and "pip install 'strongroom[server]'" in up.stderr
    assert sys.prefix != str(slim)
