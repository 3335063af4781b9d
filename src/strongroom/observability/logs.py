"""Structured logs: JSON lines in ``$STRONGROOM_HOME/logs/``, rotated by size, and on stderr.

``strongroom.log`` has every record of the server; ``access.log`` has one record per HTTP request
(request id, principal, action, status, duration). On stderr the records are JSON lines when a
service manager runs the process (systemd sets ``INVOCATION_ID``; the journal keeps them) and
readable lines on a terminal.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from strongroom.core.config import Config

ACCESS_LOGGER = "strongroom.access"
# The fields a record can carry (``logger.info(msg, extra={...})``), written when present.
FIELDS = ("request_id", "principal", "action", "status", "duration_ms", "source", "method", "path")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the known fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for name in FIELDS:
            if name in record.__dict__:
                body[name] = record.__dict__[name]
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def under_service_manager() -> bool:
    """True when systemd (or another manager that sets these) started the process."""
    return bool(os.environ.get("INVOCATION_ID") or os.environ.get("JOURNAL_STREAM"))


class RotatingJsonHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file that formats each record once and keeps the file's size itself.

    The standard handler formats every record twice (once only to measure it) and asks the file
    system for the file's type, position and size on every record: the access log writes one
    record per request, so that was several system calls and a second JSON encoding per request.
    """

    _measured: object = None  # the stream whose size ``_size`` is
    _size = 0  # bytes in the file; -1: not a regular file (a pipe or a device), never rotated

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            length = len(line.encode(self.encoding or "utf-8", "backslashreplace"))
            if self.maxBytes > 0 and self._current_size() > 0 and self._size + length >= self.maxBytes:
                self.doRollover()
            self._current_size()
            assert self.stream is not None  # opened by _current_size
            self.stream.write(line)
            self.flush()
            if self._size >= 0:
                self._size += length
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    def doRollover(self) -> None:
        """Rotate; with no old files to keep (``log_backup_count = 0``), start the file afresh.

        The standard handler renames nothing then and reopens the same file, which kept growing
        past ``log_max_bytes`` without end.
        """
        if self.backupCount > 0:
            super().doRollover()
            return
        if self.stream is not None:
            self.stream.close()
        self.stream = open(self.baseFilename, "w", encoding=self.encoding)  # noqa: SIM115 -- the handler's stream

    def _current_size(self) -> int:
        if self.stream is None:
            self.stream = self._open()
        if self.stream is not self._measured:  # opened (or reopened by a rollover) since measured
            info = os.fstat(self.stream.fileno())
            self._size = info.st_size if stat.S_ISREG(info.st_mode) else -1
            self._measured = self.stream
        return self._size


def _rotating(path: os.PathLike[str], config: Config) -> logging.Handler:
    handler = RotatingJsonHandler(
        path, maxBytes=config.log_max_bytes, backupCount=config.log_backup_count, encoding="utf-8"
    )
    handler.setFormatter(JsonFormatter())
    return handler


def configure(config: Config, process: str = "") -> None:
    """Route the server's logs to the home's ``logs/`` and to stderr (``strongroom up``).

    ``process``: an API process of ``up --workers N`` writes files of its own
    (``strongroom-<process>.log``, ``access-<process>.log``): rotation renames files, which
    processes sharing one file would race on.
    """
    suffix = f"-{process}" if process else ""
    logs = config.home / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    stderr = logging.StreamHandler(sys.stderr)
    if under_service_manager():
        stderr.setFormatter(JsonFormatter())
    else:
        stderr.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(config.log_level.upper())
    root.addHandler(_rotating(logs / f"strongroom{suffix}.log", config))
    root.addHandler(stderr)
    access = logging.getLogger(ACCESS_LOGGER)
    access.propagate = False
    access.setLevel(logging.INFO)
    for handler in list(access.handlers):
        access.removeHandler(handler)
    access.addHandler(_rotating(logs / f"access{suffix}.log", config))
    if under_service_manager():
        access.addHandler(stderr)


@contextmanager
def configured(config: Config) -> Iterator[None]:
    """:func:`configure` for the duration of the block, then the logging set-up as it was.

    ``strongroom up`` runs in its own process, where restoring changes nothing; run in-process
    (a test's ``CliRunner``), it must not leave handlers bound to a stream that is closed later.
    """
    root, access = logging.getLogger(), logging.getLogger(ACCESS_LOGGER)
    saved = [(logger, list(logger.handlers), logger.level, logger.propagate) for logger in (root, access)]
    configure(config)
    try:
        yield
    finally:
        for logger, handlers, level, propagate in saved:
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
                if handler not in handlers:
                    handler.close()  # our files; closing a stream handler leaves its stream open
            for handler in handlers:
                logger.addHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
