"""Shared fixtures: temporary homes, in-process platforms, and real HTTPS servers.

Database backends: SQLite always; PostgreSQL too when ``STRONGROOM_TEST_POSTGRES_URL`` is set
(each platform gets its own schema, dropped afterwards). Tests that take ``backend`` run once
per available backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.core.config import Config
from strongroom.platform import Platform, initialize
from tests.support import PostgresSchema, RunningServer, server_log_tails, start_server

POSTGRES_URL = os.environ.get("STRONGROOM_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])
# For a test whose subject exists on one backend only: it runs there instead of being skipped on the other.
ON_SQLITE = pytest.mark.parametrize("backend", ["sqlite"])
ON_POSTGRESQL = pytest.mark.parametrize(
    "backend",
    [
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not POSTGRES_URL, reason="PostgreSQL runs when STRONGROOM_TEST_POSTGRES_URL names a database"
            ),
        )
    ],
)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test's report ends with the logs of the servers it ran against (CI shows nothing else)."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for title, tail in server_log_tails():
            report.sections.append((title, tail))


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "STRONGROOM_TOKEN",
        "STRONGROOM_URL",
        "STRONGROOM_SOCKET",
        "STRONGROOM_CA",
        "STRONGROOM_ROOT_KEY",
        "STRONGROOM_ROOT_PASSPHRASE",
        "STRONGROOM_DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STRONGROOM_HOME", str(tmp_path / "default-home"))
    monkeypatch.setenv("STRONGROOM_TRACKING_JOURNAL", str(tmp_path / "tracking-journal"))  # never ~/.strongroom


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield ""
        return
    schema = PostgresSchema(POSTGRES_URL, f"sr_{uuid.uuid4().hex[:12]}")
    schema.create()
    try:
        yield schema.url
    finally:
        schema.drop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def initialized(home: Path, database_url: str) -> tuple[Config, str]:
    """A fresh home; returns its config and the bootstrap admin token."""
    config = Config(home=home, database_url=database_url, port=0)
    result = initialize(config)
    return config, result.token.secret


@pytest.fixture
def platform(initialized: tuple[Config, str]) -> Iterator[Platform]:
    config, _ = initialized
    built = Platform(config)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def admin_token(initialized: tuple[Config, str]) -> str:
    return initialized[1]


@pytest.fixture
def server(initialized: tuple[Config, str]) -> Iterator[RunningServer]:
    """A real `strongroom up` process on this test's fresh home."""
    config, token = initialized
    running = start_server(config, token)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A SoftHSM2 token of its own for this test session (SOFTHSM2_CONF points at it).

    One per session: a PKCS#11 library reads its configuration once per process.
    """
    import shutil
    import subprocess

    if shutil.which("softhsm2-util") is None:
        pytest.skip("softhsm2 is not installed (make setup installs it)")
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "strongroom", "--so-pin", "87654321", "--pin", "1234"],
        check=True,
        capture_output=True,
    )
    return {"conf": str(conf), "tokens": str(root / "tokens"), "label": "strongroom", "pin": "1234"}
