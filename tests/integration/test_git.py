"""Team git over smart HTTP through the platform: real git client, real git http-backend."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from strongroom.core.errors import Forbidden, InvalidInput, NotFound
from tests.support import RunningServer


def git(cwd: Path, *args: str, token: str | None, ca: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    config = ["-c", f"http.sslCAInfo={ca}", "-c", "user.name=Alice Analyst", "-c", "user.email=alice@bank.example"]
    if token:
        config += ["-c", f"http.extraHeader=Authorization: Bearer {token}"]
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(
        ["git", *config, *args], cwd=cwd, env=env, capture_output=True, text=True, check=check, timeout=60
    )


def _push_a_commit(clone_url: str, token: str, ca: Path, folder: Path, file: str, message: str) -> str:
    """Clone ``clone_url`` into ``folder``/repo, commit one file, push it to main; the commit's sha."""
    folder.mkdir()
    git(folder, "clone", clone_url, "repo", token=token, ca=ca)
    checkout = folder / "repo"
    (checkout / file).write_text(f"print({message!r})\n")
    git(checkout, "add", file, token=None, ca=ca)
    git(checkout, "commit", "-m", message, token=None, ca=ca)
    git(checkout, "push", "origin", "HEAD:main", token=token, ca=ca)
    return git(checkout, "rev-parse", "HEAD", token=None, ca=ca).stdout.strip()


@pytest.fixture
def team(server: RunningServer) -> dict[str, str]:
    s = server.session()
    s.teams.create("risk")
    s.teams.create("fraud")
    for name in ("risk", "fraud"):  # a team's repositories are encrypted under its default key
        s.keys.create(name, "default")
    tokens = {}
    for user, team_name, role in (
        ("alice", "risk", "DataScientist"),
        ("omar", "risk", "MLOpsEngineer"),
        ("fred", "fraud", "DataScientist"),
    ):
        s.users.create(user)
        s.teams.add_member(team_name, user, role)
        tokens[user] = s.tokens.create("git", user=user).secret
    return tokens


def test_clone_commit_push_and_commit_lookup(server: RunningServer, team: dict[str, str], tmp_path: Path) -> None:
    alice = server.session(team["alice"])
    repo = alice.repositories.create("risk", "credit-model", "workshop notebooks")
    assert repo.clone_url.endswith("/git/risk/credit-model.git")
    work = tmp_path / "work"
    sha = _push_a_commit(repo.clone_url, team["alice"], server.ca, work, "preprocessing.py", "Add preprocessing script")

    commit = alice.repositories.get_commit("risk", "credit-model", sha)
    assert (commit.sha, commit.author, commit.email) == (sha, "Alice Analyst", "alice@bank.example")
    assert commit.message == "Add preprocessing script" and commit.parents == []
    assert [c.sha for c in alice.repositories.list_commits("risk", "credit-model")] == [sha]

    omar = server.session(team["omar"])
    assert omar.repositories.get_commit("risk", "credit-model", sha[:12]).sha == sha
    # the MLOps engineer pulls, and pushes the deployment notebook (the workshop's notebook 02, step 13)
    git(work, "clone", repo.clone_url, "omar-copy", token=team["omar"], ca=server.ca)
    (work / "omar-copy" / "02_MLOps-Workflow.ipynb").write_text("{}")
    git(work / "omar-copy", "add", "02_MLOps-Workflow.ipynb", token=None, ca=server.ca)
    git(work / "omar-copy", "commit", "-m", "Deployment notebook", token=None, ca=server.ca)
    git(work / "omar-copy", "push", "origin", "HEAD:main", token=team["omar"], ca=server.ca)
    assert omar.repositories.list_commits("risk", "credit-model")[0].message == "Deployment notebook"

    events = server.session().audit.query(action="GitPush")
    # a push is two requests (ref advertisement, pack upload): each is audited
    assert [(e.principal, e.decision) for e in events] == [("alice", "Allow")] * 2 + [("omar", "Allow")] * 2

    # At rest the repositories are ciphertext: no repository name, ref, commit id or git config
    # (all of which a bare repository keeps in plaintext) below the mount point.
    team_dir = server.config.home / "git" / "risk"
    assert os.path.ismount(team_dir / "home") and (team_dir / "home" / "credit-model.git" / "HEAD").exists()
    stored = [p for p in team_dir.rglob("*") if not p.is_relative_to(team_dir / "home")]
    assert any(p.name == "gocryptfs.conf" for p in stored)
    for path in stored:
        assert "credit-model" not in path.name and path.name not in ("HEAD", "config", "main"), path
        if path.is_file():
            data = path.read_bytes()
            assert sha.encode() not in data and b"denyNonFastForwards" not in data, path


