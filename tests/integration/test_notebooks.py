"""Notebooks for real: a `strongroom up` server, a Team Environment, and one JupyterLab launched from
the catalog into a bubblewrap sandbox, driven through the HTTPS proxy over REST and WebSocket.

One notebook is shared by the tests of this module (each launch costs seconds); the tests run in
file order and the last ones stop, restart and terminate it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nbformat
import pytest
from sqlalchemy import create_engine, text
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from strongroom.core import launcher
from strongroom.core.config import Config
from strongroom.core.errors import Forbidden, InvalidInput, StrongroomError
from strongroom.platform import initialize
from strongroom.sdk.notebooks import CellExecutionError
from strongroom.sdk.session import Session
from tests.support import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
NB = "/notebooks/risk/lab"


@dataclass
class Env:
    config: Config
    server: RunningServer
    tokens: dict[str, str] = field(default_factory=dict)

    def session(self, user: str) -> Session:
        return self.server.session(self.tokens[user])

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        context = ssl.create_default_context(cafile=str(self.server.ca))
        return httpx.Client(base_url=self.server.url, verify=context, headers=headers, timeout=60, **kwargs)  # type: ignore[arg-type]

    def sandbox_pids(self, notebook_id: str) -> list[int]:
        marker = str(self.config.effective_notebook_runtime_dir / notebook_id).encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if marker in (entry / "cmdline").read_bytes():
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = tmp_path_factory.mktemp("nb") / "home"
    config = Config(home=home, port=0)
    result = initialize(config)
    server = start_server(config, result.token.secret)
    setup = Env(config, server)
    try:
        admin = server.session()
        admin.catalog.launch("team-environment", {"TeamName": "risk"}, wait=True, timeout=120)
        admin.teams.create("fraud")
        for user, team, role in (
            ("alice", "risk", "DataScientist"),
            ("bob", "risk", "DataScientist"),
            ("dana", "risk", "DataScienceAdmin"),
            ("fred", "fraud", "DataScientist"),
        ):
            admin.users.create(user)
            admin.teams.add_member(team, user, role)
            setup.tokens[user] = admin.tokens.create("t", user=user).secret
        on_create = "echo created-once >> ~/lifecycle.log\n"
        on_start = "echo started >> ~/lifecycle.log\n"
        setup.session("alice").catalog.launch(
            "notebook",
            {"TeamName": "risk", "NotebookName": "lab", "OnCreateScript": on_create, "OnStartScript": on_start},
            wait=True,
            timeout=240,
        )
        yield setup
    finally:
        setup.server.stop()


def _wheel(directory: Path) -> Path:
    """A minimal pure-Python wheel: tinypkg 1.0 with ``VALUE = 42``."""
    files = {
        "tinypkg/__init__.py": b"VALUE = 42\n",
        "tinypkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
        "tinypkg-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append("tinypkg-1.0.dist-info/RECORD,,")
    path = directory / "tinypkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("tinypkg-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return path


@pytest.fixture(scope="module")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PEP 503 index on 127.0.0.1 (files linked relatively) holding only tinypkg."""
    root = tmp_path_factory.mktemp("index")
    (root / "packages").mkdir()
    wheel = _wheel(root / "packages")
    (root / "simple" / "tinypkg").mkdir(parents=True)
    (root / "simple" / "index.html").write_text('<a href="tinypkg/">tinypkg</a>')
    (root / "simple" / "tinypkg" / "index.html").write_text(f'<a href="../../packages/{wheel.name}">{wheel.name}</a>')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def run(env: Env, code: str, user: str = "alice") -> str:
    result = env.session(user).notebooks.run("risk", "lab", textwrap.dedent(code), timeout=180)
    assert result.status == "ok", (result.ename, result.evalue, "\n".join(result.traceback)[-3000:])
    return result.text


