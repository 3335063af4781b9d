"""The job contract shared by the executor (host side) and the agent (sandbox side):
where things are inside the sandbox, and the status-line protocol between the two.

Status lines travel on the sandbox's control channel (a pipe at ``$STRONGROOM_CONTROL_FD``
that only the agent holds; see ``SandboxSpec.control_channel``), never on stdout: a job's
code can print anything it likes, and it is only ever a log line.
"""

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
CONTROL_FD_ENV = "STRONGROOM_CONTROL_FD"


def marker(kind: str, payload: Any) -> str:
    """A line the agent writes on its control channel to tell the executor something."""
    return f"{MARKER}:{kind}:{json.dumps(payload, separators=(',', ':'))}"


def parse_marker(line: str) -> tuple[str, Any] | None:
    """``(kind, payload)`` if ``line`` (read from the control channel) is a marker, else None."""
    prefix = f"{MARKER}:"
    if not line.startswith(prefix):
        return None
    kind, _, payload = line[len(prefix) :].partition(":")
    try:
        return kind, json.loads(payload)
    except ValueError:
        return None
