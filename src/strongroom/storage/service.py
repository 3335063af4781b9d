"""The storage service: team buckets of versioned, envelope-encrypted objects.

Each object version gets a fresh data key from the team's KMS key (GenerateDataKey, audited),
its bytes are encrypted as a Tink-compatible AES-256-GCM-HKDF stream bound to the encryption
context ``{team, bucket, key, version}``, and written to the blob store. Only then does a short
write transaction (the guarded, audited PutObject) make the version visible. Reads are
authorized against the object's tags (so ``shared=true`` can open a read to other teams),
unwrap the data key (Decrypt, audited) and decrypt only the segments a range needs.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from strongroom.core.context import PLATFORM_ROLES, RequestContext
from strongroom.core.errors import Conflict, IntegrityError, InvalidInput, NotFound
from strongroom.db.base import utcnow
from strongroom.db.engine import Database
from strongroom.guard import Guard, Ticket
from strongroom.identity.db import TeamRow
from strongroom.kms.service import KmsService
from strongroom.kms.streaming import HashingPipe, Layout, StreamingAead
from strongroom.policy.engine import PolicyEngine, Target, TeamFacts
from strongroom.storage.blobstore import BlobStore
from strongroom.storage.db import BucketRow, ObjectVersionRow
from strongroom.storage.keys import check_bucket_name, check_object_key, check_prefix, check_tags
from strongroom.storage.models import (
    Bucket,
    BucketPolicy,
    ObjectListing,
    ObjectTags,
    ObjectVersion,
    VersionListing,
)

log = logging.getLogger(__name__)
MAX_POLICY_BYTES = 64 * 1024
MAX_LIST = 1000
LAYOUT = Layout()


def encryption_context(team: str, bucket: str, key: str, version_id: str) -> dict[str, str]:
    """What every object's ciphertext and wrapped data key are bound to."""
    return {"team": team, "bucket": bucket, "key": key, "version": version_id}