def test_launched_notebook_is_available_with_its_url(env: Env) -> None:
    product = env.session("alice").catalog.describe("risk", "lab")
    assert product.status == "AVAILABLE"
    assert product.outputs["NotebookUrl"] == f"{env.server.url}{NB}/"
    assert product.owner == "alice" and product.events[-1].kind == "LaunchCompleted"
    notebook = env.session("alice").notebooks.describe("risk", "lab")
    assert notebook.status == "InService" and notebook.size == "small"


def test_kernel_runs_in_the_sandbox_with_no_network_and_the_team_role(env: Env) -> None:
    out = run(
        env,
        """
        import json, os, socket, urllib.request
        import strongroom, strongroom_environment as senv

        def attempt(fn):
            try:
                fn()
                return "connected"
            except Exception as exc:
                return type(exc).__name__ + ": " + str(exc)

        def tcp(host, port):
            socket.create_connection((host, port), timeout=5).close()

        session = strongroom.Session()
        me = session.whoami()
        session.buckets.put_object(senv.DATA_BUCKET, "hello.txt", b"from the notebook")
        print(json.dumps({
            "uid": os.getuid(),
            "https": attempt(lambda: urllib.request.urlopen("https://pypi.org/simple/", timeout=5)),
            "cloudflare": attempt(lambda: tcp("1.1.1.1", 443)),
            "postgres": attempt(lambda: tcp("127.0.0.1", 5432)),
            "user": me.user, "kind": me.token_kind, "grants": me.grants, "scope": me.scope,
            "env": [senv.TEAM, senv.DATA_BUCKET, senv.MODEL_BUCKET, bool(senv.KMS_KEY_ID), senv.GIT_REMOTE],
            "read_back": session.buckets.get_object("risk-data", "hello.txt").decode(),
            "lifecycle": open(os.path.expanduser("~/lifecycle.log")).read().split(),
        }))
        """,
    )
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts["uid"] != 0
    for attempt in ("https", "cloudflare", "postgres"):
        assert facts[attempt] != "connected", facts
    assert "Network is unreachable" in facts["cloudflare"] or "unreachable" in facts["cloudflare"].lower()
    assert "refused" in facts["postgres"].lower()
    assert (facts["user"], facts["kind"], facts["grants"]) == ("alice", "execution", ["DataScientist@risk"])
    assert facts["scope"] == "srn:strongroom:risk:notebook/lab"
    assert facts["env"][:3] == ["risk", "risk-data", "risk-models"] and facts["env"][3]
    assert facts["env"][4].endswith("/git/risk/risk.git")
    assert facts["read_back"] == "from the notebook"
    assert facts["lifecycle"] == ["created-once", "started"]


def test_strangers_are_refused_including_the_websocket_upgrade(env: Env) -> None:
    with env.client() as anonymous, env.client(env.tokens["fred"]) as fred, env.client(env.tokens["bob"]) as bob:
        assert anonymous.get(f"{NB}/api/status").status_code == 401
        assert fred.get(f"{NB}/api/status").status_code == 403
        assert bob.get(f"{NB}/api/status").status_code == 403  # same team, not the owner
        assert fred.post(f"{NB}/api/kernels", json={"name": "python3"}).status_code == 403
    with env.client(env.tokens["dana"]) as dana:  # the team's DataScienceAdmin may look in
        assert dana.get(f"{NB}/api/status").status_code == 200
    kernel = env.session("alice").request("POST", f"{NB}/api/kernels", json_body={"name": "python3"}).json()["id"]
    url = "wss://" + env.server.url.split("://")[1] + f"{NB}/api/kernels/{kernel}/channels"
    context = ssl.create_default_context(cafile=str(env.server.ca))
    for headers in ({}, {"Authorization": f"Bearer {env.tokens['fred']}"}):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, ssl=context, additional_headers=headers, open_timeout=20)
        assert refused.value.response.status_code == 403
    with connect(url, ssl=context, additional_headers={"Authorization": f"Bearer {env.tokens['alice']}"}) as ws:
        assert ws.protocol.state.name == "OPEN"
    env.session("alice").request("DELETE", f"{NB}/api/kernels/{kernel}")
    denied = env.server.session().audit.query(action="OpenNotebook", decision="Deny", limit=100)
    principals = {e.principal for e in denied}
    assert {"anonymous", "fred", "bob"} <= principals
    assert all("sr_" not in json.dumps(e.params) for e in denied)


