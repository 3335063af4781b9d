"""`strongroom up --workers 2`: two API processes on one port, as an operator runs them.

A revoked token and a newly attached team policy are refused by *both* processes within a
second, although each had authenticated the token and loaded the team's policies moments before
(their caches would otherwise keep them for seconds). Which process answered is read from each
process's own access log (``access-<slot>.log``, one JSON line per request with its pid). A
process killed with SIGKILL is restarted by the master while the other keeps answering.
On SQLite always; on PostgreSQL too when ``STRONGROOM_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from strongroom.core.config import Config
from tests.conftest import ON_SQLITE
from tests.support import RunningServer, start_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
WITHIN = 1.0  # seconds from the changing call's answer to every process refusing


def _ask(server: RunningServer, token: str, path: str, request_id: str) -> int:
    """One request on a connection of its own (the kernel hands each new connection to either process)."""
    context = ssl.create_default_context(cafile=str(server.ca))
    headers = {"authorization": f"Bearer {token}", "x-request-id": request_id}
    with httpx.Client(base_url=server.url, verify=context, headers=headers, timeout=30) as client:
        return client.get(path).status_code


def _answered(server: RunningServer, prefix: str) -> dict[int, Counter[int]]:
    """pid -> statuses of the requests whose id starts with ``prefix``, from every process's access log."""
    found: dict[int, Counter[int]] = {}
    for path in (server.config.home / "logs").glob("access-*.log"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if str(record.get("request_id", "")).startswith(prefix):
                found.setdefault(int(record["pid"]), Counter())[int(record["status"])] += 1
    return found


def _from_every_process(server: RunningServer, token: str, path: str, tag: str) -> dict[int, Counter[int]]:
    """Ask until both API processes have answered (at least 10 requests); what each answered."""
    prefix = f"{tag}-{uuid.uuid4().hex[:8]}-"
    for i in range(80):
        _ask(server, token, path, f"{prefix}{i}")
        if i >= 9:
            answered = _answered(server, prefix)
            if len(answered) >= 2:
                return answered
    raise AssertionError(f"one process answered every request: {_answered(server, prefix)}")


def _processes(server: RunningServer) -> list[dict[str, object]]:
    info = json.loads((server.config.run_dir / "server.json").read_text())
    return list(info["processes"])


@pytest.fixture
def two(initialized: tuple[Config, str]) -> Iterator[RunningServer]:
    config, token = initialized
    server = start_server(config, token, args=("--workers", "2"))
    yield server
    assert server.stop() == 0, server.log()


def test_a_revoked_token_and_a_new_policy_are_refused_by_every_process_within_a_second(two: RunningServer) -> None:
    admin = two.session()
    assert [p["background"] for p in _processes(two)] == [True, False]
    admin.teams.create("risk")
    for user in ("alice", "bob"):
        admin.users.create(user)
        admin.teams.add_member("risk", user, "DataScientist")
    alice = admin.tokens.create("laptop", user="alice")
    bob = admin.tokens.create("laptop", user="bob").secret
    experiments = "/api/v1/teams/risk/experiments"

    # Both processes authenticate alice's token and load team risk's policies (and cache them).
    warm = _from_every_process(two, alice.secret, experiments, "alice-before")
    assert all(set(statuses) == {200} for statuses in warm.values()), warm
    assert all(set(s) == {200} for s in _from_every_process(two, bob, experiments, "bob-before").values())

    admin.tokens.revoke(alice.token.id)
    time.sleep(WITHIN)
    after = _from_every_process(two, alice.secret, experiments, "alice-after")
    assert all(set(statuses) == {401} for statuses in after.values()), after

    forbid = '@id("no-listing")\nforbid (principal, action == Action::"ListExperiments", resource);'
    admin.policies.attach("risk", "no-listing", forbid)
    time.sleep(WITHIN)
    refused = _from_every_process(two, bob, experiments, "bob-after")
    assert all(set(statuses) == {403} for statuses in refused.values()), refused

    admin.policies.detach("risk", "no-listing")
    time.sleep(WITHIN)
    again = _from_every_process(two, bob, experiments, "bob-again")
    assert all(set(statuses) == {200} for statuses in again.values()), again


def test_a_killed_api_process_is_restarted_and_requests_keep_being_served(two: RunningServer) -> None:
    token = two.admin_token
    before = {int(str(p["slot"])): int(str(p["pid"])) for p in _processes(two)}
    for slot in (1, 0):  # a plain API process, then the one that also runs the background workers
        os.kill(before[slot], signal.SIGKILL)
        statuses = Counter(_ask(two, token, "/api/v1/teams", f"kill{slot}-{i}") for i in range(30))
        assert statuses == Counter({200: 30}), statuses
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = {int(str(p["slot"])): int(str(p["pid"])) for p in _processes_or_none(two)}
            if now.get(slot, before[slot]) != before[slot]:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"API process {slot} was not restarted:\n{two.log()[-3000:]}")
        before = now
    assert "died (signal SIGKILL); restarting it" in two.log()
    context = ssl.create_default_context(cafile=str(two.ca))
    deadline = time.monotonic() + 30
    while True:  # the new slot 0 runs the background workers again; every process says so
        answers = [httpx.get(f"{two.url}/readyz", verify=context).json() for _ in range(6)]
        if all(a["status"] == "ready" for a in answers) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(a["status"] == "ready" for a in answers), answers
    served = _from_every_process(two, token, "/api/v1/teams", "restarted")
    assert set(served) == set(before.values()), (served, before)


