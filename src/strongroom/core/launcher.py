"""Start and stop a `strongroom up` process for a home (used by the demo and the tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strongroom.core.config import Config
from strongroom.core.errors import Unavailable


@dataclass
class ServerProcess:
    config: Config
    process: subprocess.Popen[bytes]
    info: dict[str, Any]
    log_path: Path

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def port(self) -> int:
        return int(self.info["port"])

    @property
    def socket(self) -> str:
        return str(self.info["socket"])

    @property
    def ca(self) -> Path:
        return self.config.tls_dir / "ca.pem"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Signal the server and wait; escalates to SIGKILL after ``timeout``."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start(
    config: Config, *, timeout: float = 60.0, env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> ServerProcess:
    """Run `strongroom up` for ``config.home`` in a child process (``args``: more options, e.g.
    ``("--workers", "2")``); return once it serves."""
    info_path = config.run_dir / "server.json"
    info_path.unlink(missing_ok=True)
    (config.home / "logs").mkdir(parents=True, exist_ok=True)
    log_path = config.home / "logs" / f"server-{int(time.time() * 1000)}.log"
    child_env = {**os.environ, **(env or {}), "STRONGROOM_HOME": str(config.home)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "strongroom.cli", "up", *args], stdout=log, stderr=subprocess.STDOUT, env=child_env
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise Unavailable(f"strongroom up exited with code {process.returncode}; see {log_path}")
        if info_path.exists():
            try:
                info = json.loads(info_path.read_text())
            except ValueError:
                info = None
            if info and info.get("pid") == process.pid:
                return ServerProcess(config, process, info, log_path)
        time.sleep(0.05)
    process.kill()
    raise Unavailable(f"strongroom up did not start within {timeout:g}s; see {log_path}")
