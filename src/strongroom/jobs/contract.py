"""The job contract shared by the executor (host side) and the agent (sandbox side):
where things are inside the sandbox, and the status-line protocol between the two."""

from __future__ import annotations

import json
from typing import Any

RUN_DIR = "/run/strongroom/job"  # read-only: config.json, token (refreshed), tls/
SOCKET = "/run/strongroom/api.sock"
ML = "/opt/ml"  # a size-limited tmpfs: inputs, code, model, outputs, checkpoints
CODE_DIR = f"{ML}/code"
CONFIG_DIR = f"{ML}/input/config"
MODEL_DIR = f"{ML}/model"
OUTPUT_DIR = f"{ML}/output"
CHECKPOINT_DIR = f"{ML}/checkpoints"
EXIT_INTERRUPTED = 75
MARKER = "@@strongroom"


def marker(nonce: str, kind: str, payload: Any) -> str:
    """A line the agent prints to tell the executor something (status, output, failure)."""
    return f"{MARKER}:{nonce}:{kind}:{json.dumps(payload, separators=(',', ':'))}"


def parse_marker(nonce: str, line: str) -> tuple[str, Any] | None:
    """``(kind, payload)`` if ``line`` is a marker carrying this job's nonce, else None."""
    prefix = f"{MARKER}:{nonce}:"
    if not line.startswith(prefix):
        return None
    kind, _, payload = line[len(prefix) :].partition(":")
    try:
        return kind, json.loads(payload)
    except ValueError:
        return None