def test_other_teams_and_anonymous_cannot_clone(server: RunningServer, team: dict[str, str], tmp_path: Path) -> None:
    repo = server.session(team["alice"]).repositories.create("risk", "secret-sauce")
    fred = git(tmp_path, "clone", repo.clone_url, "f", token=team["fred"], ca=server.ca, check=False)
    assert fred.returncode != 0 and "403" in fred.stderr
    anonymous = git(tmp_path, "clone", repo.clone_url, "a", token=None, ca=server.ca, check=False)
    assert anonymous.returncode != 0
    assert not (tmp_path / "f").exists() or not any((tmp_path / "f").iterdir())
    # a missing repository of another team looks exactly like an existing one
    missing = git(
        tmp_path,
        "clone",
        repo.clone_url.replace("secret-sauce", "nope"),
        "n",
        token=team["fred"],
        ca=server.ca,
        check=False,
    )
    assert "403" in missing.stderr
    with pytest.raises(Forbidden):
        server.session(team["fred"]).repositories.list("risk")


def test_password_style_credentials_work(server: RunningServer, team: dict[str, str], tmp_path: Path) -> None:
    repo = server.session(team["alice"]).repositories.create("risk", "pw")
    askpass = tmp_path / "askpass.sh"
    askpass.write_text(f"#!/bin/sh\necho '{team['alice']}'\n")
    askpass.chmod(0o700)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_ASKPASS": str(askpass), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(
        ["git", "-c", f"http.sslCAInfo={server.ca}", "clone", repo.clone_url, "c"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_commit_lookup_validates_input(server: RunningServer, team: dict[str, str]) -> None:
    alice = server.session(team["alice"])
    alice.repositories.create("risk", "r")
    with pytest.raises(InvalidInput) as bad:
        alice.repositories.get_commit("risk", "r", "HEAD; rm -rf ~")
    assert bad.value.field == "sha"
    with pytest.raises(InvalidInput):
        alice.repositories.list_commits("risk", "r", ref="--output=/tmp/x")
    with pytest.raises(NotFound):
        alice.repositories.get_commit("risk", "r", "0" * 40)
    with pytest.raises(NotFound):
        alice.repositories.get_commit("risk", "missing", "0" * 40)


def _pkt(line: str) -> bytes:
    return f"{len(line) + 4:04x}{line}".encode()


def test_a_request_body_the_backend_stops_reading_early_is_answered(
    server: RunningServer, team: dict[str, str], tmp_path: Path
) -> None:
    """git http-backend stops reading a gzipped push at the end of its gzip stream and exits once
    the push is done, while the platform may still be writing the rest of the body (or its final
    empty chunk) into the backend's closed input. The answer must still be the backend's own; before,
    that write failed the request with a 500, which a busy machine hit on a plain `git pull` in the
    demo's notebook 02."""
    import gzip
    import hashlib
    import ssl

    import httpx

    alice = server.session(team["alice"])
    repo = alice.repositories.create("risk", "early-close")
    work = tmp_path / "work"
    sha = _push_a_commit(repo.clone_url, team["alice"], server.ca, work, "train.py", "Add training script")

    empty_pack = b"PACK" + (2).to_bytes(4, "big") + (0).to_bytes(4, "big")
    empty_pack += hashlib.sha1(empty_pack, usedforsecurity=False).digest()  # the pack format's checksum
    with httpx.Client(verify=ssl.create_default_context(cafile=server.ca), timeout=60) as client:
        for branch in ("copy-1", "copy-2", "copy-3"):
            push = _pkt(f"{'0' * 40} {sha} refs/heads/{branch}\0report-status\n") + b"0000" + empty_pack
            response = client.post(
                f"{repo.clone_url}/git-receive-pack",
                content=gzip.compress(push) + b"\0" * (4 << 20),  # what follows the gzip stream is never read
                headers={
                    "Authorization": f"Bearer {team['alice']}",
                    "Content-Type": "application/x-git-receive-pack-request",
                    "Content-Encoding": "gzip",
                },
            )
            assert response.status_code == 200, response.text[:500]
            assert f"ok refs/heads/{branch}".encode() in response.content
        assert client.get(f"{server.url}/healthz").status_code == 200
    listed = git(work, "ls-remote", repo.clone_url, token=team["alice"], ca=server.ca).stdout
    assert all(f"{sha}\trefs/heads/copy-{n}" in listed for n in (1, 2, 3))
