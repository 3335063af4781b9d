"""Buckets and objects through the service: versions, envelope encryption, integrity, listing."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.core.errors import Conflict, IntegrityError, InvalidInput, NotFound
from strongroom.storage.db import ObjectVersionRow
from tests.unit.storage.conftest import World

MIB = 1 << 20
MARKER = b"DISTINCTIVE-CARDHOLDER-ROW-4242-"


def put(w: World, key: str, data: bytes, bucket: str = "risk-data", **kw: object) -> str:
    return w.platform.storage.put_object(w.alice, bucket, key, [data], **kw).version_id  # type: ignore[arg-type]


def get(w: World, key: str, bucket: str = "risk-data", **kw: object) -> bytes:
    stream = w.platform.storage.open_object(w.alice, bucket, key, **kw)  # type: ignore[arg-type]
    return stream.read()


def blob_path(w: World, version_id: str) -> Path:
    with w.platform.db.read() as session:
        row = session.query(ObjectVersionRow).filter_by(version_id=version_id).one()
        return w.platform.config.effective_blob_store_path / row.blob


def test_put_get_versions_and_delete_markers(world: World) -> None:
    s = world.platform.storage
    v1 = put(world, "raw/data.csv", b"a,b\n1,2\n")
    v2 = put(world, "raw/data.csv", b"a,b\n3,4\n", tags={"stage": "raw"})
    assert get(world, "raw/data.csv") == b"a,b\n3,4\n"
    assert get(world, "raw/data.csv", version_id=v1) == b"a,b\n1,2\n"
    head = s.head_object(world.alice, "risk-data", "raw/data.csv")
    assert head.version_id == v2 and head.size == 8 and head.sha256 == hashlib.sha256(b"a,b\n3,4\n").hexdigest()
    assert head.tags == {"stage": "raw"} and head.uri == "sr://risk-data/raw/data.csv"
    marker = s.delete_object(world.alice, "risk-data", "raw/data.csv")
    assert marker.delete_marker
    with pytest.raises(NotFound, match="delete marker"):
        get(world, "raw/data.csv")
    assert get(world, "raw/data.csv", version_id=v2) == b"a,b\n3,4\n"
    versions = s.list_versions(world.alice, "risk-data").versions
    assert [v.version_id for v in versions] == [marker.version_id, v2, v1]
    s.delete_object(world.alice, "risk-data", "raw/data.csv", version_id=marker.version_id)
    assert get(world, "raw/data.csv") == b"a,b\n3,4\n"  # removing the marker restores the object
    old_blob = blob_path(world, v1)
    s.delete_object(world.alice, "risk-data", "raw/data.csv", version_id=v1)
    assert not old_blob.exists()  # a permanently deleted version leaves no ciphertext behind
    with pytest.raises(NotFound):
        get(world, "raw/data.csv", version_id=v1)


def test_no_plaintext_in_the_home_or_the_blob_store(world: World) -> None:
    rows = b"".join(MARKER + str(i).encode() + b",LIMIT_BAL=50000\n" for i in range(50_000))
    put(world, "raw/cards.csv", rows, tags={"owner": "risk"})
    put(world, "small.txt", MARKER)
    assert get(world, "raw/cards.csv") == rows
    home = world.platform.config.home
    scanned = 0
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            scanned += len(data)
            assert MARKER not in data, path
            assert b"LIMIT_BAL=50000" not in data, path
    assert scanned > len(rows)  # the ciphertext itself was among the files scanned


def test_tampering_is_detected_with_a_clear_error(world: World) -> None:
    data = os.urandom(3 * MIB + 5000)
    version = put(world, "model.bin", data)
    path = blob_path(world, version)
    original = path.read_bytes()

    def expect_integrity_error(content: bytes) -> str:
        path.write_bytes(content)
        with pytest.raises(IntegrityError) as caught:
            get(world, "model.bin")
        return caught.value.detail

    flipped = bytearray(original)
    flipped[100] ^= 0x80
    assert "failed authentication" in expect_integrity_error(bytes(flipped))
    swapped = original[:MIB] + original[2 * MIB : 3 * MIB] + original[MIB : 2 * MIB] + original[3 * MIB :]
    assert "segment 1" in expect_integrity_error(swapped)
    assert "truncated" in expect_integrity_error(original[:-10])
    path.write_bytes(original)
    assert get(world, "model.bin") == data


def test_a_flipped_bit_in_a_late_segment_stops_the_stream(world: World) -> None:
    data = os.urandom(3 * MIB)
    version = put(world, "late.bin", data)
    path = blob_path(world, version)
    tampered = bytearray(path.read_bytes())
    tampered[2 * MIB + 10] ^= 1
    path.write_bytes(bytes(tampered))
    stream = world.platform.storage.open_object(world.alice, "risk-data", "late.bin")
    with pytest.raises(IntegrityError):
        stream.read()
    events = world.platform.audit_log.query(AuditFilter(action="GetObject", limit=1000))
    assert any(e.outcome == "integrity-error" for e in events)


def test_ciphertext_moved_to_another_object_or_version_fails(world: World) -> None:
    a = put(world, "a.csv", b"alpha" * 1000)
    b = put(world, "b.csv", b"bravo" * 1000)
    b2 = put(world, "b.csv", b"bravo2" * 1000)
    blob_path(world, b).write_bytes(blob_path(world, a).read_bytes())
    with pytest.raises(IntegrityError):
        get(world, "b.csv", version_id=b)
    blob_path(world, b2).write_bytes(blob_path(world, a).read_bytes())
    with pytest.raises(IntegrityError):
        get(world, "b.csv")
    # moving the whole envelope (wrapped key and ciphertext) to another object fails too
    with world.platform.db.write() as session:
        src = session.query(ObjectVersionRow).filter_by(version_id=a).one()
        dst = session.query(ObjectVersionRow).filter_by(version_id=b2).one()
        dst.wrapped_key, dst.blob, dst.size = src.wrapped_key, src.blob, src.size
    with pytest.raises(IntegrityError):
        get(world, "b.csv")


def test_range_reads(world: World) -> None:
    data = os.urandom(2 * MIB + 333)
    put(world, "big.bin", data)
    s = world.platform.storage
    for start, end in [(0, 10), (MIB - 100, MIB + 100), (2 * MIB, 2 * MIB + 333), (5, None)]:
        stream = s.open_object(world.alice, "risk-data", "big.bin", start=start, end=end)
        assert stream.read() == data[start:end]
    with pytest.raises(InvalidInput):
        s.open_object(world.alice, "risk-data", "big.bin", start=len(data) + 5)


def test_listing_with_prefix_delimiter_and_pages(world: World) -> None:
    keys = ["a.txt", "raw/1.csv", "raw/2.csv", "raw/deep/3.csv", "raw-x.csv", "models/m.json", "z"]
    for key in keys:
        put(world, key, key.encode())
    s = world.platform.storage
    flat = s.list_objects(world.alice, "risk-data")
    assert [o.key for o in flat.objects] == sorted(keys)
    folders = s.list_objects(world.alice, "risk-data", delimiter="/")
    assert folders.common_prefixes == ["models/", "raw/"]
    assert [o.key for o in folders.objects] == ["a.txt", "raw-x.csv", "z"]
    inside = s.list_objects(world.alice, "risk-data", prefix="raw/", delimiter="/")
    assert [o.key for o in inside.objects] == ["raw/1.csv", "raw/2.csv"] and inside.common_prefixes == ["raw/deep/"]
    seen: list[str] = []
    token = None
    while True:
        page = s.list_objects(world.alice, "risk-data", delimiter="/", max_keys=2, page_token=token)
        assert len(page.objects) + len(page.common_prefixes) <= 2
        seen += page.common_prefixes + [o.key for o in page.objects]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(["a.txt", "raw-x.csv", "z", "models/", "raw/"])


def test_copy_reencrypts_under_a_new_context(world: World) -> None:
    version = put(world, "src.csv", b"x" * 5000, tags={"k": "v"})
    copied = world.platform.storage.copy_object(world.alice, "risk-data", "src.csv", "risk-data", "dst/copy.csv")
    assert copied.tags == {"k": "v"} and copied.sha256 == hashlib.sha256(b"x" * 5000).hexdigest()
    assert get(world, "dst/copy.csv") == b"x" * 5000
    assert blob_path(world, version).read_bytes() != blob_path(world, copied.version_id).read_bytes()


def test_wrong_sha256_stores_nothing(world: World) -> None:
    with pytest.raises(InvalidInput, match="SHA-256"):
        put(world, "checked.csv", b"hello", expected_sha256="0" * 64)
    with pytest.raises(NotFound):
        get(world, "checked.csv")
    blobs = [p for p in world.platform.config.effective_blob_store_path.rglob("*") if p.is_file()]
    assert blobs == []


def test_buckets(world: World) -> None:
    s = world.platform.storage
    with pytest.raises(Conflict):
        s.create_bucket(world.dsa, "risk", "fraud-data")
    with pytest.raises(InvalidInput, match="no key"):
        s.create_bucket(world.dsa, "risk", "other", key="nope")
    assert [b.name for b in s.list_buckets(world.alice)] == ["risk-data"]
    assert {b.name for b in s.list_buckets(world.admin)} == {"risk-data", "fraud-data"}
    put(world, "x", b"1")
    with pytest.raises(Conflict, match="still holds"):
        s.delete_bucket(world.dsa, "risk-data")
    with pytest.raises(NotFound):
        s.describe_bucket(world.alice, "no-such-bucket")


def test_orphaned_blobs_are_swept(world: World) -> None:
    import datetime as dt

    root = world.platform.config.effective_blob_store_path
    version = put(world, "kept.csv", b"kept")
    orphan = root / "deadbeef" / "00" / "orphan"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"junk")
    leftover = orphan.parent / ".tmp-1234"
    leftover.write_bytes(b"partial")
    removed = world.platform.storage.sweep_orphans(dt.timedelta(seconds=0))
    assert sorted(removed) == ["deadbeef/00/.tmp-1234", "deadbeef/00/orphan"]
    assert blob_path(world, version).exists() and get(world, "kept.csv") == b"kept"
