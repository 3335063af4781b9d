"""Revocation reaches everything derived, timed: a real `strongroom up`, a Team Environment and one
JupyterLab; kernel WebSockets opened through the HTTPS proxy with the credentials users really hold.

Revoking an API token ends the sessions assumed with it, the sign-in links and browser cookies made
from it, and closes the kernel WebSockets opened with any of them within a second; disabling a user
or removing a membership does the same for that user; an owner who loses the role has the
notebook's kernels ended. The tests run in file order and the last one removes the owner.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from strongroom.core.config import Config
from strongroom.core.errors import Unauthenticated
from strongroom.platform import initialize
from tests.support import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
NB = "/notebooks/risk/lab"
WITHIN = 1.0  # seconds from the revoking call's answer to the socket's close


@dataclass
class Env:
    config: Config
    server: RunningServer
    tokens: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, str] = field(default_factory=dict)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        context = ssl.create_default_context(cafile=str(self.server.ca))
        return httpx.Client(base_url=self.server.url, verify=context, headers=headers, timeout=60)

    def kernel(self) -> str:
        with self.client(self.tokens["alice"]) as alice:
            answer = alice.post(f"{NB}/api/kernels", json={"name": "python3"})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    @contextlib.contextmanager
    def channels(self, kernel: str, token: str) -> Iterator[ClientConnection]:
        """A kernel WebSocket of its own (Jupyter replaces a connection with the same session id)."""
        path = f"{NB}/api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}"
        context = ssl.create_default_context(cafile=str(self.server.ca))
        with connect(
            "wss://" + self.server.url.split("://")[1] + path,
            ssl=context,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=60,
        ) as socket:
            assert answers(socket), "the kernel WebSocket does not answer before the revocation"
            yield socket


def answers(socket: ClientConnection) -> bool:
    """Whether the kernel behind ``socket`` answers a kernel_info_request (the socket carries code)."""
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "", "session": msg_id, "version": "5.3"}
    socket.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell"}))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        message = json.loads(socket.recv(timeout=60))
        if message.get("parent_header", {}).get("msg_id") == msg_id and message["msg_type"] == "kernel_info_reply":
            return True
    return False


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    home = tmp_path_factory.mktemp("revoke") / "home"
    config = Config(home=home, port=0)
    result = initialize(config)
    server = start_server(config, result.token.secret)
    setup = Env(config, server)
    try:
        admin = server.session()
        admin.catalog.launch("team-environment", {"TeamName": "risk"}, wait=True, timeout=120)
        for user, role in (("alice", "DataScientist"), ("dana", "DataScienceAdmin"), ("erin", "DataScienceAdmin")):
            admin.users.create(user)
            admin.teams.add_member("risk", user, role)
            issued = admin.tokens.create("main", user=user)
            setup.tokens[user], setup.token_ids[user] = issued.secret, issued.token.id
        laptop = admin.tokens.create("laptop", user="alice")
        setup.tokens["laptop"], setup.token_ids["laptop"] = laptop.secret, laptop.token.id
        server.session(setup.tokens["alice"]).catalog.launch(
            "notebook", {"TeamName": "risk", "NotebookName": "lab"}, wait=True, timeout=240
        )
        yield setup
    finally:
        setup.server.stop()


def closed_after(socket: ClientConnection, revoke: Callable[[], object]) -> float:
    """Seconds from the revoking call's answer until the server closed ``socket`` (inf: never)."""
    revoke()
    answered = time.monotonic()
    try:
        while time.monotonic() - answered < 5:
            socket.recv(timeout=5)
    except ConnectionClosed:
        elapsed = time.monotonic() - answered
        print(f"revocation closed the WebSocket in {elapsed * 1000:.0f} ms")  # the figure, with pytest -s
        return elapsed
    except TimeoutError:
        pass
    return float("inf")


def signed_in_browser(env: Env, token: str) -> httpx.Client:
    signed = env.server.session(token).notebooks.presigned_url("risk", "lab", expires_in=60)
    browser = env.client()
    assert browser.get(signed.url).status_code == 303
    assert browser.get(f"{NB}/api/status").status_code == 200
    return browser


def test_revoking_an_api_token_ends_its_sessions_links_cookies_and_sockets(env: Env) -> None:
    laptop = env.tokens["laptop"]
    session = env.server.session(laptop).assume_role("DataScientist", "risk")
    assert session.whoami().token_kind == "session"
    unused_link = env.server.session(laptop).notebooks.presigned_url("risk", "lab", expires_in=60)
    browser = signed_in_browser(env, laptop)
    kernel = env.kernel()
    with (
        env.channels(kernel, laptop) as by_token,
        env.channels(kernel, session.current_token()) as by_session,
        env.channels(kernel, env.tokens["alice"]) as by_other_token,
    ):
        elapsed = closed_after(by_token, lambda: env.server.session().tokens.revoke(env.token_ids["laptop"]))
        assert elapsed < WITHIN, f"the WebSocket opened with the revoked token stayed open {elapsed:.2f} s"
        assert closed_after(by_session, lambda: None) < WITHIN
        assert answers(by_other_token)  # alice's other token is untouched: that socket still carries code
    with pytest.raises(Unauthenticated, match="revoked"):
        session.whoami()
    assert browser.get(f"{NB}/api/status").status_code == 401
    browser.close()
    with env.client() as late:
        assert late.get(unused_link.url).status_code == 401
    with env.client(env.tokens["alice"]) as alice:
        assert alice.get(f"{NB}/api/kernels/{kernel}").status_code == 200  # the owner's kernel lives on
    session.close()


def test_disabling_a_user_closes_their_socket_and_their_cookie_at_once(env: Env) -> None:
    browser = signed_in_browser(env, env.tokens["dana"])
    kernel = env.kernel()
    with env.channels(kernel, env.tokens["dana"]) as dana:
        elapsed = closed_after(dana, lambda: env.server.session().users.disable("dana"))
    assert elapsed < WITHIN, f"a disabled user's WebSocket stayed open {elapsed:.2f} s"
    assert browser.get(f"{NB}/api/status").status_code == 401  # no grace period for the cookie
    browser.close()


def test_removing_a_membership_closes_the_socket_it_allowed(env: Env) -> None:
    kernel = env.kernel()
    with env.channels(kernel, env.tokens["erin"]) as erin:
        elapsed = closed_after(
            erin, lambda: env.server.session().teams.remove_member("risk", "erin", "DataScienceAdmin")
        )
    assert elapsed < WITHIN, f"the WebSocket stayed open {elapsed:.2f} s after the membership was removed"
    with env.client(env.tokens["erin"]) as erin_again:
        assert erin_again.get(f"{NB}/api/status").status_code == 403


def test_an_owner_removed_from_the_team_loses_the_kernels_and_sockets(env: Env) -> None:
    kernel = env.kernel()
    with env.channels(kernel, env.tokens["alice"]) as alice:
        elapsed = closed_after(
            alice, lambda: env.server.session().teams.remove_member("risk", "alice", "DataScientist")
        )
    assert elapsed < WITHIN, f"the owner's WebSocket stayed open {elapsed:.2f} s after the removal"
    env.server.session().teams.add_member("risk", "erin", "DataScienceAdmin")
    with env.client(env.tokens["erin"]) as erin:
        deadline = time.monotonic() + 10
        while erin.get(f"{NB}/api/kernels").json() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert erin.get(f"{NB}/api/kernels").json() == [], "the kernel still runs with a role its owner lost"