def test_connections_opened_together_are_spread_over_both_processes(two: RunningServer) -> None:
    """Connections that arrive together (a client pool opening at once, as wrk does) must not all
    land on the process that wakes first: that one would serve everything while the other idles."""
    connections = 8
    prefix = f"spread-{uuid.uuid4().hex[:8]}-"
    address = urlsplit(two.url)
    host, port = address.hostname or "localhost", address.port or 443
    context = ssl.create_default_context(cafile=str(two.ca))
    # A burst that arrives while both processes are busy: all eight wait in the listening socket's
    # queue when the processes next look at it.
    pids = [int(str(p["pid"])) for p in _processes(two)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        raw = [socket.create_connection((host, port)) for _ in range(connections)]
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    for index, sock in enumerate(raw):
        conversation = http.client.HTTPSConnection(host, port, context=context, timeout=30)
        conversation.sock = context.wrap_socket(sock, server_hostname=host)
        for request in range(3):  # keep-alive: all three on that one connection
            headers = {"authorization": f"Bearer {two.admin_token}", "x-request-id": f"{prefix}{index}-{request}"}
            conversation.request("GET", "/api/v1/teams", headers=headers)
            answer = conversation.getresponse()
            answer.read()
            assert answer.status == 200
        conversation.close()
    pids_of: dict[str, set[int]] = {}
    for path in (two.config.home / "logs").glob("access-*.log"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            request_id = str(record.get("request_id", ""))
            if request_id.startswith(prefix):
                pids_of.setdefault(request_id.rsplit("-", 1)[0], set()).add(int(record["pid"]))
    assert len(pids_of) == connections and all(len(pids) == 1 for pids in pids_of.values()), pids_of
    per_process = Counter(next(iter(pids)) for pids in pids_of.values())
    # Usually 4/4 or 5/3. A process defers to its sibling for 2 ms only, so on a loaded machine
    # (the other test worker on the second core) the sibling may not run in time and 6/2 happens
    # (seen once in a CI run); without the balancing it was 8/0, three times out of three.
    assert len(per_process) == 2 and min(per_process.values()) >= 2, per_process


def _processes_or_none(server: RunningServer) -> list[dict[str, object]]:
    try:
        return _processes(server)
    except (OSError, ValueError, KeyError):
        return []


# The data-plane tests (endpoints, git, notebooks) depend on no database feature: SQLite only; the
# database part of --workers is tested on both backends above.
@ON_SQLITE
def test_endpoint_invocations_from_every_process_reach_the_one_pool_of_workers(two: RunningServer) -> None:

    import numpy as np
    import xgboost as xgb

    from strongroom.algorithms.xgboost.archive import archive_bytes
    from tests.integration.jobs.conftest import add_mlops_engineer, build_team, credit_like

    env = build_team(two)
    frame = credit_like(300, seed=5)
    label = frame.pop("default payment next month")
    params = {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic"}
    booster = xgb.train(params, xgb.DMatrix(frame.to_numpy(), label), 10)
    env.alice.buckets.put_object(env.models, "local/model.tar.gz", archive_bytes(booster.save_raw("ubj")))
    _, mlops = add_mlops_engineer(env)
    mlops.models.create(env.team, "scorer", model_data=f"sr://{env.models}/local/model.tar.gz", kms_key=env.key)
    mlops.endpoint_configs.create(
        env.team, "scorer-config", [{"VariantName": "AllTraffic", "ModelName": "scorer"}], kms_key=env.key
    )
    mlops.endpoints.create(env.team, "scorer", "scorer-config")
    assert mlops.endpoints.wait(env.team, "scorer", timeout=120).status == "InService"

    rows = frame.iloc[:24].to_numpy()
    expected = booster.predict(xgb.DMatrix(rows.astype(np.float32)))
    context = ssl.create_default_context(cafile=str(two.ca))
    prefix = f"score-{uuid.uuid4().hex[:8]}-"
    scores = []
    for i, row in enumerate(rows):
        headers = {
            "authorization": f"Bearer {env.alice_token}",
            "x-request-id": f"{prefix}{i}",
            "content-type": "text/csv",
        }
        with httpx.Client(base_url=two.url, verify=context, headers=headers, timeout=60) as client:
            answer = client.post(f"/endpoints/{env.team}/scorer/invocations", content=",".join(str(v) for v in row))
        assert answer.status_code == 200, answer.text
        scores.append(float(answer.text))
    assert np.array_equal(np.asarray(scores, dtype=np.float32), expected)
    answered = _answered(two, prefix)
    assert len(answered) == 2 and all(set(s) == {200} for s in answered.values()), answered

    # Explanations and refusals come back the same whichever process the request reached.
    prefix = f"explain-{uuid.uuid4().hex[:8]}-"
    first = ",".join(str(v) for v in rows[0])
    for i in range(12):
        headers = {"authorization": f"Bearer {env.alice_token}", "content-type": "text/csv"}
        with httpx.Client(base_url=two.url, verify=context, headers=headers, timeout=60) as client:
            path = f"/endpoints/{env.team}/scorer/invocations"
            explained = client.post(f"{path}?explain=true", content=first, headers={"x-request-id": f"{prefix}{i}"})
            refused = client.post(path, content="20000,2,2", headers={"x-request-id": f"{prefix}bad-{i}"})
        assert explained.status_code == 200, explained.text
        [prediction] = explained.json()["predictions"]
        assert np.float32(prediction["score"]) == expected[0]
        assert refused.status_code == 422 and (refused.json()["row"], refused.json()["column"]) == (1, 4), refused.text
    answered = _answered(two, prefix)
    assert len(answered) == 2 and all(set(s) == {200, 422} for s in answered.values()), answered


@ON_SQLITE
def test_team_git_is_served_by_every_process_from_one_shared_mount(two: RunningServer, tmp_path: Path) -> None:
    from tests.integration.test_git import git

    admin = two.session()
    admin.teams.create("risk")
    admin.keys.create("risk", "default")
    admin.users.create("alice")
    admin.teams.add_member("risk", "alice", "DataScientist")
    token = admin.tokens.create("git", user="alice").secret
    repo = two.session(token).repositories.create("risk", "credit-model", "workshop notebooks")
    work = tmp_path / "work"
    work.mkdir()
    cloned = git(work, "clone", repo.clone_url, "repo", token=token, ca=two.ca, check=False)
    assert cloned.returncode == 0, cloned.stderr
    shas = []
    (work / "repo" / "step.py").write_text("print(0)\n")
    git(work / "repo", "add", "step.py", token=None, ca=two.ca)
    for i in range(6):  # each git command opens new connections: both processes answer some
        (work / "repo" / "step.py").write_text(f"print({i})\n")
        git(work / "repo", "commit", "-qam", f"step {i}", token=None, ca=two.ca)
        pushed = git(work / "repo", "push", "-q", "origin", "HEAD:main", token=token, ca=two.ca, check=False)
        assert pushed.returncode == 0, pushed.stderr
        shas.append(git(work / "repo", "rev-parse", "HEAD", token=None, ca=two.ca).stdout.strip())
        listed = git(work / "repo", "ls-remote", "origin", "main", token=token, ca=two.ca, check=False)
        assert listed.returncode == 0 and listed.stdout.split()[0] == shas[-1], listed.stderr
    served: set[int] = set()
    for path in (two.config.home / "logs").glob("access-*.log"):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if "/git/risk/credit-model.git" in record.get("path", "") and record["status"] == 200:
                served.add(int(record["pid"]))
    assert len(served) == 2, served
    mount = two.config.home / "git" / "risk" / "home"
    assert os.path.ismount(mount)
    assert two.stop() == 0
    assert not os.path.ismount(mount)  # the master unmounts it once every process has ended


@ON_SQLITE
def test_a_notebook_started_by_one_process_is_proxied_by_every_process(two: RunningServer) -> None:
    admin = two.session()
    admin.catalog.launch("team-environment", {"TeamName": "risk"}, wait=True, timeout=120)
    admin.users.create("alice")
    admin.teams.add_member("risk", "alice", "DataScientist")
    token = admin.tokens.create("laptop", user="alice").secret
    alice = two.session(token)
    alice.catalog.launch("notebook", {"TeamName": "risk", "NotebookName": "lab"}, wait=True, timeout=240)
    answered = _from_every_process(two, token, "/notebooks/risk/lab/api/status", "lab")
    assert all(set(statuses) == {200} for statuses in answered.values()), answered
