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


@pytest.mark.usefixtures("restored_logging")
def test_with_no_old_files_kept_the_log_still_stays_under_its_size(tmp_path: Path) -> None:
    config = Config(home=tmp_path / "home", log_max_bytes=2048, log_backup_count=0)
    logs.configure(config)
    access = logging.getLogger(logs.ACCESS_LOGGER)

    for n in range(200):
        access.info("GET /api/v1/status 200", extra={"request_id": f"r-{n}", "principal": "admin", "status": 200})

    log = config.home / "logs" / "access.log"
    assert sorted(p.name for p in log.parent.iterdir()) == ["access.log", "strongroom.log"]
    assert 0 < log.stat().st_size <= 2048  # it grew to 40 KB: the handler never cut it
    assert json.loads(log.read_text().splitlines()[-1])["request_id"] == "r-199"


def test_the_rotating_handler_formats_each_record_once_and_counts_what_the_file_held(tmp_path: Path) -> None:
    """One JSON encoding per record (the access log writes one per request), and the size the
    file already had when the handler opened it counts toward the limit."""
    path = tmp_path / "access.log"
    path.write_text("x" * 900 + "\n")
    handler = logs.RotatingJsonHandler(path, maxBytes=1024, backupCount=1, encoding="utf-8")
    formatted: list[str] = []

    class Counting(logs.JsonFormatter):
        def format(self, record: logging.LogRecord) -> str:
            formatted.append(record.getMessage())
            return super().format(record)

    handler.setFormatter(Counting())
    try:
        for n in range(3):
            handler.emit(logging.LogRecord("strongroom.access", logging.INFO, __file__, 1, f"r-{n}", None, None))
    finally:
        handler.close()
    assert formatted == ["r-0", "r-1", "r-2"]
    assert (tmp_path / "access.log.1").read_text().startswith("x" * 900)  # the old content rolled over
    assert all(p.stat().st_size <= 1024 for p in tmp_path.iterdir())
    assert [json.loads(line)["message"] for line in path.read_text().splitlines()][-1] == "r-2"