def test_presigned_url_signs_a_browser_in_once(env: Env) -> None:
    alice = env.session("alice")
    signed = alice.notebooks.presigned_url("risk", "lab", expires_in=60)
    assert signed.url.startswith(f"{env.server.url}{NB}/_signin?token=srp_")
    with env.client() as browser:
        answer = browser.get(signed.url)
        assert answer.status_code == 303
        assert answer.headers["location"] == f"{NB}/lab" and "token" not in answer.headers["location"]
        assert answer.headers["referrer-policy"] == "no-referrer"
        cookie = answer.headers["set-cookie"]
        for attribute in ("Secure", "HttpOnly", "SameSite=Strict", f"Path={NB}/"):
            assert attribute in cookie
        assert browser.get(f"{NB}/api/status").status_code == 200  # the cookie is the session
        # XSRF protection stays on for cookie sessions: a write without Jupyter's _xsrf token is refused
        assert browser.post(f"{NB}/api/kernels", json={"name": "python3"}).status_code == 403
        lab = browser.get(f"{NB}/lab")
        assert lab.status_code == 200 and "JupyterLab" in lab.text
        with env.client() as other_browser:
            assert other_browser.get(signed.url).status_code == 401  # single use
    expired = alice.notebooks.presigned_url("risk", "lab", expires_in=60)
    engine = create_engine(env.config.effective_database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE notebook_presigned_urls SET expires_at = '2000-01-01 00:00:00' WHERE used_at IS NULL")
        )
    engine.dispose()
    with env.client() as late:
        assert late.get(expired.url).status_code == 401
    events = env.server.session().audit.query(action="OpenNotebook", limit=1000)
    assert all("srp_" not in json.dumps(e.params) + e.resource for e in events)
    with pytest.raises(Forbidden):
        env.session("bob").notebooks.presigned_url("risk", "lab")


def _events_of(env: Env, request_ids: list[str]) -> list[dict[str, object]]:
    found = []
    for request_id in request_ids:
        for event in env.server.session().audit.query(action="OpenNotebook", request_id=request_id, limit=10):
            found.append(event.params)
    return found


def test_the_proxy_records_evidence_not_assets(env: Env) -> None:
    time.sleep(2.5)  # past any cached decision of the tests before
    reads = [uuid.uuid4().hex for _ in range(12)]
    with env.client(env.tokens["alice"]) as alice:
        for request_id in reads:
            assert alice.get(f"{NB}/api/status", headers={"x-request-id": request_id}).status_code == 200
        # Before: one OpenNotebook event per request (12); now the session's open event covers the reads.
        assert len(_events_of(env, reads)) == 1
        start = uuid.uuid4().hex
        kernel = alice.post(f"{NB}/api/kernels", json={"name": "python3"}, headers={"x-request-id": start})
        assert kernel.status_code == 201
        assert [e["method"] for e in _events_of(env, [start])] == ["POST"]  # the kernel start is evidence
        kernel_id = kernel.json()["id"]
    url = "wss://" + env.server.url.split("://")[1] + f"{NB}/api/kernels/{kernel_id}/channels"
    context = ssl.create_default_context(cafile=str(env.server.ca))
    socket_id = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {env.tokens['alice']}", "X-Request-Id": socket_id}
    with connect(url, ssl=context, additional_headers=headers, open_timeout=60) as ws:
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": "1",
                        "msg_type": "kernel_info_request",
                        "username": "",
                        "session": "s",
                        "version": "5.3",
                        "date": "",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {},
                    "channel": "shell",
                }
            )
        )
        ws.recv(timeout=60)
    deadline = time.monotonic() + 10
    while len(phases := _events_of(env, [socket_id])) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p["phase"] for p in phases] == ["connect", "close"]
    assert int(str(phases[1]["bytes_in"])) > 0 and int(str(phases[1]["bytes_out"])) > 0
    env.session("alice").request("DELETE", f"{NB}/api/kernels/{kernel_id}")


