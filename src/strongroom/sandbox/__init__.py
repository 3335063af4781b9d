"""Bubblewrap sandboxes: no network, non-root, read-only system, tmpfs scratch, rlimits, wall clock.

Typical use::

    runner = SandboxRunner()
    spec = SandboxSpec(command=("python", "-m", "my.job"), python=discover(), socket=api_socket)
    result = runner.run(spec, on_output=ship_log_line)

See docs/sandbox.md for what a sandbox can and cannot reach and how each is enforced.
"""

from strongroom.sandbox.environment import HostLayout, discover
from strongroom.sandbox.models import (
    Limits,
    Mount,
    OutputLine,
    PythonEnvironment,
    SandboxResult,
    SandboxSpec,
    SandboxStatus,
    StopReason,
)
from strongroom.sandbox.runner import SandboxProcess, SandboxRunner

__all__ = [
    "HostLayout",
    "Limits",
    "Mount",
    "OutputLine",
    "PythonEnvironment",
    "SandboxProcess",
    "SandboxResult",
    "SandboxRunner",
    "SandboxSpec",
    "SandboxStatus",
    "StopReason",
    "discover",
]
