"""The KMS service: customer-managed team keys, their lifecycle, and envelope data keys.

Every call goes through the guard, so every use of a key (GenerateDataKey, Decrypt), every
rotation and every destruction is an audit event, as a managed KMS records them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
from collections.abc import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from strongroom.core.context import RequestContext
from strongroom.core.errors import ConfigurationError, Conflict, IntegrityError, InvalidInput, NotFound
from strongroom.core.names import Srn, check_name
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard
from strongroom.identity.db import TeamRow
from strongroom.kms.db import KeyAliasRow, KeyRow, KeyVersionRow
from strongroom.kms.keyring import Keyring
from strongroom.kms.models import DataKey, Key, KeyPolicy
from strongroom.policy.engine import PolicyEngine, Target, TeamFacts

DATA_KEY_BYTES = 32
KEY_ID = re.compile(r"key-[0-9a-f]{24}")
_BLOB_MAGIC = b"SRK\x01"
MAX_CONTEXT_ENTRIES = 16
MAX_POLICY_BYTES = 64 * 1024

EncryptionContext = Mapping[str, str]


def new_key_id() -> str:
    return "key-" + secrets.token_hex(12)


def check_context(context: EncryptionContext) -> dict[str, str]:
    """An encryption context is a small string-to-string map; it is authenticated, not secret."""
    if len(context) > MAX_CONTEXT_ENTRIES:
        raise InvalidInput(f"an encryption context has at most {MAX_CONTEXT_ENTRIES} entries", field="context")
    out: dict[str, str] = {}
    for name, value in context.items():
        if not isinstance(name, str) or not isinstance(value, str) or len(name) > 256 or len(value) > 2048:
            raise InvalidInput("encryption context entries are strings (names <= 256, values <= 2048)", field="context")
        out[name] = value
    return out


def _aad(key_id: str, version: int, context: EncryptionContext) -> bytes:
    body = {"kms": "strongroom/v1", "key": key_id, "version": version, "context": dict(context)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def encode_blob(key_id: str, version: int, wrapped: bytes) -> bytes:
    """The self-describing wrapped data key: magic, key id, key version, keyring ciphertext."""
    ident = key_id.encode()
    return _BLOB_MAGIC + bytes([len(ident)]) + ident + version.to_bytes(4, "big") + wrapped


def decode_blob(blob: bytes) -> tuple[str, int, bytes]:
    if len(blob) < 6 or blob[:4] != _BLOB_MAGIC:
        raise InvalidInput("this is not a Strongroom wrapped data key", field="ciphertext_blob")
    size = blob[4]
    key_id = blob[5 : 5 + size].decode("ascii", "replace")
    version = int.from_bytes(blob[5 + size : 9 + size], "big")
    if not KEY_ID.fullmatch(key_id) or len(blob) < 9 + size + 29:
        raise InvalidInput("the wrapped data key is truncated or malformed", field="ciphertext_blob")
    return key_id, version, blob[9 + size :]


def _state_error(row: KeyRow, label: str) -> Conflict:
    if row.state == "Disabled":
        how = "a key administrator can re-enable it (strongroom keys enable)"
        return Conflict(f"key {label} is disabled: {how}", field="key", key_state=row.state)
    if row.state == "PendingDeletion":
        when = row.deletion_date.isoformat() if row.deletion_date else "soon"
        return Conflict(
            f"key {label} is scheduled for deletion on {when}; a PlatformAdmin can cancel the deletion "
            "(strongroom keys cancel-deletion) to use it again",
            field="key",
            key_state=row.state,
        )
    return Conflict(
        f"key {label} was destroyed; data encrypted under it is unrecoverable", field="key", key_state=row.state
    )


class KmsService:
    def __init__(
        self,
        db: Database,
        guard: Guard,
        engine: PolicyEngine,
        keyrings: Mapping[str, Keyring],
        *,
        default_keyring: str = "local",
        deletion_min_wait: dt.timedelta = dt.timedelta(days=7),
        deletion_default_wait: dt.timedelta = dt.timedelta(days=30),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        if default_keyring not in keyrings:
            raise ConfigurationError(f"keyring {default_keyring!r} is not configured")
        self.db = db
        self.guard = guard
        self.engine = engine
        self.keyrings = dict(keyrings)
        self.default_keyring = default_keyring
        self.deletion_min_wait = deletion_min_wait
        self.deletion_default_wait = max(deletion_default_wait, deletion_min_wait)
        self.clock = clock

    def policy_facts(self, team: str) -> TeamFacts:
        """A policy source: the team's key policies (scope ``key/<id>``)."""
        with self.db.read() as session:
            rows = session.scalars(select(KeyRow).where(KeyRow.team == team, KeyRow.policy != ""))
            return TeamFacts(scoped={f"key/{row.id}": row.policy for row in rows})

    # -- lookups ----------------------------------------------------------------------------

    @staticmethod
    def _resolve(session: Session, team: str, ref: str) -> KeyRow | None:
        if ref.startswith("srn:"):
            srn = Srn.parse(ref, "key")
            if srn.kind != "key" or srn.team != team:
                return None
            ref = srn.name
        if KEY_ID.fullmatch(ref):
            row = session.get(KeyRow, ref)
            return row if row is not None and row.team == team else None
        alias = session.get(KeyAliasRow, (team, ref))
        return session.get(KeyRow, alias.key_id) if alias is not None else None

    def _target(self, team: str, ref: str, tags: Mapping[str, str] | None = None) -> Target:
        check_name(team, "team")
        with self.db.read() as session:
            row = self._resolve(session, team, ref)
            key_id = row.id if row is not None else ref
        return Target("key", team, key_id, tags=dict(tags or {}), policy_scope=f"key/{key_id}")

    def _load(self, session: Session, team: str, ref: str) -> KeyRow:
        row = self._resolve(session, team, ref)
        if row is None:
            raise NotFound(f"team {team} has no key {ref!r}", field="key")
        return row

    def resolve_id(self, team: str, ref: str) -> str | None:
        """The id of the key ``ref`` (alias, id or srn) names in ``team``, if any (no audit: no data)."""
        with self.db.read() as session:
            row = self._resolve(session, team, ref)
            return row.id if row is not None else None

    # -- lifecycle --------------------------------------------------------------------------

    def create_key(
        self,
        ctx: RequestContext,
        team: str,
        alias: str,
        description: str = "",
        *,
        keyring: str | None = None,
        rotation_period_days: int | None = None,
    ) -> Key:
        check_name(team, "team")
        self._check_alias(alias)
        ring = keyring or self.default_keyring
        if ring not in self.keyrings:
            raise InvalidInput(
                f"keyring {ring!r} is not configured; available: {', '.join(self.keyrings)}", field="keyring"
            )
        self._check_rotation(rotation_period_days)
        params = {
            "team": team,
            "alias": alias,
            "description": description,
            "keyring": ring,
            "rotation_period_days": rotation_period_days,
        }
        key_id = new_key_id()
        with self.guard.begin(ctx, "CreateKey", Target("key", team, alias), params=params) as call, call.transaction():
            if (replayed := call.replay(Key)) is not None:
                return replayed
            if call.session.get(TeamRow, team) is None:
                raise NotFound(f"team {team!r} does not exist", field="team")
            if call.session.get(KeyAliasRow, (team, alias)) is not None:
                raise Conflict(f"team {team} already has a key alias {alias!r}", field="alias")
            now = self.clock()
            row = KeyRow(
                id=key_id,
                team=team,
                description=description,
                keyring=ring,
                state="Enabled",
                primary_version=1,
                rotation_period_days=rotation_period_days,
                next_rotation_at=now + dt.timedelta(days=rotation_period_days) if rotation_period_days else None,
                deletion_date=None,
                policy="",
                created_at=now,
                created_by=ctx.principal.user,
            )
            row.versions.append(
                KeyVersionRow(
                    version=1, handle=self.keyrings[ring].create_version(key_id, 1), state="Enabled", created_at=now
                )
            )
            row.aliases.append(KeyAliasRow(team=team, alias=alias, created_at=now))
            call.session.add(row)
            call.session.flush()
            call.target = Target("key", team, key_id, policy_scope=f"key/{key_id}")
            call.emit("KeyCreated", key_id=key_id, alias=alias, keyring=ring)
            return call.result(row.to_entity())

    @staticmethod
    def _check_alias(alias: str) -> None:
        check_name(alias, "alias")
        if KEY_ID.fullmatch(alias) or alias.startswith("key-"):
            raise InvalidInput("aliases may not start with 'key-' (that prefix is for key ids)", field="alias")

    @staticmethod
    def _check_rotation(days: int | None) -> None:
        if days is not None and not 1 <= days <= 3650:
            raise InvalidInput(
                "rotation_period_days must be between 1 and 3650 (or null for no rotation)",
                field="rotation_period_days",
            )

    def describe_key(self, ctx: RequestContext, team: str, ref: str) -> Key:
        with self.guard.begin(ctx, "DescribeKey", self._target(team, ref)) as call, call.transaction(write=False):
            return self._load(call.session, team, ref).to_entity()

    def list_keys(self, ctx: RequestContext, team: str) -> list[Key]:
        check_name(team, "team")
        with self.guard.begin(ctx, "ListKeys", Target("key", team, "*")) as call, call.transaction(write=False):
            rows = call.session.scalars(select(KeyRow).where(KeyRow.team == team).order_by(KeyRow.created_at))
            return [r.to_entity() for r in rows]

    def set_enabled(self, ctx: RequestContext, team: str, ref: str, enabled: bool) -> Key:
        action = "EnableKey" if enabled else "DisableKey"
        with self.guard.begin(ctx, action, self._target(team, ref), params={"key": ref}) as call, call.transaction():
            row = self._load(call.session, team, ref)
            if row.state in ("PendingDeletion", "Destroyed"):
                raise _state_error(row, ref)
            row.state = "Enabled" if enabled else "Disabled"
            call.emit("KeyEnabled" if enabled else "KeyDisabled", key_id=row.id)
            return row.to_entity()

    def schedule_deletion(
        self, ctx: RequestContext, team: str, ref: str, waiting_period_seconds: int | None = None
    ) -> Key:
        wait = (
            dt.timedelta(seconds=waiting_period_seconds)
            if waiting_period_seconds is not None
            else self.deletion_default_wait
        )
        if wait < self.deletion_min_wait or wait > dt.timedelta(days=30) + self.deletion_min_wait:
            raise InvalidInput(
                f"the waiting period must be between {int(self.deletion_min_wait.total_seconds())} seconds and 30 days",
                field="waiting_period_seconds",
            )
        params = {"key": ref, "waiting_period_seconds": int(wait.total_seconds())}
        with (
            self.guard.begin(ctx, "ScheduleKeyDeletion", self._target(team, ref), params=params) as call,
            call.transaction(),
        ):
            row = self._load(call.session, team, ref)
            if row.state in ("PendingDeletion", "Destroyed"):
                raise _state_error(row, ref)
            row.state = "PendingDeletion"
            row.deletion_date = self.clock() + wait
            call.emit("KeyDeletionScheduled", key_id=row.id, deletion_date=row.deletion_date.isoformat())
            return row.to_entity()

    def cancel_deletion(self, ctx: RequestContext, team: str, ref: str) -> Key:
        """Stop a scheduled deletion; the key comes back Disabled, as in the managed KMS."""
        with (
            self.guard.begin(ctx, "CancelKeyDeletion", self._target(team, ref), params={"key": ref}) as call,
            call.transaction(),
        ):
            row = self._load(call.session, team, ref)
            if row.state != "PendingDeletion":
                raise Conflict(f"key {ref} is {row.state}, not pending deletion", field="key", key_state=row.state)
            row.state = "Disabled"
            row.deletion_date = None
            call.emit("KeyDeletionCancelled", key_id=row.id)
            return row.to_entity()

    def rotate(self, ctx: RequestContext, team: str, ref: str) -> Key:
        """A new key version becomes primary; older versions stay for decrypting older data."""
        with (
            self.guard.begin(ctx, "RotateKey", self._target(team, ref), params={"key": ref}) as call,
            call.transaction(),
        ):
            row = self._load(call.session, team, ref)
            if row.state != "Enabled":
                raise _state_error(row, ref)
            self._add_version(row)
            call.emit("KeyRotated", key_id=row.id, version=row.primary_version)
            return row.to_entity()

    def _add_version(self, row: KeyRow) -> None:
        now = self.clock()
        version = max(v.version for v in row.versions) + 1
        handle = self.keyrings[row.keyring].create_version(row.id, version)
        row.versions.append(KeyVersionRow(version=version, handle=handle, state="Enabled", created_at=now))
        row.primary_version = version
        if row.rotation_period_days:
            row.next_rotation_at = now + dt.timedelta(days=row.rotation_period_days)

    def set_rotation(self, ctx: RequestContext, team: str, ref: str, rotation_period_days: int | None) -> Key:
        self._check_rotation(rotation_period_days)
        params = {"key": ref, "rotation_period_days": rotation_period_days}
        with (
            self.guard.begin(ctx, "UpdateKeyRotation", self._target(team, ref), params=params) as call,
            call.transaction(),
        ):
            row = self._load(call.session, team, ref)
            row.rotation_period_days = rotation_period_days
            row.next_rotation_at = (
                self.clock() + dt.timedelta(days=rotation_period_days) if rotation_period_days else None
            )
            return row.to_entity()

    def create_alias(self, ctx: RequestContext, team: str, alias: str, ref: str) -> Key:
        self._check_alias(alias)
        with (
            self.guard.begin(ctx, "CreateAlias", self._target(team, ref), params={"alias": alias, "key": ref}) as call,
            call.transaction(),
        ):
            row = self._load(call.session, team, ref)
            if call.session.get(KeyAliasRow, (team, alias)) is not None:
                raise Conflict(f"team {team} already has a key alias {alias!r}", field="alias")
            if row.state == "Destroyed":
                raise _state_error(row, ref)
            row.aliases.append(KeyAliasRow(team=team, alias=alias, created_at=self.clock()))
            call.session.flush()
            return row.to_entity()

    def delete_alias(self, ctx: RequestContext, team: str, alias: str) -> None:
        with (
            self.guard.begin(ctx, "DeleteAlias", self._target(team, alias), params={"alias": alias}) as call,
            call.transaction(),
        ):
            row = call.session.get(KeyAliasRow, (team, alias))
            if row is None:
                raise NotFound(f"team {team} has no key alias {alias!r}", field="alias")
            call.session.delete(row)

    # -- key policies -----------------------------------------------------------------------

    def put_key_policy(self, ctx: RequestContext, team: str, ref: str, policy: str) -> KeyPolicy:
        if len(policy.encode()) > MAX_POLICY_BYTES:
            raise InvalidInput(f"policy text is over {MAX_POLICY_BYTES} bytes", field="policy")
        target = self._target(team, ref)
        with (
            self.guard.begin(ctx, "PutKeyPolicy", target, params={"key": ref, "policy": policy}) as call,
            call.transaction(),
        ):
            row = self._load(call.session, team, ref)
            if policy.strip():
                self.engine.validate_team_policy(team, f"key-{row.id}", policy)
            row.policy = policy if policy.strip() else ""
            call.changes_policy_facts(team)
            return KeyPolicy(key_id=row.id, policy=policy)

    def get_key_policy(self, ctx: RequestContext, team: str, ref: str) -> KeyPolicy:
        with self.guard.begin(ctx, "GetKeyPolicy", self._target(team, ref)) as call, call.transaction(write=False):
            row = self._load(call.session, team, ref)
            return KeyPolicy(key_id=row.id, policy=row.policy)

    # -- data keys --------------------------------------------------------------------------

    def generate_data_key(
        self,
        ctx: RequestContext,
        team: str,
        ref: str,
        context: EncryptionContext,
        *,
        tags: Mapping[str, str] | None = None,
    ) -> DataKey:
        """A fresh 256-bit data key and its copy wrapped under the key's primary version."""
        context = check_context(context)
        params = {"key": ref, "encryption_context": context}
        with (
            self.guard.begin(ctx, "GenerateDataKey", self._target(team, ref, tags), params=params) as call,
            call.transaction(write=False),
        ):
            row = self._load(call.session, team, ref)
            if row.state != "Enabled":
                raise _state_error(row, ref)
            version = next(v for v in row.versions if v.version == row.primary_version)
            if version.handle is None:
                raise _state_error(row, ref)
            plaintext = os.urandom(DATA_KEY_BYTES)
            wrapped = self.keyrings[row.keyring].wrap(
                version.handle, row.id, version.version, plaintext, _aad(row.id, version.version, context)
            )
            call.params["key_id"], call.params["key_version"] = row.id, version.version
            return DataKey(row.id, version.version, plaintext, encode_blob(row.id, version.version, wrapped))

    def decrypt(
        self,
        ctx: RequestContext,
        team: str,
        blob: bytes,
        context: EncryptionContext,
        *,
        tags: Mapping[str, str] | None = None,
    ) -> DataKey:
        """Unwrap a data key made by ``generate_data_key`` with the same encryption context."""
        context = check_context(context)
        key_id, version_number, wrapped = decode_blob(blob)
        params = {"key_id": key_id, "key_version": version_number, "encryption_context": context}
        with (
            self.guard.begin(ctx, "Decrypt", self._target(team, key_id, tags), params=params) as call,
            call.transaction(write=False),
        ):
            row = self._load(call.session, team, key_id)
            if row.state != "Enabled":
                raise _state_error(row, (row.aliases[0].alias if row.aliases else row.id))
            version = next((v for v in row.versions if v.version == version_number), None)
            if version is None:
                raise IntegrityError(f"key {key_id} has no version {version_number}: the wrapped data key is forged")
            if version.handle is None or version.state == "Destroyed":
                raise Conflict(
                    f"version {version_number} of key {key_id} was destroyed; data under it is unrecoverable",
                    field="key",
                    key_state="Destroyed",
                )
            plaintext = self.keyrings[row.keyring].unwrap(
                version.handle, row.id, version_number, wrapped, _aad(row.id, version_number, context)
            )
            return DataKey(row.id, version_number, plaintext, blob)

    # -- deadlines (the lifecycle worker) ---------------------------------------------------

    def run_deadlines(self) -> list[str]:
        """Destroy keys whose deletion date passed and rotate keys whose rotation is due.

        Runs as the platform (audited like any call); returns what it did, for logs and tests.
        """
        now = self.clock()
        ctx = RequestContext.system()
        done: list[str] = []
        with self.db.read() as session:
            due_delete = list(
                session.execute(
                    select(KeyRow.id, KeyRow.team).where(KeyRow.state == "PendingDeletion", KeyRow.deletion_date <= now)
                )
            )
            due_rotate = list(
                session.execute(
                    select(KeyRow.id, KeyRow.team).where(KeyRow.state == "Enabled", KeyRow.next_rotation_at <= now)
                )
            )
        for key_id, team in due_delete:
            self._destroy(ctx, team, key_id)
            done.append(f"destroyed {key_id}")
        for key_id, team in due_rotate:
            self.rotate(ctx, team, key_id)
            done.append(f"rotated {key_id}")
        return done

    def _destroy(self, ctx: RequestContext, team: str, key_id: str) -> None:
        with (
            self.guard.begin(ctx, "DestroyKey", self._target(team, key_id), params={"key_id": key_id}) as call,
            call.transaction(),
        ):
            row = self._load(call.session, team, key_id)
            if row.state != "PendingDeletion" or row.deletion_date is None or row.deletion_date > self.clock():
                return
            now = self.clock()
            for version in row.versions:
                if version.handle is not None:
                    self.keyrings[row.keyring].destroy(version.handle, row.id, version.version)
                version.handle = None
                version.state = "Destroyed"
                version.destroyed_at = now
            row.state = "Destroyed"
            row.aliases.clear()
            row.policy = ""
            call.emit("KeyDestroyed", key_id=row.id)
            call.changes_policy_facts(team)