def associated_data(context: Mapping[str, str]) -> bytes:
    body = json.dumps(dict(context), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return b"strongroom/object/v1\x00" + body.encode()


@dataclass
class ObjectStream:
    """An object version being read: its metadata, the byte range and the plaintext chunks."""

    meta: ObjectVersion
    start: int
    end: int
    chunks: Iterator[bytes]

    @property
    def length(self) -> int:
        return self.end - self.start

    def read(self) -> bytes:
        return b"".join(self.chunks)

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


def _token(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _untoken(token: str | None) -> Any:
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("page_token is not one this API returned", field="page_token") from exc


def _missing_bucket(name: str) -> NotFound:
    """What a missing bucket answers, and so also a bucket of a team the caller is not in."""
    return NotFound(f"bucket {name!r} does not exist", field="bucket")


class StorageService:
    def __init__(self, db: Database, guard: Guard, engine: PolicyEngine, kms: KmsService, blobs: BlobStore) -> None:
        self.db = db
        self.guard = guard
        self.engine = engine
        self.kms = kms
        self.blobs = blobs
        # Keys compare by code point on every backend (PostgreSQL's default collation would not).
        self._key_col: Any = ObjectVersionRow.key if db.is_sqlite else ObjectVersionRow.key.collate("C")

    def policy_facts(self, team: str) -> TeamFacts:
        """A policy source: the team's bucket policies (scope ``bucket/<name>``)."""
        with self.db.read() as session:
            rows = session.scalars(select(BucketRow).where(BucketRow.team == team, BucketRow.policy != ""))
            return TeamFacts(scoped={f"bucket/{row.name}": row.policy for row in rows})

    # -- targets ----------------------------------------------------------------------------

    def _bucket_row(self, name: str) -> BucketRow | None:
        with self.db.read() as session:
            return session.scalars(select(BucketRow).where(BucketRow.name == name)).first()

    @staticmethod
    def _caller_team(ctx: RequestContext) -> str:
        teams = sorted({g.team for g in ctx.principal.grants if g.team})
        return teams[0] if teams else ""

    def _bucket_target(self, ctx: RequestContext, name: str) -> tuple[Target, BucketRow | None]:
        """The bucket as the policy engine sees it. A bucket that does not exist is looked for in
        the caller's own team, so the call is authorized, audited, and answered "not found"."""
        check_bucket_name(name)
        row = self._bucket_row(name)
        team = row.team if row is not None else self._caller_team(ctx)
        return Target("bucket", team, name, policy_scope=f"bucket/{name}"), row

    @staticmethod
    def _object_target(bucket: BucketRow | Target, key: str, tags: Mapping[str, str] | None) -> Target:
        team = bucket.team
        name = bucket.name
        return Target("object", team, f"{name}/{key}", tags=dict(tags or {}), policy_scope=f"bucket/{name}")

    @staticmethod
    def _require_bucket(session: Session, name: str) -> BucketRow:
        row = session.scalars(select(BucketRow).where(BucketRow.name == name)).first()
        if row is None:
            raise _missing_bucket(name)
        return row

    # -- buckets ----------------------------------------------------------------------------

    def create_bucket(
        self, ctx: RequestContext, team: str, name: str, *, key: str | None = None, description: str = ""
    ) -> Bucket:
        """A bucket of ``team`` whose objects are encrypted under ``key`` (alias or id; default:
        the team key aliased ``default``)."""
        check_bucket_name(name, "name")
        key_ref = key or "default"
        params = {"team": team, "name": name, "key": key_ref, "description": description}
        target = Target("bucket", team, name, policy_scope=f"bucket/{name}")
        key_id = self.kms.resolve_id(team, key_ref)
        with self.guard.begin(ctx, "CreateBucket", target, params=params) as call, call.transaction():
            if (replayed := call.replay(Bucket)) is not None:
                return replayed
            if call.session.get(TeamRow, team) is None:
                raise NotFound(f"team {team!r} does not exist", field="team")
            if key_id is None:
                hint = "" if key else " (no key given, and the team has no key aliased 'default')"
                raise InvalidInput(f"team {team} has no key {key_ref!r}{hint}; create one first", field="key")
            if call.session.scalars(select(BucketRow).where(BucketRow.name == name)).first() is not None:
                raise Conflict(f"a bucket named {name!r} already exists; bucket names are platform-wide", field="name")
            row = BucketRow(
                id=secrets.token_hex(16),
                name=name,
                team=team,
                default_key_id=key_id,
                description=description,
                policy="",
                created_at=utcnow(),
                created_by=ctx.principal.user,
            )
            call.session.add(row)
            call.emit("BucketCreated", bucket=name, key_id=key_id)
            return call.result(row.to_entity())

    def list_buckets(self, ctx: RequestContext, team: str | None = None) -> list[Bucket]:
        """Buckets of ``team``; without one, of every team the caller holds a role in (platform
        roles: all buckets)."""
        if team:
            target = Target("bucket", team, "*")
        elif any(g.role in PLATFORM_ROLES for g in ctx.principal.grants):
            target = Target("bucket", "", "*")
        else:
            target = Target("bucket", self._caller_team(ctx), "*")
        with self.guard.begin(ctx, "ListBuckets", target, params={"team": team}) as call, call.transaction(write=False):
            query = select(BucketRow).order_by(BucketRow.name)
            if target.team:
                query = query.where(BucketRow.team == target.team)
            return [r.to_entity() for r in call.session.scalars(query)]

    def describe_bucket(self, ctx: RequestContext, name: str) -> Bucket:
        target, _ = self._bucket_target(ctx, name)
        with (
            self.guard.begin(ctx, "DescribeBucket", target, unseen=_missing_bucket(name)) as call,
            call.transaction(write=False),
        ):
            return self._require_bucket(call.session, name).to_entity()

    def delete_bucket(self, ctx: RequestContext, name: str) -> None:
        target, _ = self._bucket_target(ctx, name)
        with (
            self.guard.begin(ctx, "DeleteBucket", target, params={"name": name}, unseen=_missing_bucket(name)) as call,
            call.transaction(),
        ):
            row = self._require_bucket(call.session, name)
            exists = call.session.scalars(
                select(ObjectVersionRow.id).where(ObjectVersionRow.bucket_id == row.id).limit(1)
            ).first()
            if exists is not None:
                raise Conflict(f"bucket {name} still holds object versions; delete every version first", field="name")
            call.session.delete(row)
            call.emit("BucketDeleted", bucket=name)
            call.changes_policy_facts(row.team)

    def put_bucket_policy(self, ctx: RequestContext, name: str, policy: str) -> BucketPolicy:
        if len(policy.encode()) > MAX_POLICY_BYTES:
            raise InvalidInput(f"policy text is over {MAX_POLICY_BYTES} bytes", field="policy")
        target, _ = self._bucket_target(ctx, name)
        action = "PutBucketPolicy" if policy.strip() else "DeleteBucketPolicy"
        with (
            self.guard.begin(
                ctx, action, target, params={"name": name, "policy": policy}, unseen=_missing_bucket(name)
            ) as call,
            call.transaction(),
        ):
            row = self._require_bucket(call.session, name)
            if policy.strip():
                self.engine.validate_team_policy(row.team, f"bucket-{name}", policy)
            row.policy = policy if policy.strip() else ""
            call.emit("BucketPolicyChanged", bucket=name)
            call.changes_policy_facts(row.team)
        return BucketPolicy(bucket=name, policy=policy if policy.strip() else "")

    def get_bucket_policy(self, ctx: RequestContext, name: str) -> BucketPolicy:
        target, _ = self._bucket_target(ctx, name)
        with (
            self.guard.begin(ctx, "GetBucketPolicy", target, unseen=_missing_bucket(name)) as call,
            call.transaction(write=False),
        ):
            return BucketPolicy(bucket=name, policy=self._require_bucket(call.session, name).policy)

    # -- writing objects --------------------------------------------------------------------

    def put_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        body: Iterable[bytes],
        *,
        tags: Mapping[str, str] | None = None,
        content_type: str = "application/octet-stream",
        kms_key: str | None = None,
        expected_sha256: str | None = None,
        action: str = "PutObject",
        extra_params: Mapping[str, Any] | None = None,
    ) -> ObjectVersion:
        """Stream ``body`` into a new version of ``bucket/key``; memory stays at a few MiB.

        The version becomes visible only when every byte is encrypted, written and synced, in
        one short transaction; until then (and after any failure or crash) readers see the
        previous version.
        """
        key = check_object_key(key)
        tags = check_tags(dict(tags) if tags is not None else None)
        if expected_sha256 is not None and (len(expected_sha256) != 64 or not _is_hex(expected_sha256)):
            raise InvalidInput("sha256 must be 64 hexadecimal characters", field="sha256")
        if len(content_type) > 256:
            raise InvalidInput("content type is at most 256 characters", field="content_type")
        bucket_target, bucket_row = self._bucket_target(ctx, bucket)
        target = self._object_target(bucket_target, key, tags)
        params: dict[str, Any] = {"bucket": bucket, "key": key, "tags": tags, **(extra_params or {})}
        with self.guard.begin(ctx, action, target, params=params, unseen=_missing_bucket(bucket)) as ticket:
            if bucket_row is None:
                raise _missing_bucket(bucket)
            return self._store(ctx, ticket, bucket_row, key, body, tags, content_type, kms_key, expected_sha256)

    def _store(
        self,
        ctx: RequestContext,
        ticket: Ticket,
        bucket_row: BucketRow,
        key: str,
        body: Iterable[bytes],
        tags: dict[str, str],
        content_type: str,
        kms_key: str | None,
        expected_sha256: str | None,
    ) -> ObjectVersion:
        bucket = bucket_row.name
        version_id = secrets.token_hex(16)
        team = bucket_row.team
        context = encryption_context(team, bucket, key, version_id)
        key_ref = kms_key or bucket_row.default_key_id
        data_key = self.kms.generate_data_key(ctx, team, key_ref, context, tags=tags)
        blob_path = f"{bucket_row.id}/{version_id[:2]}/{version_id}"
        hashing = HashingPipe()
        written = False
        try:
            stream = StreamingAead(data_key.plaintext).encrypt(hashing.feed(body), associated_data(context))
            ciphertext_size = self.blobs.write(blob_path, stream)
            written = True
            digest = hashing.hexdigest()
            if ciphertext_size != LAYOUT.ciphertext_size(hashing.size):
                raise IntegrityError("the blob store did not store the whole ciphertext")
            if expected_sha256 is not None and digest != expected_sha256.lower():
                raise InvalidInput(
                    f"the uploaded bytes have SHA-256 {digest}, not the {expected_sha256} the client sent; "
                    "nothing was stored",
                    field="sha256",
                )
        except BaseException:
            hashing.close()
            self.blobs.delete(blob_path)
            raise
        ticket.params.update(
            {"version_id": version_id, "size": hashing.size, "sha256": digest, "kms_key_id": data_key.key_id}
        )
        try:
            with ticket.transaction() as call:
                current = self._lock_bucket(call.session, bucket)
                if current.id != bucket_row.id:
                    raise Conflict(
                        f"bucket {bucket} was deleted and re-created during the upload; retry", field="bucket"
                    )
                self._unset_latest(call.session, current.id, key)
                row = ObjectVersionRow(
                    bucket_id=current.id,
                    key=key,
                    version_id=version_id,
                    is_latest=True,
                    delete_marker=False,
                    size=hashing.size,
                    sha256=digest,
                    content_type=content_type or "application/octet-stream",
                    tags=tags,
                    blob=blob_path,
                    kms_key_id=data_key.key_id,
                    kms_key_version=data_key.key_version,
                    wrapped_key=data_key.wrapped,
                    created_at=utcnow(),
                    created_by=ctx.principal.user,
                )
                call.session.add(row)
                call.session.flush()
                call.emit(
                    "ObjectCreated", bucket=bucket, key=key, version_id=version_id, size=hashing.size, sha256=digest
                )
                return row.to_entity(bucket)
        except BaseException:
            if written:
                self.blobs.delete(blob_path)
            raise

    def _lock_bucket(self, session: Session, name: str) -> BucketRow:
        """Serialize writers of one bucket (SQLite already has one writer at a time)."""
        query = select(BucketRow).where(BucketRow.name == name)
        row = session.scalars(query if self.db.is_sqlite else query.with_for_update()).first()
        if row is None:
            raise NotFound(f"bucket {name!r} does not exist", field="bucket")
        return row

    @staticmethod
    def _unset_latest(session: Session, bucket_id: str, key: str) -> None:
        for previous in session.scalars(
            select(ObjectVersionRow).where(
                ObjectVersionRow.bucket_id == bucket_id, ObjectVersionRow.key == key, ObjectVersionRow.is_latest
            )
        ):
            previous.is_latest = False

    def copy_object(
        self,
        ctx: RequestContext,
        source_bucket: str,
        source_key: str,
        bucket: str,
        key: str,
        *,
        source_version_id: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ObjectVersion:
        """Copy a version to a new object: decrypted and re-encrypted under the destination's
        key with a fresh data key and the destination's encryption context."""
        source = self.open_object(ctx, source_bucket, source_key, version_id=source_version_id)
        try:
            return self.put_object(
                ctx,
                bucket,
                key,
                source.chunks,
                tags=source.meta.tags if tags is None else tags,
                content_type=source.meta.content_type,
                expected_sha256=source.meta.sha256,
                action="CopyObject",
                extra_params={
                    "source": f"{source_bucket}/{source.meta.key}",
                    "source_version_id": source.meta.version_id,
                },
            )
        finally:
            source.close()

    # -- reading objects --------------------------------------------------------------------

    def _version(
        self, session: Session, bucket: BucketRow, key: str, version_id: str | None
    ) -> ObjectVersionRow | None:
        query = select(ObjectVersionRow).where(ObjectVersionRow.bucket_id == bucket.id, ObjectVersionRow.key == key)
        if version_id:
            query = query.where(ObjectVersionRow.version_id == version_id)
        else:
            query = query.where(ObjectVersionRow.is_latest)
        return session.scalars(query.order_by(ObjectVersionRow.id.desc()).limit(1)).first()

    def _read_target(
        self, ctx: RequestContext, bucket: str, key: str, version_id: str | None
    ) -> tuple[Target, BucketRow | None]:
        """Authorize reads against the object's current tags (the tag-based allow needs them)."""
        bucket_target, bucket_row = self._bucket_target(ctx, bucket)
        tags: dict[str, str] = {}
        if bucket_row is not None:
            with self.db.read() as session:
                row = self._version(session, bucket_row, key, version_id)
                tags = dict(row.tags or {}) if row is not None else {}
        return self._object_target(bucket_target, key, tags), bucket_row

    def _visible(
        self, call_session: Session, bucket: str, key: str, version_id: str | None
    ) -> tuple[BucketRow, ObjectVersionRow]:
        bucket_row = self._require_bucket(call_session, bucket)
        row = self._version(call_session, bucket_row, key, version_id)
        if row is None:
            which = f" version {version_id}" if version_id else ""
            raise NotFound(f"sr://{bucket}/{key}{which} does not exist", field="version_id" if version_id else "key")
        if row.delete_marker:
            raise NotFound(
                f"sr://{bucket}/{key} was deleted (version {row.version_id} is a delete marker); "
                "earlier versions can still be read by version id",
                field="key",
            )
        return bucket_row, row

    def head_object(self, ctx: RequestContext, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        target, _ = self._read_target(ctx, bucket, key, version_id)
        with (
            self.guard.begin(
                ctx, "HeadObject", target, params={"version_id": version_id}, unseen=_missing_bucket(bucket)
            ) as call,
            call.transaction(write=False),
        ):
            key = check_object_key(key)  # checked under the guard, so a bad key is an audited call
            _, row = self._visible(call.session, bucket, key, version_id)
            self._recheck(call, target, row)
            return row.to_entity(bucket)

    def _recheck(self, call: Any, target: Target, row: ObjectVersionRow) -> None:
        tags = dict(row.tags or {})
        if tags != dict(target.tags):
            call.check(Target(target.kind, target.team, target.name, tags=tags, policy_scope=target.policy_scope))

    def open_object(
        self,
        ctx: RequestContext,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        start: int = 0,
        end: int | None = None,
    ) -> ObjectStream:
        """Authorize, unwrap the data key and check the first segment; return a stream of
        plaintext ``[start, end)`` that decrypts lazily. Errors found before the first byte
        (no such object, disabled key, tampered ciphertext) raise here."""
        key = check_object_key(key)
        target, _ = self._read_target(ctx, bucket, key, version_id)
        params: dict[str, Any] = {"bucket": bucket, "key": key, "version_id": version_id}
        if start or end is not None:
            params["range"] = [start, end]
        with (
            self.guard.begin(ctx, "GetObject", target, params=params, unseen=_missing_bucket(bucket)) as call,
            call.transaction(write=False),
        ):
            bucket_row, row = self._visible(call.session, bucket, key, version_id)
            self._recheck(call, target, row)
            meta = row.to_entity(bucket)
            call.params["version_id"] = row.version_id
            stop = row.size if end is None else min(end, row.size)
            if start < 0 or start > stop or (start == row.size and row.size and end is not None):
                raise InvalidInput(f"range {start}-{end} is not satisfiable for {row.size} bytes", field="range")
            context = encryption_context(bucket_row.team, bucket, key, row.version_id)
            data_key = self.kms.decrypt(ctx, bucket_row.team, row.wrapped_key, context, tags=row.tags)
            reader = self.blobs.open(row.blob)
            try:
                expected = LAYOUT.ciphertext_size(row.size)
                if reader.size != expected:
                    raise IntegrityError(
                        f"the stored ciphertext of sr://{bucket}/{key} is {reader.size} bytes, expected {expected}: "
                        "it was truncated or replaced"
                    )
                chunks = StreamingAead(data_key.plaintext).decrypt_range(
                    reader.read_at, reader.size, associated_data(context), start, stop
                )
                first = next(chunks, b"")
            except BaseException:
                reader.close()
                raise
        return ObjectStream(meta, start, stop, self._guarded(first, chunks, reader, call))

    @staticmethod
    def _guarded(first: bytes, rest: Iterator[bytes], reader: Any, ticket: Ticket) -> Iterator[bytes]:
        """The rest of the stream; an integrity failure after the first segment is audited too."""
        try:
            if first:
                yield first
            yield from rest
        except IntegrityError as exc:
            ticket.report_late(exc)
            raise
        finally:
            reader.close()

    def get_object_bytes(self, ctx: RequestContext, bucket: str, key: str, version_id: str | None = None) -> bytes:
        stream = self.open_object(ctx, bucket, key, version_id=version_id)
        try:
            return stream.read()
        finally:
            stream.close()

    # -- listing ----------------------------------------------------------------------------

    def list_objects(
        self,
        ctx: RequestContext,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = 1000,
        page_token: str | None = None,
    ) -> ObjectListing:
        """Latest versions under ``prefix``, in key order; with ``delimiter="/"`` deeper keys fold
        into ``common_prefixes`` like folders."""
        prefix = check_prefix(prefix)
        if delimiter not in ("", "/"):
            raise InvalidInput("delimiter must be '/' or empty", field="delimiter")
        if not 1 <= max_keys <= MAX_LIST:
            raise InvalidInput(f"max_keys must be between 1 and {MAX_LIST}", field="max_keys")
        after = _untoken(page_token)
        if after is not None and not (isinstance(after, list) and len(after) == 2):
            raise InvalidInput("page_token is not one this API returned", field="page_token")
        target, _ = self._bucket_target(ctx, bucket)
        params = {"prefix": prefix, "delimiter": delimiter, "max_keys": max_keys}
        with (
            self.guard.begin(ctx, "ListObjects", target, params=params, unseen=_missing_bucket(bucket)) as call,
            call.transaction(write=False),
        ):
            row = self._require_bucket(call.session, bucket)
            cursor, inclusive = (str(after[0]), bool(after[1])) if after is not None else ("", True)
            entries: list[tuple[str, ObjectVersion | None]] = []  # (object or folder, entity or None)
            resume: list[tuple[str, bool]] = []  # where to continue after each entry
            while len(entries) <= max_keys:
                wanted = max_keys + 1 - len(entries)
                batch = list(call.session.scalars(self._latest(row.id, prefix, cursor, inclusive).limit(wanted)))
                for item in batch:
                    rest = item.key[len(prefix) :]
                    if delimiter and delimiter in rest:
                        folder = prefix + rest[: rest.index(delimiter) + 1]
                        # Skip every key in the folder: continue from the first key after it.
                        cursor, inclusive = folder[:-1] + chr(ord(delimiter) + 1), True
                        entries.append((folder, None))
                        resume.append((cursor, inclusive))
                        break
                    cursor, inclusive = item.key, False
                    entries.append((item.key, item.to_entity(bucket)))
                    resume.append((cursor, inclusive))
                    if len(entries) > max_keys:
                        break
                else:
                    if len(batch) < wanted:
                        break
            more = len(entries) > max_keys
            entries = entries[:max_keys]
            token = _token(list(resume[max_keys - 1])) if more else None
            return ObjectListing(
                bucket=bucket,
                prefix=prefix,
                delimiter=delimiter,
                objects=[e for _, e in entries if e is not None],
                common_prefixes=[name for name, e in entries if e is None],
                next_page_token=token,
            )

    def _latest(self, bucket_id: str, prefix: str, cursor: str, inclusive: bool) -> Select[ObjectVersionRow]:
        col = self._key_col
        query = select(ObjectVersionRow).where(
            ObjectVersionRow.bucket_id == bucket_id,
            ObjectVersionRow.is_latest,
            ObjectVersionRow.delete_marker.is_(False),
        )
        if prefix:
            query = query.where(ObjectVersionRow.key.startswith(prefix, autoescape=True))
        if cursor:
            query = query.where(col >= cursor if inclusive else col > cursor)
        return query.order_by(col)

    def list_versions(
        self,
        ctx: RequestContext,
        bucket: str,
        *,
        prefix: str = "",
        max_keys: int = 1000,
        page_token: str | None = None,
    ) -> VersionListing:
        """Every version and delete marker under ``prefix``: by key, newest first."""
        prefix = check_prefix(prefix)
        if not 1 <= max_keys <= MAX_LIST:
            raise InvalidInput(f"max_keys must be between 1 and {MAX_LIST}", field="max_keys")
        after = _untoken(page_token)
        if after is not None and not (isinstance(after, list) and len(after) == 2):
            raise InvalidInput("page_token is not one this API returned", field="page_token")
        target, _ = self._bucket_target(ctx, bucket)
        with (
            self.guard.begin(
                ctx, "ListObjectVersions", target, params={"prefix": prefix}, unseen=_missing_bucket(bucket)
            ) as call,
            call.transaction(write=False),
        ):
            row = self._require_bucket(call.session, bucket)
            col = self._key_col
            query = select(ObjectVersionRow).where(ObjectVersionRow.bucket_id == row.id)
            if prefix:
                query = query.where(ObjectVersionRow.key.startswith(prefix, autoescape=True))
            if after is not None:
                query = query.where(
                    or_(col > after[0], and_(ObjectVersionRow.key == after[0], ObjectVersionRow.id < int(after[1])))
                )
            rows = list(call.session.scalars(query.order_by(col, ObjectVersionRow.id.desc()).limit(max_keys + 1)))
            token = _token([rows[max_keys - 1].key, rows[max_keys - 1].id]) if len(rows) > max_keys else None
            return VersionListing(
                bucket=bucket,
                prefix=prefix,
                versions=[r.to_entity(bucket) for r in rows[:max_keys]],
                next_page_token=token,
            )

    # -- deleting ---------------------------------------------------------------------------

    def delete_object(self, ctx: RequestContext, bucket: str, key: str, version_id: str | None = None) -> ObjectVersion:
        """Without a version: add a delete marker (earlier versions stay readable by id).
        With one: delete that version for good (its ciphertext is removed)."""
        key = check_object_key(key)
        target, _ = self._read_target(ctx, bucket, key, version_id)
        params = {"bucket": bucket, "key": key, "version_id": version_id}
        blob = ""
        with (
            self.guard.begin(ctx, "DeleteObject", target, params=params, unseen=_missing_bucket(bucket)) as call,
            call.transaction(),
        ):
            bucket_row = self._lock_bucket(call.session, bucket)
            if version_id:
                row = self._version(call.session, bucket_row, key, version_id)
                if row is None:
                    raise NotFound(f"sr://{bucket}/{key} has no version {version_id}", field="version_id")
                entity = row.to_entity(bucket)
                blob = row.blob
                was_latest = row.is_latest
                call.session.delete(row)
                call.session.flush()
                if was_latest:
                    newest = call.session.scalars(
                        select(ObjectVersionRow)
                        .where(ObjectVersionRow.bucket_id == bucket_row.id, ObjectVersionRow.key == key)
                        .order_by(ObjectVersionRow.id.desc())
                        .limit(1)
                    ).first()
                    if newest is not None:
                        newest.is_latest = True
                call.emit("ObjectVersionDeleted", bucket=bucket, key=key, version_id=version_id)
            else:
                current = self._version(call.session, bucket_row, key, None)
                if current is None or current.delete_marker:
                    raise NotFound(f"sr://{bucket}/{key} does not exist", field="key")
                self._unset_latest(call.session, bucket_row.id, key)
                marker = ObjectVersionRow(
                    bucket_id=bucket_row.id,
                    key=key,
                    version_id=secrets.token_hex(16),
                    is_latest=True,
                    delete_marker=True,
                    size=0,
                    sha256="",
                    content_type="",
                    tags={},
                    blob="",
                    kms_key_id="",
                    kms_key_version=0,
                    wrapped_key=b"",
                    created_at=utcnow(),
                    created_by=ctx.principal.user,
                )
                call.session.add(marker)
                call.session.flush()
                entity = marker.to_entity(bucket)
                call.emit("ObjectDeleted", bucket=bucket, key=key, version_id=marker.version_id)
        if blob:
            self.blobs.delete(blob)
        return entity

    # -- tags -------------------------------------------------------------------------------

    def get_object_tags(self, ctx: RequestContext, bucket: str, key: str, version_id: str | None = None) -> ObjectTags:
        target, _ = self._read_target(ctx, bucket, key, version_id)
        with (
            self.guard.begin(
                ctx, "GetObjectTags", target, params={"version_id": version_id}, unseen=_missing_bucket(bucket)
            ) as call,
            call.transaction(write=False),
        ):
            key = check_object_key(key)
            _, row = self._visible(call.session, bucket, key, version_id)
            self._recheck(call, target, row)
            return ObjectTags(bucket=bucket, key=key, version_id=row.version_id, tags=dict(row.tags or {}))

    def put_object_tags(
        self, ctx: RequestContext, bucket: str, key: str, tags: Mapping[str, str], version_id: str | None = None
    ) -> ObjectTags:
        """Replace a version's tags. Authorized against the current tags and again against the new ones."""
        key = check_object_key(key)
        new_tags = check_tags(dict(tags))
        target, _ = self._read_target(ctx, bucket, key, version_id)
        params = {"bucket": bucket, "key": key, "version_id": version_id, "tags": new_tags}
        with (
            self.guard.begin(ctx, "PutObjectTags", target, params=params, unseen=_missing_bucket(bucket)) as call,
            call.transaction(),
        ):
            _, row = self._visible(call.session, bucket, key, version_id)
            self._recheck(call, target, row)
            call.check(Target(target.kind, target.team, target.name, tags=new_tags, policy_scope=target.policy_scope))
            row.tags = new_tags
            call.emit("ObjectTagsChanged", bucket=bucket, key=key, version_id=row.version_id, tags=new_tags)
            return ObjectTags(bucket=bucket, key=key, version_id=row.version_id, tags=new_tags)

    # -- housekeeping -----------------------------------------------------------------------

    def sweep_orphans(self, older_than: dt.timedelta) -> list[str]:
        """Delete blobs no version row names (left by a crash mid-upload), once older than
        ``older_than`` so that uploads in progress are never touched."""
        cutoff = utcnow() - older_than
        removed: list[str] = []
        for path, modified in self.blobs.walk():
            if modified > cutoff:
                continue
            name = path.rsplit("/", 1)[-1]
            if name.startswith(".tmp-"):
                remover = getattr(self.blobs, "remove_leftover", None)
                if remover is not None:
                    remover(path)
                    removed.append(path)
                continue
            with self.db.read() as session:
                used = session.scalars(
                    select(ObjectVersionRow.id).where(ObjectVersionRow.blob == path).limit(1)
                ).first()
            if used is None:
                self.blobs.delete(path)
                removed.append(path)
        return removed


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True
