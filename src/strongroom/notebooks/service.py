"""Notebook service: notebook instances (created by the catalog's Notebook product), start and stop,
sign-in URLs and browser sessions, the proxy's per-request authorization, and reconciliation.

The database holds what each notebook *should* be (``desired``: running, stopped, deleted) and
what it was last seen to be (``status``). The notebook worker (``reconcile``) makes processes
match: it is the only code that starts or stops sandboxes, so a platform restart simply finds
notebooks that should run and have no process, kills any sandbox an earlier platform process
left behind, and starts them again on the same volume.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select, update

from strongroom.audit.events import Event
from strongroom.core.context import PLATFORM_ROLES, Grant, Principal, RequestContext
from strongroom.core.errors import Conflict, InvalidInput, NotFound, StrongroomError, Unauthenticated
from strongroom.core.names import check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard, Ticket
from strongroom.identity.service import IdentityService
from strongroom.kms.service import KmsService
from strongroom.kms.volume import EncryptedVolume, mount_for_team
from strongroom.notebooks.db import NotebookRow, PresignedUrlRow
from strongroom.notebooks.models import SIZES, Notebook, NotebookStatus, PresignedUrl
from strongroom.notebooks.sockets import OpenSocket, OpenSockets
from strongroom.notebooks.spawner import LaunchSpec, Live, Spawner
from strongroom.policy.engine import Target

log = logging.getLogger(__name__)
RUNTIMES = ("strongroom-python3",)
COOKIE_PREFIX = "nbs_"
_DECISION_CACHE_SECONDS = 2.0
# Revocation closes sockets at once (``on_identity_event``); this re-check is only the backstop
# for changes the event bus of this process never saw (another process writing the database).
_SOCKET_RECHECK_SECONDS = 10.0
REVOKING_EVENTS = frozenset({"ApiTokenRevoked", "UserDisabled", "TeamMemberRemoved"})

EnvironmentLookup = Callable[[str], dict[str, str]]


def notebook_target(team: str, name: str, owner: str = "") -> Target:
    return Target("notebook", team, name, owner=owner)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class NotebookService:
    def __init__(
        self,
        db: Database,
        guard: Guard,
        identity: IdentityService,
        kms: KmsService,
        spawner: Spawner,
        *,
        cookie_key: bytes,
        session_ttl: dt.timedelta,
        presigned_max: dt.timedelta,
        ready_timeout: float,
        environment: EnvironmentLookup,
    ) -> None:
        self.db = db
        self.guard = guard
        self.identity = identity
        self.kms = kms
        self.spawner = spawner
        self._cookie_key = cookie_key
        self.session_ttl = session_ttl
        self.presigned_max = presigned_max
        self.ready_timeout = ready_timeout
        self._environment = environment
        self._live: dict[str, Live] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.sockets = OpenSockets()
        self._sockets_checked = time.monotonic()
        self._wake: Callable[[], None] = lambda: None
        # In an API process of `up --workers N` that runs no background workers: it proxies to
        # notebooks another process runs (``route``), and starts none itself.
        self.proxy_only = False
        self._attached: dict[tuple[str, str], tuple[Live | None, float]] = {}

    def set_wake(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    # -- instances (the catalog's Notebook product calls these with its launch role) ---------

    def _row(self, session: object, team: str, name: str) -> NotebookRow:
        from sqlalchemy.orm import Session

        assert isinstance(session, Session)
        row = session.scalars(
            select(NotebookRow).where(NotebookRow.team == team, NotebookRow.live_name == name)
        ).first()
        if row is None:
            raise NotFound(f"team {team} has no notebook {name!r}", field="name")
        return row

    def notebook_id(self, team: str, name: str) -> str:
        """The id of the live notebook ``team/name`` ("" when there is none)."""
        notebook_id = self._by_name.get((team, name))
        if notebook_id:
            return notebook_id
        with self.db.read() as session:
            found = session.scalars(
                select(NotebookRow.id).where(NotebookRow.team == team, NotebookRow.live_name == name)
            ).first()
        return found or ""

    def owner_of(self, team: str, name: str) -> str:
        """The owner of a live notebook ("" when there is none): what policies check ownership against."""
        notebook_id = self._by_name.get((team, name))
        live = self._live.get(notebook_id) if notebook_id else None
        if live is not None:
            return live.owner
        with self.db.read() as session:
            owner = session.scalars(
                select(NotebookRow.owner).where(NotebookRow.team == team, NotebookRow.live_name == name)
            ).first()
        return owner or ""

    @staticmethod
    def check_settings(size: str, volume_gib: int, runtime: str) -> None:
        if size not in SIZES:
            raise InvalidInput(f"size {size!r} is not offered; choose one of {', '.join(SIZES)}", field="size")
        if not 1 <= volume_gib <= 1024:
            raise InvalidInput("volume size must be between 1 and 1024 GiB", field="volume_gib")
        if runtime not in RUNTIMES:
            raise InvalidInput(f"runtime {runtime!r} is unknown; runtimes: {', '.join(RUNTIMES)}", field="runtime")

    def create(
        self,
        ctx: RequestContext,
        team: str,
        name: str,
        *,
        owner: str,
        size: str = "small",
        volume_gib: int = 5,
        on_create: str = "",
        on_start: str = "",
        runtime: str = RUNTIMES[0],
        provisioned_product_id: str = "",
        role: str = "DataScientist",
    ) -> Notebook:
        """A notebook that should run; the worker starts it. Idempotent for the same provisioned product."""
        check_name(team, "team")
        check_name(name, "name")
        self.check_settings(size, volume_gib, runtime)
        params = {"team": team, "name": name, "owner": owner, "size": size, "volume_gib": volume_gib}
        with (
            self.guard.begin(ctx, "CreateNotebook", notebook_target(team, name, owner), params=params) as call,
            call.transaction(),
        ):
            existing = call.session.scalars(
                select(NotebookRow).where(NotebookRow.team == team, NotebookRow.live_name == name)
            ).first()
            if existing is not None:
                if provisioned_product_id and existing.provisioned_product_id == provisioned_product_id:
                    return existing.to_entity()
                raise Conflict(f"team {team} already has a notebook named {name!r}", field="name")
            now = utcnow()
            row = NotebookRow(
                id="nb-" + secrets.token_hex(5),
                team=team,
                name=name,
                live_name=name,
                owner=owner,
                role=role,
                status=NotebookStatus.PENDING.value,
                desired="running",
                size=size,
                volume_gib=volume_gib,
                runtime=runtime,
                on_create=on_create,
                on_start=on_start,
                provisioned_product_id=provisioned_product_id,
                reason="",
                generation=0,
                created_at=now,
                updated_at=now,
            )
            call.session.add(row)
            call.emit("NotebookCreated", notebook=name, owner=owner)
            entity = row.to_entity()
        self._wake()
        return entity

    def reconfigure(
        self, ctx: RequestContext, team: str, name: str, *, size: str, volume_gib: int, on_start: str, runtime: str
    ) -> Notebook:
        """New settings, applied by restarting the notebook (the volume stays)."""
        self.check_settings(size, volume_gib, runtime)
        params = {"size": size, "volume_gib": volume_gib, "runtime": runtime}
        with (
            self.guard.begin(ctx, "UpdateNotebook", notebook_target(team, name), params=params) as call,
            call.transaction(),
        ):
            row = self._row(call.session, team, name)
            changed = (row.size, row.volume_gib, row.on_start, row.runtime) != (size, volume_gib, on_start, runtime)
            if changed:
                row.size, row.volume_gib, row.on_start, row.runtime = size, volume_gib, on_start, runtime
                row.generation += 1  # the worker restarts a running notebook whose generation moved on
                row.status = NotebookStatus.PENDING.value if row.desired == "running" else row.status
                row.updated_at = utcnow()
            entity = row.to_entity()
        self._wake()
        return entity

    def delete(self, ctx: RequestContext, team: str, name: str) -> None:
        """Stop the notebook and delete its volume (the worker does it; ``describe`` shows Deleting)."""
        with (
            self.guard.begin(ctx, "DeleteNotebook", notebook_target(team, name), params={"name": name}) as call,
            call.transaction(),
        ):
            row = self._row(call.session, team, name)
            row.desired = "deleted"
            row.status = NotebookStatus.DELETING.value
            row.updated_at = utcnow()
            call.emit("NotebookDeleting", notebook=name)
        self._wake()

    def is_gone(self, team: str, name: str, notebook_id: str) -> bool:
        """True once a deleted notebook's process, volume and route are gone."""
        with self.db.read() as session:
            row = session.get(NotebookRow, notebook_id)
        return row is None or row.status == NotebookStatus.DELETED

    def status_of(self, notebook_id: str) -> Notebook | None:
        """The notebook's current state, without a call (for the catalog's readiness checks)."""
        with self.db.read() as session:
            row = session.get(NotebookRow, notebook_id)
        return row.to_entity() if row is not None else None

    # -- users ------------------------------------------------------------------------------

    def list(self, ctx: RequestContext, team: str) -> list[Notebook]:
        with self.guard.begin(ctx, "ListNotebooks", notebook_target(team, "*")) as call, call.transaction(write=False):
            rows = call.session.scalars(
                select(NotebookRow)
                .where(NotebookRow.team == team, NotebookRow.live_name.is_not(None))
                .order_by(NotebookRow.name)
            )
            return [r.to_entity() for r in rows]

    def describe(self, ctx: RequestContext, team: str, name: str) -> Notebook:
        target = notebook_target(team, name, self.owner_of(team, name))
        with self.guard.begin(ctx, "DescribeNotebook", target) as call, call.transaction(write=False):
            return self._row(call.session, team, name).to_entity()

    def set_running(self, ctx: RequestContext, team: str, name: str, running: bool) -> Notebook:
        """Start or stop; the volume is kept either way."""
        action = "StartNotebook" if running else "StopNotebook"
        target = notebook_target(team, name, self.owner_of(team, name))
        with self.guard.begin(ctx, action, target, params={"name": name}) as call, call.transaction():
            row = self._row(call.session, team, name)
            if row.desired == "deleted":
                raise Conflict(f"notebook {name} is being deleted", field="name")
            wanted = "running" if running else "stopped"
            if row.desired != wanted or (running and row.status == NotebookStatus.FAILED):
                row.desired = wanted
                row.status = (NotebookStatus.PENDING if running else NotebookStatus.STOPPING).value
                row.reason = f"{'start' if running else 'stop'} requested by {ctx.principal.user}"
                row.updated_at = utcnow()
                call.emit("NotebookStarting" if running else "NotebookStopping", notebook=name)
            entity = row.to_entity()
        self._wake()
        return entity

    # -- sign-in: pre-signed URLs and browser sessions -----------------------------------------

    def presign(self, ctx: RequestContext, team: str, name: str, expires_in: int = 300) -> PresignedUrl:
        """A single-use URL that signs a browser in to the notebook as the caller."""
        if not 10 <= expires_in <= self.presigned_max.total_seconds():
            raise InvalidInput(
                f"expires_in must be between 10 and {int(self.presigned_max.total_seconds())} seconds",
                field="expires_in",
            )
        target = notebook_target(team, name, self.owner_of(team, name))
        with (
            self.guard.begin(ctx, "CreatePresignedNotebookUrl", target, params={"expires_in": expires_in}) as call,
            call.transaction(),
        ):
            row = self._row(call.session, team, name)
            grant = call.decision.grant
            role = grant.role if grant is not None else ""
            token = "srp_" + secrets.token_urlsafe(32)
            now = utcnow()
            expires = now + dt.timedelta(seconds=expires_in)
            call.session.add(
                PresignedUrlRow(
                    token_hash=hashlib.sha256(token.encode()).hexdigest(),
                    notebook_id=row.id,
                    user=ctx.principal.user,
                    role=role,
                    team=team,
                    expires_at=expires,
                    created_at=now,
                    parent_token=ctx.principal.root_token,
                )
            )
            return PresignedUrl(url=f"/notebooks/{team}/{name}/_signin?token={token}", expires_at=expires)

    def redeem(self, ctx: RequestContext, team: str, name: str, token: str) -> str:
        """Use a pre-signed URL's token once; return the browser session (cookie value).

        Raises:
            Unauthenticated: the token is unknown, used, expired, or for another notebook.
        """
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = utcnow()
        with self.db.write() as session:
            row = session.get(PresignedUrlRow, digest)
            notebook = session.scalars(
                select(NotebookRow).where(NotebookRow.team == team, NotebookRow.live_name == name)
            ).first()
            valid = (
                row is not None
                and notebook is not None
                and row.notebook_id == notebook.id
                and row.used_at is None
                and row.expires_at > now
            )
            if valid:
                assert row is not None
                done = session.execute(
                    update(PresignedUrlRow)
                    .where(PresignedUrlRow.token_hash == digest, PresignedUrlRow.used_at.is_(None))
                    .values(used_at=now)
                )
                valid = done.rowcount == 1  # type: ignore[attr-defined]
        if not valid or row is None or notebook is None:
            raise Unauthenticated("this sign-in link is invalid, was already used, or expired; ask for a new one")
        principal = Principal(
            user=row.user,
            token_kind="session",
            grants=(Grant(row.role, row.team),),
            scope=notebook.id,
            parent_token=row.parent_token,
        )
        signed_in = RequestContext(
            principal=principal, request_id=ctx.request_id, source=ctx.source, user_agent=ctx.user_agent
        )
        target = notebook_target(team, name, notebook.owner)
        with (
            self.guard.begin(signed_in, "OpenNotebook", target, params={"via": "pre-signed URL"}) as call,
            call.transaction(write=False),
        ):
            if not self.identity.still_holds(row.user, row.role, row.team, row.parent_token):
                raise Unauthenticated(
                    f"{row.user} no longer holds {row.role} in {row.team}, is disabled, "
                    "or the token this link was made with was revoked"
                )
        return self.session_cookie(row.user, row.role, row.team, notebook.id, parent=row.parent_token)

    def session_cookie(self, user: str, role: str, team: str, notebook_id: str, *, parent: str = "") -> str:
        """A browser session for one notebook: HMAC-signed, short-lived, never an API credential.

        ``parent`` is the API token the session derives from: revoking it ends the session.
        """
        expires = int(time.time() + self.session_ttl.total_seconds())
        fields = {"u": user, "r": role, "t": team, "n": notebook_id, "e": expires, "p": parent}
        payload = json.dumps(fields, separators=(",", ":"))
        mac = hmac.new(self._cookie_key, payload.encode(), hashlib.sha256).digest()
        return f"{COOKIE_PREFIX}{_b64(payload.encode())}.{_b64(mac)}"

    def principal_from_cookie(self, value: str, notebook_id: str) -> tuple[Principal, float]:
        """The principal a notebook session cookie stands for, and when it expires (epoch seconds)."""
        if not value.startswith(COOKIE_PREFIX):
            raise Unauthenticated("not a notebook session")
        body, _, mac = value[len(COOKIE_PREFIX) :].partition(".")
        try:
            payload, tag = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            raise Unauthenticated("malformed notebook session") from None
        if not hmac.compare_digest(hmac.new(self._cookie_key, payload, hashlib.sha256).digest(), tag):
            raise Unauthenticated("notebook session signature is invalid")
        data = json.loads(payload)
        if data["n"] != notebook_id:
            raise Unauthenticated("this session belongs to another notebook")
        if data["e"] <= time.time():
            raise Unauthenticated("the notebook session expired; sign in again")
        parent = str(data.get("p", ""))
        if not self.identity.still_holds(data["u"], data["r"], data["t"], parent):
            raise Unauthenticated(
                f"{data['u']} no longer holds {data['r']} in {data['t']}, is disabled, "
                "or the token this session was made with was revoked"
            )
        principal = Principal(
            user=data["u"],
            token_kind="session",
            grants=(Grant(data["r"], data["t"]),),
            scope=notebook_id,
            parent_token=parent,
        )
        return principal, float(data["e"])

    # -- the proxy ----------------------------------------------------------------------------

    def route(self, team: str, name: str) -> Live | None:
        """The running, ready notebook at ``/notebooks/<team>/<name>/``, if any."""
        notebook_id = self._by_name.get((team, name))
        live = self._live.get(notebook_id) if notebook_id else None
        if live is not None and live.ready:
            return live
        return self._attached_route(team, name) if self.proxy_only else None

    def _attached_route(self, team: str, name: str) -> Live | None:
        """A notebook the process that runs the background workers started, found through the
        database (re-read at most every second) and reached on the socket that process's sandbox
        made: how every API process of ``up --workers N`` proxies to it."""
        now = time.monotonic()
        cached = self._attached.get((team, name))
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.db.read() as session:
            row = session.scalars(
                select(NotebookRow).where(NotebookRow.team == team, NotebookRow.live_name == name)
            ).first()
            found = (row.id, row.owner, row.generation) if row and row.status == NotebookStatus.IN_SERVICE else None
        live = cached[0] if cached is not None else None
        if live is not None and (found is None or (live.notebook_id, live.generation) != (found[0], found[2])):
            live.close()
            live = None
        if live is None and found is not None:
            live = self.spawner.attach(found[0], team, name, found[1], found[2])
        with self._lock:
            self._attached[(team, name)] = (live, now + 1.0)
        return live

    def reuse_decision(self, ctx: RequestContext, team: str, name: str, params: dict[str, str]) -> Ticket | None:
        """The ticket of a fresh allowed decision for this principal and live notebook, if one is cached.

        Touches only memory, so the proxy calls it on its event loop, and ``authorize_open`` (in a
        thread) only when it finds none.
        """
        notebook_id = self._by_name.get((team, name))
        live = self._live.get(notebook_id) if notebook_id else None
        if live is None:
            return None
        return self.guard.resume(ctx, "OpenNotebook", notebook_target(team, name, live.owner), params=params)

    def authorize_open(self, ctx: RequestContext, team: str, name: str, params: dict[str, str]) -> Ticket:
        """Decide one proxied request or WebSocket session afresh (finish the ticket to record it).

        A page load is dozens of requests by the same principal for the same notebook: an allowed
        decision is kept for ``_DECISION_CACHE_SECONDS`` and covers the reads that follow
        (``reuse_decision``) without an event each: the recorded one is the session's open event.
        Like the identity cache, a policy or membership change takes effect within seconds.
        Denials are never cached.
        """
        target = notebook_target(team, name, self.owner_of(team, name))
        return self.guard.begin(ctx, "OpenNotebook", target, params=params, cache_seconds=_DECISION_CACHE_SECONDS)

    def watch(self, ticket: Ticket, notebook_id: str, close: Callable[[str], None]) -> OpenSocket:
        """What an open WebSocket depends on: register it with ``self.sockets.holding(...)``.

        It stands while its user is enabled, still holds the grant it was allowed with, and the API
        token its credential derives from is neither revoked nor expired.
        """
        principal = ticket.ctx.principal
        grant = ticket.decision.grant
        grants = (grant,) if grant is not None else principal.grants
        root = principal.root_token

        def still_valid() -> bool:
            return any(self.identity.still_holds(principal.user, g.role, g.team, root) for g in grants)

        return OpenSocket(principal.user, notebook_id, still_valid, close)

    def on_identity_event(self, event: Event) -> None:
        """Revocation reaches open sockets and kernels (an event-bus subscriber).

        A token revoked, a user disabled or a membership removed: the user's open WebSockets are
        checked again and closed if their credentials no longer stand, and a notebook whose owner
        lost the role its kernels run as has its kernels and terminals ended.
        """
        if event.kind != "state" or event.name not in REVOKING_EVENTS:
            return
        user = str(event.data.get("user", ""))
        closed = self.sockets.close_invalid(user)
        if closed:
            log.info("notebooks: closed %d WebSocket(s) of %s after %s", closed, user, event.name)
        self._end_orphaned_kernels(user)

    def recheck_sockets(self) -> None:
        """The backstop: every few seconds, re-check every open socket and every notebook's owner."""
        if time.monotonic() - self._sockets_checked < _SOCKET_RECHECK_SECONDS:
            return
        self._sockets_checked = time.monotonic()
        self.sockets.close_invalid()
        self._end_orphaned_kernels(None)

    def _end_orphaned_kernels(self, owner: str | None) -> None:
        lives = [live for live in list(self._live.values()) if owner is None or live.owner == owner]
        if not lives:
            return
        ids = [live.notebook_id for live in lives]
        with self.db.read() as session:
            roles = dict(session.execute(select(NotebookRow.id, NotebookRow.role).where(NotebookRow.id.in_(ids))).all())
        for live in lives:
            role = roles.get(live.notebook_id, "DataScientist")
            team = "" if role in PLATFORM_ROLES else live.team
            if self.identity.still_holds(live.owner, role, team):
                continue
            reason = f"{live.owner} no longer holds {role}; the notebook's kernels ended"
            closed = self.sockets.close_notebook(live.notebook_id, reason)
            ended = self.spawner.end_sessions(live)
            if closed or ended:  # the backstop finds the same notebook again every few seconds
                log.warning(
                    "notebooks: %s: %s (%d WebSocket(s), %d kernel(s) and terminal(s))",
                    live.notebook_id,
                    reason,
                    closed,
                    ended,
                )

    def record_socket_close(
        self, ctx: RequestContext, team: str, name: str, params: dict[str, str], error: StrongroomError | None
    ) -> None:
        """The close event of a proxied WebSocket (bytes each way); decided afresh, so a caller
        whose access ended meanwhile is recorded as denied."""
        target = notebook_target(team, name, self.owner_of(team, name))
        self.guard.begin(ctx, "OpenNotebook", target, params=params).finish(error)

    # -- reconciliation (the notebook worker) -------------------------------------------------

    def reconcile(self) -> bool:
        """Make processes match the database; return True while something is changing."""
        with self.db.read() as session:
            rows = list(session.scalars(select(NotebookRow).where(NotebookRow.status != NotebookStatus.DELETED.value)))
        busy = False
        seen = set()
        for row in rows:
            seen.add(row.id)
            try:
                busy = self._reconcile_one(row) or busy
            except Exception as exc:
                log.exception("notebooks: reconciling %s failed", row.id)
                self._mark(row.id, NotebookStatus.FAILED, f"the platform could not manage this notebook: {exc}")
        for notebook_id in list(self._live):
            if notebook_id not in seen:
                self._forget(notebook_id, stop=True)
        return busy

    def _reconcile_one(self, row: NotebookRow) -> bool:
        live = self._live.get(row.id)
        if live is not None and live.generation != row.generation and row.desired == "running":
            self._forget(row.id, stop=True, reason="restarting with new settings")
            return True
        if row.desired == "running":
            if live is None:
                if row.status == NotebookStatus.FAILED:
                    return False
                if self.spawner.kill_leftover(row.id, row.host_pid):
                    log.warning("notebooks: killed %s left running by an earlier platform process", row.id)
                self._start(row)
                return True
            if not live.process.running():
                result = live.process.wait()
                tail = " | ".join(list(live.tail)[-5:])
                self._forget(row.id)
                self._mark(
                    row.id, NotebookStatus.FAILED, f"the notebook server ended: {result.reason}. Last output: {tail}"
                )
                return False
            if not live.ready:
                if self.spawner.probe(live):
                    live.ready = True
                    with self._lock:
                        self._by_name[(row.team, row.name)] = row.id
                    self._mark(row.id, NotebookStatus.IN_SERVICE, "", started=True)
                    return False
                if (utcnow() - live.process.started_at).total_seconds() > self.ready_timeout:
                    tail = " | ".join(list(live.tail)[-5:])
                    self._forget(row.id, stop=True, reason="did not get ready in time")
                    self._mark(
                        row.id,
                        NotebookStatus.FAILED,
                        f"Jupyter did not answer within {self.ready_timeout:g} s. Last output: {tail}",
                    )
                    return False
                return True
            self._refresh_token(row, live)
            return False
        # stopped or deleted: no process may remain
        if live is not None:
            self._forget(row.id, stop=True, reason=f"{row.desired} on request")
            return True
        self.spawner.cleanup(row.id)
        volume = self._volume(row.team, row.name, row.id)
        volume.unmount()  # a mount an earlier platform process left behind
        if row.desired == "stopped" and row.status != NotebookStatus.STOPPED:
            self._mark(row.id, NotebookStatus.STOPPED, row.reason or "stopped")
        if row.desired == "deleted":
            volume.remove()
            with self.db.write() as session:
                fresh = session.get(NotebookRow, row.id)
                if fresh is not None:
                    fresh.status = NotebookStatus.DELETED.value
                    fresh.live_name = None
                    fresh.host_pid = None
                    fresh.updated_at = utcnow()
        return False

    def _execution_token(self, row: NotebookRow) -> str:
        # A team notebook acts as its owner's DataScientist role in the team; an operator's
        # notebook acts with the owner's platform-wide role (which has no team).
        team = "" if row.role in PLATFORM_ROLES else row.team
        issued = self.identity.create_execution_token(
            RequestContext.system(),
            row.owner,
            row.role,
            team,
            f"srn:strongroom:{row.team}:notebook/{row.name}",
        )
        return issued.token

    def _volume(self, team: str, name: str, notebook_id: str) -> EncryptedVolume:
        return EncryptedVolume(self.spawner.volume(team, name, notebook_id))

    def _mount_volume(self, row: NotebookRow) -> None:
        context = {"team": row.team, "notebook": row.id, "purpose": "notebook-volume"}
        mount_for_team(self.kms, row.team, self._volume(row.team, row.name, row.id), context)

    def _start(self, row: NotebookRow) -> None:
        try:
            token = self._execution_token(row)
        except Exception as exc:
            self._mark(row.id, NotebookStatus.FAILED, f"no execution role for {row.owner}: {exc}")
            return
        try:
            self._mount_volume(row)
        except StrongroomError as exc:
            self._mark(row.id, NotebookStatus.FAILED, f"the notebook's encrypted volume: {exc.detail}")
            return
        spec = LaunchSpec(
            notebook_id=row.id,
            team=row.team,
            name=row.name,
            owner=row.owner,
            size=row.size,
            volume_gib=row.volume_gib,
            on_create=row.on_create,
            on_start=row.on_start,
            environment=self._environment(row.team),
            role=row.role,
        )
        live = self.spawner.start(spec, row.generation, token)
        live.token_written_at = time.monotonic()
        live.process._child_ready.wait(5)
        with self._lock:
            self._live[row.id] = live
        with self.db.write() as session:
            fresh = session.get(NotebookRow, row.id)
            if fresh is not None:
                fresh.status = NotebookStatus.PENDING.value
                fresh.host_pid = live.process.sandbox_pid
                fresh.reason = "starting"
                fresh.updated_at = utcnow()

    def _refresh_token(self, row: NotebookRow, live: Live) -> None:
        ttl = self.identity.execution_ttl.total_seconds()
        if time.monotonic() - live.token_written_at < ttl / 3:
            return
        try:
            self.spawner.write_token(live, self._execution_token(row))
            live.token_written_at = time.monotonic()
        except Exception:
            log.exception("notebooks: could not refresh the execution token of %s", row.id)

    def _forget(self, notebook_id: str, *, stop: bool = False, reason: str = "stopped") -> None:
        with self._lock:
            live = self._live.pop(notebook_id, None)
            for key, value in list(self._by_name.items()):
                if value == notebook_id:
                    del self._by_name[key]
        if live is None:
            return
        if stop and live.process.running():
            self.spawner.stop(live, reason)
            try:
                live.process.wait(self.spawner_grace() + 15)
            except TimeoutError:
                log.error("notebooks: %s did not stop", notebook_id)
        live.close()
        self.spawner.cleanup(notebook_id)
        try:
            self._volume(live.team, live.name, notebook_id).unmount()
        except StrongroomError:
            log.exception("notebooks: the volume of %s stays mounted", notebook_id)

    def spawner_grace(self) -> float:
        return float(getattr(self.spawner, "stop_grace_seconds", 10.0))

    def _mark(self, notebook_id: str, status: NotebookStatus, reason: str, *, started: bool = False) -> None:
        with self.db.write() as session:
            row = session.get(NotebookRow, notebook_id)
            if row is None:
                return
            row.status = status.value
            row.reason = reason[:4000]
            row.updated_at = utcnow()
            if started:
                row.started_at = row.updated_at
            if status in (NotebookStatus.STOPPED, NotebookStatus.FAILED):
                row.host_pid = None

    def shutdown(self) -> None:
        """Stop every notebook this process runs (platform shutdown); they restart with the platform."""
        for notebook_id in list(self._live):
            self._forget(notebook_id, stop=True, reason="the platform is shutting down")
        self.spawner.close()

    def volume_path(self, team: str, name: str) -> Path:
        """The host directory of a live notebook's home volume."""
        with self.db.read() as session:
            row = self._row(session, team, name)
            return self.spawner.volume(row.team, row.name, row.id)
