"""Git lineage: the state of the working tree work is submitted from, and commit resolvers.

``capture()`` runs the ``git`` CLI (local commands only, with a timeout, never the network)
and returns the repository (remote URL with credentials stripped), commit, branch, author,
date, message, whether the tree is dirty, and the SHA-256 of ``git diff HEAD`` (the
uncommitted changes to tracked files; untracked files make the tree dirty but are not hashed).

``CommitResolver`` looks a commit up by repository and sha. ``LocalRepositoryResolver`` reads
a local clone; the team git service's commit-lookup API will implement the same interface.
"""

from __future__ import annotations

import abc
import hashlib
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from strongroom.core.errors import InvalidInput, NotFound
from strongroom.lineage.models import GitCommit

GIT_TIMEOUT = 10.0
# Settings that could make a read-only git command run programs from the repository's config.
_SAFE = ("-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null")


def strip_credentials(url: str) -> str:
    """``https://user:token@host/repo.git?x=1`` -> ``https://host/repo.git`` (scp-style URLs kept)."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _git(cwd: Path, *args: str, binary: bool = False) -> bytes:
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *_SAFE, *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return done.stdout if binary else done.stdout.strip()


def _text(cwd: Path, *args: str) -> str:
    return _git(cwd, *args).decode(errors="replace")


def _commit_fields(cwd: Path, sha: str) -> tuple[str, str, str, str]:
    raw = _text(cwd, "log", "-1", "--no-show-signature", "--format=%H%x00%an <%ae>%x00%aI%x00%B", sha, "--")
    full, author, date, message = [*raw.split("\x00", 3), "", "", ""][:4]
    return full, author, date, message.strip()


def _repository(cwd: Path, toplevel: Path) -> str:
    try:
        remote = _text(cwd, "remote", "get-url", "origin")
    except RuntimeError:
        remote = ""
    return strip_credentials(remote) if remote else toplevel.as_uri()


def capture(path: str | os.PathLike[str] = ".") -> GitCommit | None:
    """The git state of the working tree containing ``path``; ``None`` outside a git tree
    (or when git is missing or does not answer in time)."""
    cwd = Path(path).resolve()
    try:
        toplevel = Path(_text(cwd, "rev-parse", "--show-toplevel"))
        head = _text(cwd, "rev-parse", "--verify", "HEAD")
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        return None
    try:
        branch = _text(cwd, "rev-parse", "--abbrev-ref", "HEAD")
        _, author, date, message = _commit_fields(cwd, head)
        status = _git(cwd, "status", "--porcelain", "--untracked-files=normal")
        diff = _git(cwd, "diff", "HEAD", "--no-ext-diff", "--no-textconv", "--no-color", "--binary", binary=True)
        repository = _repository(cwd, toplevel)
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        return None
    return GitCommit(
        repository=repository,
        commit=head,
        branch="" if branch == "HEAD" else branch,
        author=author[:256],
        date=date,
        message=message[:4096],
        dirty=bool(status),
        diff_sha256=hashlib.sha256(diff).hexdigest() if diff else "",
    )


class CommitResolver(abc.ABC):
    """Looks up a commit's metadata by repository and sha."""

    @abc.abstractmethod
    def resolve(self, repository: str, sha: str) -> GitCommit:
        """The commit ``sha`` of ``repository``.

        Raises:
            NotFound: the repository has no such commit.
            InvalidInput: this resolver cannot read ``repository``.
        """


class LocalRepositoryResolver(CommitResolver):
    """Resolves commits from a local clone (``repository`` is its path, or matches its remote)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).resolve() if path is not None else None

    def resolve(self, repository: str, sha: str) -> GitCommit:
        where = self.path or Path(repository).expanduser().resolve()
        if not where.is_dir():
            raise InvalidInput(
                f"{repository!r} is not a local repository; pass the path of a clone (commits of the team's "
                "git service are resolved by its commit-lookup API)",
                field="repo",
            )
        if not sha or len(sha) > 64 or any(c not in "0123456789abcdefABCDEF" for c in sha):
            raise InvalidInput(f"{sha!r} is not a commit sha (hex digits)", field="sha")
        try:
            toplevel = Path(_text(where, "rev-parse", "--show-toplevel"))
            full, author, date, message = _commit_fields(where, sha + "^{commit}")
            branch_list = _text(where, "branch", "--format=%(refname:short)", "--contains", full)
        except RuntimeError as exc:
            raise NotFound(f"{repository} has no commit {sha}: {exc}", field="sha") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InvalidInput(f"git could not read {repository}: {exc}", field="repo") from exc
        branches = [b for b in branch_list.splitlines() if b and not b.startswith("(")]
        return GitCommit(
            repository=_repository(where, toplevel),
            commit=full,
            branch=branches[0] if branches else "",
            author=author[:256],
            date=date,
            message=message[:4096],
        )
