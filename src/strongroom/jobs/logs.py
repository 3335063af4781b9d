"""Job logs at rest: each line AES-256-GCM encrypted under a per-job data key that the team's
KMS key wraps. The running job's executor holds the plaintext data key in memory only."""

from __future__ import annotations

import os
from collections.abc import Sequence

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import insert

from strongroom.core.errors import IntegrityError
from strongroom.db.base import utcnow
from strongroom.jobs.db import JobLogRow

MAX_LINE = 16 * 1024


def log_context(team: str, job_id: str) -> dict[str, str]:
    """The KMS encryption context that binds a job's log key to that job."""
    return {"purpose": "job-logs", "team": team, "job": job_id}


def seal(key: bytes, job_id: str, seq: int, stream: str, text: str) -> bytes:
    nonce = os.urandom(12)
    aad = f"{job_id}:{seq}:{stream}".encode()
    return nonce + AESGCM(key).encrypt(nonce, text[:MAX_LINE].encode(), aad)


def open_line(key: bytes, job_id: str, seq: int, stream: str, blob: bytes) -> str:
    from cryptography.exceptions import InvalidTag

    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], f"{job_id}:{seq}:{stream}".encode()).decode()
    except InvalidTag as exc:
        raise IntegrityError(f"log line {seq} of job {job_id} failed authentication (tampered or moved)") from exc


def insert_lines(key: bytes, job_id: str, first_seq: int, lines: Sequence[tuple[str, str]]) -> list[dict[str, object]]:
    """Rows for a bulk insert of ``(stream, text)`` lines numbered from ``first_seq``."""
    now = utcnow()
    return [
        {
            "job_id": job_id,
            "seq": first_seq + i,
            "time": now,
            "stream": stream,
            "ciphertext": seal(key, job_id, first_seq + i, stream, text),
        }
        for i, (stream, text) in enumerate(lines)
    ]


INSERT = insert(JobLogRow)
