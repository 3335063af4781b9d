"""Notebook launch and proxy overhead, against a bare `jupyter server` on the same machine, same run.

- launch: from the catalog launch request (Notebook product) to the first kernel result
  (``1 + 1``) through the HTTPS proxy (REST to start the kernel, WebSocket to execute), against
  starting a bare ``jupyter server`` (same Python environment, HTTPS on 127.0.0.1 with a
  throwaway certificate, token auth) to its first kernel result. Each run launches a fresh
  notebook; runs alternate ours/peer and the medians are reported.
- proxy overhead per HTTP request: the same request (``GET .../api/status``) through the proxy
  (HTTPS, token authentication, the OpenNotebook policy, an audit event, the Unix socket into
  the sandbox) against the bare server directly over HTTPS (so both sides pay for TLS), with wrk
  over one keep-alive connection.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _common import alternate, figure, parser, repeats, save, version
from websockets.sync.client import connect

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.platform import initialize
from strongroom.sdk.session import Session


def _execute_first(http: httpx.Client, prefix: str, ws_url: str, headers: dict[str, str], context: Any) -> None:
    """Start a kernel, run ``1 + 1`` over the WebSocket, wait for the result, shut the kernel down."""
    kernel = http.post(f"{prefix}/api/kernels", json={"name": "python3"}).raise_for_status().json()["id"]
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": "bench",
            "session": uuid.uuid4().hex,
            "date": "",
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "buffers": [],
        "content": {
            "code": "1 + 1",
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
        },
    }
    with connect(
        f"{ws_url}{prefix}/api/kernels/{kernel}/channels",
        ssl=context,
        additional_headers=headers,
        open_timeout=120,
        max_size=None,
    ) as ws:
        ws.send(json.dumps(request))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=120))
            if (
                message.get("parent_header", {}).get("msg_id") == msg_id
                and message["header"]["msg_type"] == "execute_result"
            ):
                assert message["content"]["data"]["text/plain"] == "2"
                break
        else:
            raise TimeoutError("no kernel result")
    http.delete(f"{prefix}/api/kernels/{kernel}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificate(work: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, so the bare server speaks TLS as the proxy does."""
    cert, key = work / "bare.pem", work / "bare.key"
    if not cert.is_file():
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"),
                *("-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
    return cert, key


def _bare_context(work: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(_certificate(work)[0]))


def _bare_jupyter(work: Path) -> tuple[subprocess.Popen[bytes], int, str]:
    port, token = _free_port(), secrets.token_hex(16)
    root = work / f"bare-{uuid.uuid4().hex[:6]}"
    (root / "home").mkdir(parents=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(root / "home"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTER_TOKEN": token,
        "LANG": "C.UTF-8",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--allow-root",  # this machine runs benchmarks as root; the sandbox never does
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.root_dir={root / 'home'}",
            f"--ServerApp.certfile={_certificate(work)[0]}",
            f"--ServerApp.keyfile={_certificate(work)[1]}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port, token


def bare_launch(work: Path) -> tuple[float, subprocess.Popen[bytes], int, str]:
    started = time.perf_counter()
    process, port, token = _bare_jupyter(work)
    headers = {"Authorization": f"token {token}"}
    context = _bare_context(work)
    with httpx.Client(base_url=f"https://127.0.0.1:{port}", headers=headers, verify=context, timeout=30) as http:
        while True:
            try:
                if http.get("/api/status").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError("jupyter server exited")
            time.sleep(0.02)
        _execute_first(http, "", f"wss://127.0.0.1:{port}", headers, context)
    return time.perf_counter() - started, process, port, token


def our_launch(session: Session, server: launcher.ServerProcess, token: str, name: str) -> float:
    started = time.perf_counter()
    session.catalog.launch("notebook", {"TeamName": "bench", "NotebookName": name}, wait=True, timeout=300)
    context = ssl.create_default_context(cafile=str(server.ca))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.url, headers=headers, verify=context, timeout=60) as http:
        _execute_first(http, f"/notebooks/bench/{name}", "wss://" + server.url.split("://")[1], headers, context)
    return time.perf_counter() - started


def _wrk_latency_ms(url: str, header: str, seconds: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency", "-H", header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if rate is None:
        raise RuntimeError(out)
    return 1000.0 / float(rate.group(1))


def _python_latency_ms(url: str, headers: dict[str, str], n: int, verify: Any) -> float:
    with httpx.Client(headers=headers, verify=verify, timeout=30) as http:
        http.get(url)
        started = time.perf_counter()
        for _ in range(n):
            http.get(url).raise_for_status()
        return (time.perf_counter() - started) / n * 1000


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    runs, seconds = repeats(args), (1 if args.smoke else 8)
    work = Path(tempfile.mkdtemp(prefix="sr-bench-nb-", dir="/tmp"))
    server = None
    state: dict[str, Any] = {"notebook": None, "bare": None, "count": 0}
    try:
        config = Config(home=work / "home", port=0)
        admin_token = initialize(config).token.secret
        server = launcher.start(config)
        with Session(url=server.url, token=admin_token, ca=server.ca) as admin:
            admin.catalog.launch("team-environment", {"TeamName": "bench"}, wait=True, timeout=120)
            admin.users.create("alice")
            admin.teams.add_member("bench", "alice", "DataScientist")
            token = admin.tokens.create("bench", user="alice").secret
        with Session(url=server.url, token=token, ca=server.ca) as alice:
            assert server is not None
            running = server

            def ours() -> float:  # the previous notebook is stopped first (not timed); the last one stays
                if state["notebook"]:
                    alice.catalog.terminate("bench", state["notebook"], wait=True, timeout=120)
                state["notebook"] = f"nb-{state['count']}"
                state["count"] += 1
                return our_launch(alice, running, token, state["notebook"])

            def peer() -> float:
                if state["bare"] is not None:
                    state["bare"].terminate()
                    state["bare"].wait(30)
                took, state["bare"], state["port"], state["bare_token"] = bare_launch(work)
                return took

            launches = alternate(ours, peer, runs)
        figures = [
            figure(
                "notebook_launch",
                "s",
                launches,
                better="lower",
                what="notebook launch to first kernel result",
                peer_name="bare jupyter server",
            )
        ]
        proxied = f"{server.url}/notebooks/bench/{state['notebook']}/api/status"
        direct = f"https://127.0.0.1:{state['port']}/api/status"
        if shutil.which("wrk"):
            tool = "wrk -t1 -c1"
            through = alternate(
                lambda: _wrk_latency_ms(proxied, f"Authorization: Bearer {token}", seconds),
                lambda: _wrk_latency_ms(direct, f"Authorization: token {state['bare_token']}", seconds),
                runs,
            )
        else:
            tool = "python httpx (wrk not installed)"
            n = 50 if args.smoke else 2000
            context = ssl.create_default_context(cafile=str(server.ca))
            through = alternate(
                lambda: _python_latency_ms(proxied, {"Authorization": f"Bearer {token}"}, n, context),
                lambda: _python_latency_ms(
                    direct, {"Authorization": f"token {state['bare_token']}"}, n, _bare_context(work)
                ),
                runs,
            )
        figures.append(
            figure(
                "notebook_proxy_latency",
                "ms",
                through,
                better="lower",
                what="a request through the notebook proxy (HTTPS, auth, policy, audit)",
                peer_name="direct to Jupyter",
                tool=tool,
            )
        )
        path = save(
            "notebook_launch",
            figures,
            args.smoke,
            compared={
                "ours": "catalog launch -> sandboxed JupyterLab -> first kernel result via the HTTPS proxy",
                "peer": "bare `jupyter server` over HTTPS on 127.0.0.1 -> first kernel result",
                "tls": "both sides: HTTPS and WSS (the peer with a throwaway self-signed certificate); "
                "earlier runs measured the peer over plain HTTP",
                "auth": "ours: bearer token, OpenNotebook policy, audit event; peer: Jupyter's token",
                "durability": "not applicable (no data written)",
                "tool": tool,
                "jupyter_server": version("jupyter_server"),
                "sizes": {"wrk_seconds": seconds},
            },
        )
        print(f"summary: {path}")
    finally:
        if state["bare"] is not None and state["bare"].poll() is None:
            state["bare"].terminate()
            state["bare"].wait(30)
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