def test_the_proxy_fails_closed_when_the_audit_log_cannot_be_written(env: Env) -> None:
    engine = create_engine(env.config.effective_database_url)
    block = "CREATE TRIGGER no_audit BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    try:
        with engine.begin() as conn:
            conn.execute(text(block))
        time.sleep(2.5)  # past the cached decision of the test before
        with env.client(env.tokens["alice"]) as alice:
            # Before: 200 (the event was queued and written after recovery).
            assert alice.get(f"{NB}/api/status").status_code == 503
            assert alice.get(f"{NB}/api/status").status_code == 503
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS no_audit"))
        engine.dispose()
    with env.client(env.tokens["alice"]) as alice:
        assert alice.get(f"{NB}/api/status").status_code == 200


def git(cwd: Path, *args: str, token: str, ca: Path) -> subprocess.CompletedProcess[str]:
    config = ["-c", f"http.sslCAInfo={ca}", "-c", f"http.extraHeader=Authorization: Bearer {token}"]
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *config, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_git_clone_commit_and_push_from_the_notebook(env: Env, tmp_path: Path) -> None:
    out = run(
        env,
        """
        import pathlib, subprocess, strongroom_environment as senv
        work = pathlib.Path.home() / "work-clone"
        def git(*args):
            done = subprocess.run(["git", *args], cwd=work if work.exists() else None, capture_output=True, text=True)
            assert done.returncode == 0, (args, done.stderr)
            return done.stdout.strip()
        git("clone", senv.GIT_REMOTE, str(work))
        (work / "features.py").write_text("FEATURES = ['LIMIT_BAL', 'PAY_0']\\n")
        git("add", "features.py")
        git("commit", "-m", "Add feature list")
        git("push", "origin", "HEAD:main")
        print(git("rev-parse", "HEAD"))
        print((work / ".git" / "config").read_text().replace("\\n", " "))
        """,
    )
    sha, git_config = out.strip().splitlines()[-2:]
    commit = env.session("alice").repositories.get_commit("risk", "risk", sha)
    assert (commit.author, commit.message) == ("alice", "Add feature list")
    assert "srs_" not in git_config and "sr_" not in git_config and "@" not in git_config.split("url =")[1]
    refused = git(
        tmp_path, "clone", f"{env.server.url}/git/risk/risk.git", "stolen", token=env.tokens["fred"], ca=env.server.ca
    )
    assert refused.returncode != 0 and "403" in refused.stderr


def test_a_notebook_file_is_uploaded_and_executed_through_the_proxy(env: Env) -> None:
    alice = env.session("alice")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Workshop check"),
        nbformat.v4.new_code_cell("import os\nuid = os.getuid()\nprint('uid', uid)"),
        nbformat.v4.new_code_cell("import strongroom_environment as env\nenv.TEAM, uid != 0"),
    ]
    alice.notebooks.upload("risk", "lab", "work/first check.ipynb", notebook)
    seen: list[int] = []
    executed = alice.notebooks.execute_notebook(
        "risk", "lab", "work/first check.ipynb", on_cell=lambda index, cell, result: seen.append(index)
    )
    assert seen == [1, 2]
    assert executed.cells[1].outputs[0]["text"].startswith("uid ")
    assert executed.cells[2].outputs[0]["data"]["text/plain"] == "('risk', True)"
    saved = alice.notebooks.download("risk", "lab", "work/first check.ipynb")
    assert saved.cells[2].execution_count == executed.cells[2].execution_count
    failing = nbformat.v4.new_notebook()
    failing.cells = [nbformat.v4.new_code_cell("1 / 0"), nbformat.v4.new_code_cell("print('never')")]
    alice.notebooks.upload("risk", "lab", "work/fails.ipynb", failing)
    with pytest.raises(CellExecutionError, match="ZeroDivisionError") as error:
        alice.notebooks.execute_notebook("risk", "lab", "work/fails.ipynb")
    assert error.value.notebook.cells[1].outputs == []  # type: ignore[attr-defined]


