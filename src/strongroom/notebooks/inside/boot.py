"""The first process of a notebook sandbox (``python -m strongroom.notebooks.inside.boot``).

1. starts the loopback forwarder (git and pip reach the platform socket through it);
2. runs the lifecycle scripts: on-create once per volume, on-start on every start (``bash -e``,
   inside the sandbox, so with no network either); a failing script fails the start;
3. starts the Jupyter server on its Unix socket, forwards SIGTERM/SIGINT to it, and exits with
   its exit code;
4. in the background, clones the team repository into the home the first time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from strongroom.notebooks.inside import forwarder

CONFIG = Path(os.environ.get("STRONGROOM_NOTEBOOK_CONFIG", "/run/strongroom/nb/notebook.json"))
SCRIPT_TIMEOUT = 900


def _say(message: str) -> None:
    print(f"[strongroom] {message}", flush=True)


def _run_script(label: str, text: str, home: Path) -> None:
    if not text.strip():
        return
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"{label}.sh"  # noqa: S108 -- the sandbox's own tmpfs
    path.write_text(text)
    _say(f"running the {label} script")
    try:
        done = subprocess.run(["bash", "-e", str(path)], cwd=home, timeout=SCRIPT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"the {label} script ran longer than {SCRIPT_TIMEOUT} s") from None
    if done.returncode != 0:
        raise SystemExit(f"the {label} script failed with exit code {done.returncode}")


def _clone(config: dict[str, Any], home: Path) -> None:
    remote, directory = config.get("git_remote", ""), config.get("git_directory", "")
    if not remote or not directory or (home / directory).exists():
        return
    done = subprocess.run(
        ["git", "clone", "--quiet", remote, str(home / directory)], capture_output=True, text=True, timeout=300
    )
    if done.returncode == 0:
        _say(f"cloned the team repository into ~/{directory}")
    else:
        _say(f"could not clone the team repository: {done.stderr.strip()[:300]}")


def main() -> int:
    config = json.loads(CONFIG.read_text())
    home = Path(os.environ.get("HOME", "/home/sandbox"))
    forwarder.serve(int(config["forwarder_port"]), config["api_socket"], config["token_file"])
    marker = home / ".strongroom" / "on-create.done"
    if not marker.exists():
        _run_script("on-create", config.get("on_create", ""), home)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("done\n")
    _run_script("on-start", config.get("on_start", ""), home)
    Path(os.environ.get("JUPYTER_RUNTIME_DIR", "/tmp/jupyter-runtime")).mkdir(parents=True, exist_ok=True)  # noqa: S108
    server = subprocess.Popen([sys.executable, "-m", "jupyter_server", *config.get("jupyter_args", [])])

    def forward(signum: int, _frame: object) -> None:
        server.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    threading.Thread(target=_clone, args=(config, home), daemon=True).start()
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
