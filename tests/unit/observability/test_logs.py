"""Log files rotate at the configured size and keep the configured number of old files."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from strongroom.core.config import Config
from strongroom.observability import logs


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root, access = logging.getLogger(), logging.getLogger(logs.ACCESS_LOGGER)
    saved = (list(root.handlers), root.level, list(access.handlers), access.propagate)
    yield
    for logger in (root, access):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
    root.handlers[:], root.level, access.handlers[:], access.propagate = saved[0], saved[1], saved[2], saved[3]


@pytest.mark.usefixtures("restored_logging")
def test_access_log_rotates_and_keeps_json_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    config = Config(home=tmp_path / "home", log_max_bytes=4096, log_backup_count=2)
    logs.configure(config)
    access = logging.getLogger(logs.ACCESS_LOGGER)

    for n in range(200):
        access.info("GET /api/v1/status 200", extra={"request_id": f"r-{n}", "principal": "admin", "status": 200})

    folder = config.home / "logs"
    assert sorted(p.name for p in folder.iterdir()) == ["access.log", "access.log.1", "access.log.2", "strongroom.log"]
    assert all(p.stat().st_size <= 4096 for p in folder.iterdir())
    last = json.loads((folder / "access.log").read_text().splitlines()[-1])
    assert last["request_id"] == "r-199" and last["principal"] == "admin" and last["status"] == 200
    assert (folder / "strongroom.log").read_text() == ""  # access records stay out of the server log
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
