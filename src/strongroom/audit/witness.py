"""Signed audit checkpoints kept outside the database.

Each checkpoint the platform signs is also appended (and fsynced) as one JSON line to
``$STRONGROOM_HOME/audit/checkpoints.log``, and optionally sent to syslog. Someone who can write
the database but not this file cannot delete a checkpoint, nor rewrite the events it covers, without
``strongroom audit verify`` naming it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import logging.handlers
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from strongroom.core.errors import ConfigurationError
from strongroom.core.fileio import append_durably

log = logging.getLogger(__name__)
_TAIL = 4096


@dataclass(frozen=True)
class SignedCheckpoint:
    """One checkpoint as witnessed: what was signed, and the signature."""

    seq: int
    hash: str
    time: str
    key_id: str
    prev: str
    signature: bytes

    def to_line(self) -> bytes:
        body = {
            "seq": self.seq,
            "hash": self.hash,
            "time": self.time,
            "key_id": self.key_id,
            "prev": self.prev,
            "signature": base64.b64encode(self.signature).decode(),
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode() + b"\n"

    @classmethod
    def from_line(cls, line: bytes) -> SignedCheckpoint:
        """Parse one line; raises ``ValueError`` if it is not a checkpoint."""
        try:
            body = json.loads(line)
            return cls(
                seq=int(body["seq"]),
                hash=str(body["hash"]),
                time=str(body["time"]),
                key_id=str(body["key_id"]),
                prev=str(body["prev"]),
                signature=base64.b64decode(body["signature"], validate=True),
            )
        except (KeyError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
            raise ValueError(f"not a checkpoint: {exc}") from exc


class WitnessError(Exception):
    """The witness file cannot be read as a list of checkpoints (a line was edited or cut)."""


class CheckpointWitness:
    """The append-only file of signed checkpoints, and an optional syslog copy of each."""

    def __init__(self, path: Path, syslog_address: str = "") -> None:
        self.path = path
        self._lock = threading.Lock()
        self._syslog: logging.Logger | None = None
        if syslog_address:
            self._syslog = _syslog_logger(syslog_address)

    def append(self, checkpoint: SignedCheckpoint) -> None:
        """Append one checkpoint durably (fsynced before returning); then copy it to syslog."""
        with self._lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            append_durably(self.path, checkpoint.to_line())
        if self._syslog is not None:
            try:
                self._syslog.info("strongroom-audit-checkpoint %s", checkpoint.to_line().decode().strip())
            except OSError:
                log.exception("audit: the syslog witness did not take checkpoint %d", checkpoint.seq)

    def read(self) -> list[SignedCheckpoint]:
        """Every witnessed checkpoint, in file order.

        Raises:
            WitnessError: a line is not a checkpoint (the file was edited or cut mid-line).
        """
        if not self.path.exists():
            return []
        found = []
        for number, line in enumerate(self.path.read_bytes().splitlines(), start=1):
            try:
                found.append(SignedCheckpoint.from_line(line))
            except ValueError as exc:
                raise WitnessError(f"line {number} of {self.path} is not a checkpoint ({exc})") from None
        return found

    def last(self) -> SignedCheckpoint | None:
        """The newest witnessed checkpoint (reads only the end of the file).

        Raises:
            WitnessError: the last line is not a checkpoint.
        """
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL))
            lines = handle.read().splitlines()
        if not lines:
            return None
        try:
            return SignedCheckpoint.from_line(lines[-1])
        except ValueError as exc:
            raise WitnessError(f"the last line of {self.path} is not a checkpoint ({exc})") from None


def _syslog_logger(address: str) -> logging.Logger:
    """A logger for ``address``: a Unix socket path (``/dev/log``) or ``host:port`` (UDP)."""
    target: str | tuple[str, int]
    if address.startswith("/"):
        target = address
    else:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError("audit_witness_syslog must be a socket path or host:port", field="address")
        target = (host, int(port))
    try:
        handler = logging.handlers.SysLogHandler(
            address=target, facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV, socktype=socket.SOCK_DGRAM
        )
    except OSError as exc:
        raise ConfigurationError(f"audit_witness_syslog {address!r} cannot be reached: {exc}") from exc
    logger = logging.getLogger(f"strongroom.audit.witness.syslog.{address}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        logger.addHandler(handler)
    return logger
