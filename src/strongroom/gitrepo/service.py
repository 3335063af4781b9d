"""Team repositories: create, list, describe, delete; commit lookup and listing; the
authorization of smart-HTTP pulls and pushes (served by `strongroom.api.streaming.git`).

A team's repositories live in one directory encrypted at rest under the team's key
(`strongroom.kms.volume`), mounted on first use by this platform process and unmounted at shutdown.
"""

from __future__ import annotations

import builtins
import datetime as dt
import fcntl
import logging
import re
import shutil
import subprocess
import threading
from pathlib import Path

from sqlalchemy import select

from strongroom.core.context import RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound, StrongroomError
from strongroom.core.names import check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.gitrepo.db import RepositoryRow
from strongroom.gitrepo.models import Commit, Repository
from strongroom.guard import Guard, Ticket
from strongroom.kms.service import KmsService
from strongroom.kms.volume import EncryptedVolume, mount_for_team
from strongroom.policy.engine import Target

log = logging.getLogger(__name__)
_SHA = re.compile(r"[0-9a-f]{4,64}")
_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
_FIELD_SEP = "\x1f"
_RECORD_SEP = "\x1e"
_FORMAT = _FIELD_SEP.join(["%H", "%T", "%P", "%an", "%ae", "%aI", "%cn", "%ce", "%cI", "%B"]) + _RECORD_SEP
_GIT_TIMEOUT = 30


def repository_target(team: str, name: str) -> Target:
    return Target("repository", team, name)


class GitError(StrongroomError):
    slug = "git-error"
    status = 500
    title = "Git failed"


def release_mounts(root: Path) -> None:
    """Unmount every team's repositories under ``root`` (no platform needed: the master of ``up --workers``)."""
    if root.is_dir():
        for team_dir in root.iterdir():
            if team_dir.is_dir():
                EncryptedVolume(team_dir).unmount()


