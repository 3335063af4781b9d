"""Git lineage from a real working tree: commit metadata, dirty flag, diff hash, credentials."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from strongroom.core.errors import InvalidInput, NotFound
from strongroom.lineage.git import LocalRepositoryResolver, capture, strip_credentials


def _git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "Alice",
        "GIT_AUTHOR_EMAIL": "alice@example.org",
        "GIT_COMMITTER_NAME": "Alice",
        "GIT_COMMITTER_EMAIL": "alice@example.org",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "credit"
    root.mkdir()
    _git(root, "init", "-q", "-b", "main")
    (root / "train.py").write_text("print('train')\n")
    _git(root, "add", "train.py")
    _git(root, "commit", "-q", "-m", "first model\n\nwith a body")
    _git(root, "remote", "add", "origin", "https://alice:s3cret-token@git.example.org/risk/credit.git?x=1")
    return root


def test_clean_tree(repo: Path) -> None:
    state = capture(repo)
    assert state is not None
    assert state.commit == _git(repo, "rev-parse", "HEAD").strip()
    assert state.branch == "main"
    assert state.author == "Alice <alice@example.org>"
    assert state.message == "first model\n\nwith a body"
    assert state.date.startswith("20")
    assert state.dirty is False and state.diff_sha256 == ""
    assert state.repository == "https://git.example.org/risk/credit.git"
    assert "s3cret" not in state.model_dump_json()


def test_dirty_tree_is_flagged_with_the_hash_of_the_diff(repo: Path) -> None:
    (repo / "train.py").write_text("print('train harder')\n")
    state = capture(repo / ".")
    diff = subprocess.run(
        ["git", "diff", "HEAD", "--no-ext-diff", "--no-textconv", "--no-color", "--binary"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    assert state is not None and state.dirty is True
    assert state.diff_sha256 == hashlib.sha256(diff).hexdigest()
    (repo / "train.py").write_text("print('train')\n")
    (repo / "notes.txt").write_text("untracked\n")
    untracked = capture(repo)
    assert untracked is not None and untracked.dirty is True and untracked.diff_sha256 == ""


def test_outside_a_working_tree(tmp_path: Path) -> None:
    assert capture(tmp_path) is None


def test_local_resolver(repo: Path) -> None:
    head = _git(repo, "rev-parse", "HEAD").strip()
    commit = LocalRepositoryResolver().resolve(str(repo), head[:10])
    assert commit.commit == head and commit.branch == "main" and commit.message.startswith("first model")
    assert commit.repository == "https://git.example.org/risk/credit.git"
    with pytest.raises(NotFound):
        LocalRepositoryResolver(repo).resolve("anything", "0" * 40)
    with pytest.raises(InvalidInput):
        LocalRepositoryResolver().resolve(str(repo), "HEAD; rm -rf /")
    with pytest.raises(InvalidInput):
        LocalRepositoryResolver().resolve("https://git.example.org/risk/credit.git", head)


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://user:tok@host/r.git", "https://host/r.git"),
        ("https://host/r.git?access_token=abc", "https://host/r.git"),
        ("ssh://git@host:22/r.git", "ssh://host:22/r.git"),
        ("git@host:org/r.git", "git@host:org/r.git"),
    ],
)
def test_strip_credentials(url: str, clean: str) -> None:
    assert strip_credentials(url) == clean


def test_gitinfo_is_the_jobs_sdk_provenance(repo: Path, tmp_path: Path) -> None:
    from strongroom.lineage import gitinfo

    found = gitinfo.capture(repo)
    assert found is not None and found["commit"] == _git(repo, "rev-parse", "HEAD").strip()
    assert found["repository"] == "https://git.example.org/risk/credit.git" and found["dirty"] is False
    assert gitinfo.capture(tmp_path / "credit" / "..") is None