def test_pip_reaches_no_index_unless_one_is_approved(env: Env) -> None:
    out = run(
        env,
        """
        import subprocess, sys
        done = subprocess.run([sys.executable, "-m", "pip", "install", "requests-toolbelt"], capture_output=True,
                              text=True, timeout=120)
        print(done.returncode)
        """,
    )
    assert out.strip().splitlines()[-1] != "0"
    events = env.server.session().audit.query(action="UsePackageIndex", limit=100)
    assert events and {e.outcome for e in events} == {"unavailable"} and events[0].principal == "alice"


def test_parameter_errors_are_clear(env: Env) -> None:
    alice = env.session("alice")
    with pytest.raises(InvalidInput) as bad_name:
        alice.catalog.launch("notebook", {"TeamName": "risk", "NotebookName": "My Notebook!"})
    assert bad_name.value.field == "parameters.NotebookName" and "does not match the pattern" in bad_name.value.detail
    with pytest.raises(InvalidInput) as bad_size:
        alice.catalog.launch("notebook", {"TeamName": "risk", "NotebookName": "big", "InstanceSize": "xxl"})
    assert bad_size.value.field == "parameters.InstanceSize" and "small, medium, large" in bad_size.value.detail
    with pytest.raises(Forbidden):
        env.session("fred").catalog.launch("notebook", {"TeamName": "risk", "NotebookName": "spy"})
    with pytest.raises(Forbidden):
        env.session("bob").catalog.launch("notebook", {"TeamName": "risk", "NotebookName": "x", "Owner": "alice"})


def test_stop_and_start_keep_the_volume(env: Env) -> None:
    alice = env.session("alice")
    run(env, "open('/home/sandbox/keep.txt', 'w').write('still here')")
    stopped = alice.notebooks.stop("risk", "lab", wait=True)
    assert stopped.status == "Stopped"
    with env.client(env.tokens["alice"]) as client:
        assert client.get(f"{NB}/api/status").status_code == 503
    alice.notebooks.start("risk", "lab", wait=True, timeout=240)
    assert run(env, "print(open('/home/sandbox/keep.txt').read())").strip() == "still here"
    assert run(env, "print(open('/home/sandbox/lifecycle.log').read().split())").strip() == str(
        ["created-once", "started", "started"]
    )


def _files_below(root: Path, skip: Path) -> Iterator[Path]:
    """Every regular file under ``root`` without entering ``skip`` (the mount point)."""
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if Path(directory, d) != skip]
        yield from (Path(directory, f) for f in files)