class GitService:
    def __init__(self, db: Database, guard: Guard, kms: KmsService, root: Path) -> None:
        self.db = db
        self.guard = guard
        self.kms = kms
        self.root = root
        self._mounted: dict[str, EncryptedVolume] = {}
        self._lock = threading.Lock()
        # `up --workers N`: the API processes share each team's mount (the first to need it mounts
        # it, under a file lock; the others use it) and leave it mounted when they stop: the
        # master unmounts them once every process has ended.
        self.shared = False

    def team_root(self, team: str) -> Path:
        """The team's (mounted, decrypted) repository directory; mounts it on first use."""
        check_name(team, "team")
        with self._lock:
            volume = self._mounted.get(team)
            if volume is None or not volume.is_mounted():
                volume = EncryptedVolume(self.root / team)
                if self.shared:
                    self._mount_shared(team, volume)
                else:
                    mount_for_team(self.kms, team, volume, {"team": team, "purpose": "git-repositories"})
                self._mounted[team] = volume
        return volume.mountpoint

    def _mount_shared(self, team: str, volume: EncryptedVolume) -> None:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        with (self.root / f".{team}.mount-lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not volume.is_mounted():  # else another API process of this platform mounted it
                mount_for_team(self.kms, team, volume, {"team": team, "purpose": "git-repositories"})

    def path(self, team: str, name: str) -> Path:
        """The bare repository directory (names are validated, so this cannot escape the root)."""
        return self.team_root(team) / f"{check_name(name, 'repository')}.git"

    def release_stale_mounts(self) -> None:
        """Unmount what a platform process killed without a shutdown left mounted (``up`` start)."""
        release_mounts(self.root)

    def close(self) -> None:
        """Unmount every team's repositories (platform shutdown; shared mounts stay for the others)."""
        with self._lock:
            if self.shared:
                self._mounted.clear()
                return
            for volume in self._mounted.values():
                try:
                    volume.unmount()
                except StrongroomError:
                    log.exception("git: %s stays mounted", volume.mountpoint)
            self._mounted.clear()

    def _git(self, repo: Path, *args: str) -> str:
        done = subprocess.run(
            ["git", f"--git-dir={repo}", *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
            env={"PATH": "/usr/bin:/bin", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.root), "LANG": "C.UTF-8"},
        )
        if done.returncode != 0:
            raise GitError(f"git {args[0]} failed: {done.stderr.strip()[:500]}")
        return done.stdout

    # -- repositories -----------------------------------------------------------------------

    def create(self, ctx: RequestContext, team: str, name: str, description: str = "") -> Repository:
        check_name(team, "team")
        check_name(name, "name")
        params = {"team": team, "name": name, "description": description}
        target = repository_target(team, name)
        # Mount (KMS, a nested check) before the write transaction, which must not wait on another
        # writer; only once the call is allowed, so a denied request changes nothing.
        with self.guard.begin(ctx, "CreateRepository", target, params=params) as call:
            self.team_root(team)
            with call.transaction():
                if (replayed := call.replay(Repository)) is not None:
                    return replayed
                exists = call.session.scalars(
                    select(RepositoryRow).where(RepositoryRow.team == team, RepositoryRow.name == name)
                ).first()
                if exists is not None:
                    raise Conflict(f"team {team} already has a repository {name!r}", field="name")
                row = RepositoryRow(
                    team=team, name=name, description=description, created_by=ctx.principal.user, created_at=utcnow()
                )
                call.session.add(row)
                call.session.flush()
                path = self.path(team, name)
                if path.exists():  # left over from a crash between init and commit: start clean
                    shutil.rmtree(path)
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                subprocess.run(
                    ["git", "init", "--bare", "--quiet", "--initial-branch=main", str(path)],
                    check=True,
                    timeout=_GIT_TIMEOUT,
                    capture_output=True,
                )
                self._git(path, "config", "http.receivepack", "true")
                self._git(path, "config", "receive.denyNonFastForwards", "true")
                self._git(path, "config", "receive.denyDeletes", "true")
                call.emit("RepositoryCreated", repository=name)
                return call.result(row.to_entity())

    def list(self, ctx: RequestContext, team: str) -> builtins.list[Repository]:
        with (
            self.guard.begin(ctx, "ListRepositories", repository_target(team, "*")) as call,
            call.transaction(write=False),
        ):
            rows = call.session.scalars(
                select(RepositoryRow).where(RepositoryRow.team == team).order_by(RepositoryRow.name)
            )
            return [r.to_entity() for r in rows]

    def _row(self, session: object, team: str, name: str) -> RepositoryRow:
        from sqlalchemy.orm import Session

        assert isinstance(session, Session)
        row = session.scalars(
            select(RepositoryRow).where(RepositoryRow.team == team, RepositoryRow.name == name)
        ).first()
        if row is None:
            raise NotFound(f"team {team} has no repository {name!r}", field="repository")
        return row

    def describe(self, ctx: RequestContext, team: str, name: str) -> Repository:
        with (
            self.guard.begin(ctx, "DescribeRepository", repository_target(team, name)) as call,
            call.transaction(write=False),
        ):
            return self._row(call.session, team, name).to_entity()

    def delete(self, ctx: RequestContext, team: str, name: str) -> None:
        with (
            self.guard.begin(ctx, "DeleteRepository", repository_target(team, name), params={"name": name}) as call,
            call.transaction(),
        ):
            call.session.delete(self._row(call.session, team, name))
            call.emit("RepositoryDeleted", repository=name)
        shutil.rmtree(self.path(team, name), ignore_errors=True)

    # -- commits ----------------------------------------------------------------------------

    def get_commit(self, ctx: RequestContext, team: str, name: str, sha: str) -> Commit:
        """Author, email, date, message and parents of one commit (like GetCommit)."""
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise InvalidInput("commit id must be 4-64 lowercase hexadecimal characters", field="sha")
        params = {"repository": name, "sha": sha}
        with (
            self.guard.begin(ctx, "GetCommit", repository_target(team, name), params=params) as call,
            call.transaction(write=False),
        ):
            self._row(call.session, team, name)
        commits = self._log(team, name, sha, 1, single=True)
        if not commits:
            raise NotFound(f"repository {team}/{name} has no commit {sha}", field="sha")
        return commits[0]

    def list_commits(
        self, ctx: RequestContext, team: str, name: str, ref: str = "main", limit: int = 50
    ) -> builtins.list[Commit]:
        """Newest first, from ``ref`` (a branch, tag or commit id)."""
        if not isinstance(ref, str) or not _REF.fullmatch(ref) or ".." in ref:
            raise InvalidInput("ref must be a branch, tag or commit id", field="ref")
        if not 1 <= limit <= 1000:
            raise InvalidInput("limit must be between 1 and 1000", field="limit")
        params = {"repository": name, "ref": ref, "limit": limit}
        with (
            self.guard.begin(ctx, "ListCommits", repository_target(team, name), params=params) as call,
            call.transaction(write=False),
        ):
            self._row(call.session, team, name)
        return self._log(team, name, ref, limit)

    def _log(self, team: str, name: str, rev: str, limit: int, single: bool = False) -> builtins.list[Commit]:
        path = self.path(team, name)
        try:
            resolved = self._git(path, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
        except GitError:
            return []
        args = [
            "log",
            f"--format={_FORMAT}",
            f"--max-count={1 if single else limit}",
            "--end-of-options",
            resolved.strip(),
        ]
        out = self._git(path, *args)
        commits = []
        for record in out.split(_RECORD_SEP):
            record = record.strip("\n")
            if not record:
                continue
            sha, tree, parents, author, email, adate, committer, cemail, cdate, message = record.split(_FIELD_SEP)
            commits.append(
                Commit(
                    repository=f"{team}/{name}",
                    sha=sha,
                    tree=tree,
                    parents=parents.split() if parents else [],
                    author=author,
                    email=email,
                    date=dt.datetime.fromisoformat(adate),
                    committer=committer,
                    committer_email=cemail,
                    committed_date=dt.datetime.fromisoformat(cdate),
                    message=message.strip(),
                )
            )
        return commits

    # -- smart HTTP -------------------------------------------------------------------------

    def begin_transfer(self, ctx: RequestContext, team: str, name: str, push: bool) -> tuple[Ticket, Path]:
        """Authorize a pull or a push over smart HTTP and mount the team's repositories; the
        caller finishes the ticket when the transfer ends (``ticket.finish(error)``)."""
        action = "GitPush" if push else "GitPull"
        ticket = self.guard.begin(ctx, action, repository_target(team, name), params={"repository": name})
        with ticket.acting():
            with ticket.transaction(write=False) as call:
                self._row(call.session, team, name)
            return ticket, self.team_root(team)