def test_the_volume_is_encrypted_at_rest_under_the_team_key(env: Env) -> None:
    alice = env.session("alice")
    notebook = alice.notebooks.describe("risk", "lab")
    volume = env.config.effective_notebook_volumes_path / "risk" / f"lab-{notebook.id}"
    marker = f"volume-plaintext-{os.urandom(8).hex()}"
    run(env, f"open('/home/sandbox/secret-notes-{marker}.txt', 'w').write({marker!r} * 1000)")
    assert os.path.ismount(volume / "home")
    on_disk = list(_files_below(volume, skip=volume / "home"))
    assert len(on_disk) >= 3  # gocryptfs.conf, the wrapped key, the encrypted file
    for path in on_disk:  # neither the content nor the file name is stored in plaintext
        data = path.read_bytes()
        assert marker.encode() not in data and marker not in path.name, path
    stopped = alice.notebooks.stop("risk", "lab", wait=True)
    assert stopped.status == "Stopped"
    assert not os.path.ismount(volume / "home") and list((volume / "home").iterdir()) == []
    events = env.server.session().audit.query(action="GenerateDataKey", principal="system", team="risk", limit=500)
    assert any(e.params.get("encryption_context", {}).get("notebook") == notebook.id for e in events)
    dana = env.session("dana")
    dana.keys.disable("risk", "default")  # without the team key the volume cannot be opened
    try:
        with pytest.raises(StrongroomError, match="is disabled"):
            alice.notebooks.start("risk", "lab", wait=True, timeout=240)
    finally:
        dana.keys.enable("risk", "default")
    alice.notebooks.start("risk", "lab", wait=True, timeout=240)
    assert run(env, f"print(len(open('/home/sandbox/secret-notes-{marker}.txt').read()))").strip() == str(
        len(marker) * 1000
    )


def test_a_platform_restart_reconciles_a_running_notebook(env: Env, package_index: str) -> None:
    notebook = env.session("alice").notebooks.describe("risk", "lab")
    before = env.sandbox_pids(notebook.id)
    assert before
    env.server.stop(signal.SIGKILL)
    time.sleep(1)
    # ...and it comes back with an approved package index (the next test uses it)
    started = launcher.start(env.config, env={"STRONGROOM_PACKAGE_INDEX_URL": f"{package_index}/simple"})
    env.server = RunningServer(started.config, started.process, started.info, started.log_path, env.server.admin_token)
    deadline = time.monotonic() + 240
    # Its row says InService (from before the kill) until the new platform has started it again.
    while env.session("alice").notebooks.describe("risk", "lab").started_at == notebook.started_at:
        assert time.monotonic() < deadline, "the notebook was not restarted"
        time.sleep(0.2)
    env.session("alice").notebooks.wait("risk", "lab", "InService", timeout=240)
    assert not any(Path(f"/proc/{pid}").exists() and pid in env.sandbox_pids(notebook.id) for pid in before)
    assert run(env, "print(open('/home/sandbox/keep.txt').read())").strip() == "still here"
    assert env.session("alice").catalog.describe("risk", "lab").status == "AVAILABLE"


def test_pip_installs_from_the_approved_index_only(env: Env) -> None:
    out = run(
        env,
        """
        import subprocess, sys
        done = subprocess.run([sys.executable, "-m", "pip", "install", "tinypkg"], capture_output=True, text=True,
                              timeout=120)
        print(done.returncode, done.stdout.splitlines()[-1:], done.stderr[-300:])
        """,
    )
    assert out.startswith("0 ['Successfully installed tinypkg-1.0']"), out
    assert run(env, "import tinypkg; print(tinypkg.VALUE)").strip() == "42"  # a new kernel finds it
    missing = run(
        env,
        "import subprocess, sys; print(subprocess.run([sys.executable, '-m', 'pip', 'install', "
        "'requests-toolbelt'], capture_output=True).returncode)",
    )
    assert missing.strip() != "0"  # what the approved index does not have cannot be installed


def test_terminate_removes_process_volume_and_route(env: Env) -> None:
    alice = env.session("alice")
    notebook = alice.notebooks.describe("risk", "lab")
    volume = env.config.effective_notebook_volumes_path / "risk" / f"lab-{notebook.id}"
    assert volume.is_dir() and env.sandbox_pids(notebook.id)
    product = alice.catalog.terminate("risk", "lab", wait=True, timeout=120)
    assert product.status == "TERMINATED"
    assert not volume.exists()
    assert not (env.config.effective_notebook_runtime_dir / notebook.id).exists()
    assert env.sandbox_pids(notebook.id) == []
    with env.client(env.tokens["dana"]) as dana:
        assert dana.get(f"{NB}/api/status").status_code == 404
    assert [n.name for n in alice.notebooks.list("risk")] == []
