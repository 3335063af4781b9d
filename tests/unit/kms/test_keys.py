"""Key lifecycle through the service: disable, deletion (crypto-shredding), rotation, aliases,
key policies, audit of every use; and the same through the PKCS#11 keyring."""

from __future__ import annotations

import datetime as dt

import pytest

from strongroom.audit.log import AuditFilter
from strongroom.core.errors import Conflict, Forbidden, IntegrityError, InvalidInput
from strongroom.kms.service import KmsService
from strongroom.platform import Platform
from tests.unit.storage.conftest import World


def _read(w: World, key: str = "doc.txt") -> bytes:
    return w.platform.storage.open_object(w.alice, "risk-data", key).read()


def test_disabled_key_refuses_reads_and_writes_until_reenabled(world: World) -> None:
    kms, s = world.platform.kms, world.platform.storage
    s.put_object(world.alice, "risk-data", "doc.txt", [b"hello"])
    kms.set_enabled(world.admin, "risk", "default", False)
    with pytest.raises(Conflict, match="disabled") as caught:
        _read(world)
    assert caught.value.extra["key_state"] == "Disabled"
    with pytest.raises(Conflict, match="disabled"):
        s.put_object(world.alice, "risk-data", "new.txt", [b"x"])
    kms.set_enabled(world.dsa, "risk", "default", True)
    assert _read(world) == b"hello"


class _Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_scheduled_deletion_then_data_is_unrecoverable(world: World) -> None:
    kms = world.platform.kms
    clock = _Clock()
    kms.clock = clock
    kms.deletion_min_wait = dt.timedelta(seconds=60)
    world.platform.storage.put_object(world.alice, "risk-data", "doc.txt", [b"to be shredded"])
    with pytest.raises(InvalidInput, match="waiting period"):
        kms.schedule_deletion(world.admin, "risk", "default", 5)
    with pytest.raises(Forbidden):
        kms.schedule_deletion(world.dsa, "risk", "default", 60)  # only a PlatformAdmin shreds
    key = kms.schedule_deletion(world.admin, "risk", "default", 60)
    assert key.state == "PendingDeletion"
    with pytest.raises(Conflict, match="scheduled for deletion"):
        _read(world)
    assert kms.cancel_deletion(world.admin, "risk", "default").state == "Disabled"
    kms.set_enabled(world.admin, "risk", "default", True)
    assert _read(world) == b"to be shredded"
    kms.schedule_deletion(world.admin, "risk", "default", 60)
    assert kms.run_deadlines() == []  # not yet due
    clock.now += dt.timedelta(seconds=61)
    assert kms.run_deadlines() == [f"destroyed {key.id}"]
    described = kms.describe_key(world.admin, "risk", key.id)
    assert described.state == "Destroyed" and all(v.state == "Destroyed" for v in described.versions)
    with pytest.raises(Conflict, match="destroyed"):
        world.platform.storage.open_object(world.alice, "risk-data", "doc.txt")
    with world.platform.db.read() as session:
        from strongroom.kms.db import KeyVersionRow

        assert all(v.handle is None for v in session.query(KeyVersionRow).filter_by(key_id=key.id))
    with pytest.raises(Conflict):
        kms.cancel_deletion(world.admin, "risk", key.id)


def test_rotation_keeps_old_objects_readable_and_uses_the_new_version(world: World) -> None:
    kms, s = world.platform.kms, world.platform.storage
    before = s.put_object(world.alice, "risk-data", "old.txt", [b"old"])
    rotated = kms.rotate(world.dsa, "risk", "default")
    assert rotated.primary_version == 2 and [v.version for v in rotated.versions] == [1, 2]
    after = s.put_object(world.alice, "risk-data", "new.txt", [b"new"])
    assert (before.kms_key_version, after.kms_key_version) == (1, 2)
    assert _read(world, "old.txt") == b"old" and _read(world, "new.txt") == b"new"


def test_automatic_rotation_by_the_worker(world: World) -> None:
    kms = world.platform.kms
    clock = _Clock()
    kms.clock = clock
    key = kms.set_rotation(world.admin, "risk", "default", 90)
    assert key.next_rotation_at is not None
    clock.now += dt.timedelta(days=91)
    assert kms.run_deadlines() == [f"rotated {key.id}"]
    assert kms.describe_key(world.alice, "risk", "default").primary_version == 2


def test_every_key_use_is_audited(world: World) -> None:
    """A key used by a storage call is a check in that call's one event; a direct use is its own event."""
    s = world.platform.storage
    s.put_object(world.alice, "risk-data", "doc.txt", [b"x"])
    _read(world)
    world.platform.kms.rotate(world.admin, "risk", "default")
    log = world.platform.audit_log
    put = log.query(AuditFilter(action="PutObject", limit=100))[-1]
    get = log.query(AuditFilter(action="GetObject", limit=100))[-1]
    assert [c["action"] for c in put.params["checks"]] == ["GenerateDataKey"]
    assert [c["decision"] for c in get.params["checks"]] == ["Allow"]
    decrypt = get.params["checks"][0]
    assert decrypt["action"] == "Decrypt" and decrypt["params"]["encryption_context"]["key"] == "doc.txt"
    assert get.principal == "alice"
    rotate = log.query(AuditFilter(action="RotateKey", limit=100))
    assert rotate and rotate[-1].decision == "Allow"


def test_aliases_and_key_policies(world: World) -> None:
    kms = world.platform.kms
    kms.create_alias(world.dsa, "risk", "models", "default")
    assert sorted(kms.describe_key(world.alice, "risk", "models").aliases) == ["default", "models"]
    with pytest.raises(InvalidInput):
        kms.create_alias(world.dsa, "risk", "key-abc", "default")
    kms.put_key_policy(
        world.dsa,
        "risk",
        "default",
        '@id("no-ds-decrypt")\n@message("only MLOps reads with this key")\n'
        'forbid (principal, action == Action::"Decrypt", resource) when { context.role == "DataScientist" };',
    )
    world.platform.storage.put_object(world.alice, "risk-data", "doc.txt", [b"x"])
    with pytest.raises(Forbidden, match="only MLOps"):
        _read(world)
    assert world.platform.storage.open_object(world.mo, "risk-data", "doc.txt").read() == b"x"


def test_generate_and_decrypt_data_keys_for_client_side_encryption(world: World) -> None:
    kms = world.platform.kms
    made = kms.generate_data_key(world.alice, "risk", "default", {"purpose": "test"})
    assert len(made.plaintext) == 32 and made.plaintext not in made.wrapped
    assert kms.decrypt(world.alice, "risk", made.wrapped, {"purpose": "test"}).plaintext == made.plaintext
    with pytest.raises(IntegrityError):
        kms.decrypt(world.alice, "risk", made.wrapped, {"purpose": "other"})
    with pytest.raises(Forbidden):
        kms.decrypt(world.fred, "risk", made.wrapped, {"purpose": "test"})
    with pytest.raises(Forbidden):
        kms.generate_data_key(world.admin, "risk", "default", {})


def test_pkcs11_keys_live_in_the_hsm_and_survive_a_restart(softhsm: dict[str, str], initialized: object) -> None:
    from strongroom.core.config import Config
    from strongroom.core.context import Grant
    from strongroom.kms.backends.pkcs11 import Pkcs11Keyring
    from tests.support import context_for

    config, _ = initialized  # type: ignore[misc]
    hsm_config = Config(
        home=config.home,
        database_url=config.database_url,
        keyring="pkcs11",
        pkcs11_token_label=softhsm["label"],
        pkcs11_pin=softhsm["pin"],
    )
    admin = context_for("admin", Grant("PlatformAdmin"))
    alice = context_for("alice", Grant("DataScientist", "risk"))
    first = Platform(hsm_config)
    try:
        first.identity.create_team(admin, "risk")
        key = first.kms.create_key(admin, "risk", "default")
        assert key.keyring == "pkcs11"
        first.storage.create_bucket(context_for("d", Grant("DataScienceAdmin", "risk")), "risk", "risk-data")
        first.storage.put_object(alice, "risk-data", "hsm.txt", [b"sealed by the HSM"])
        ring = first.keyrings["pkcs11"]
        assert isinstance(ring, Pkcs11Keyring)
        with first.db.read() as session:
            from strongroom.kms.db import KeyVersionRow

            handle = session.get(KeyVersionRow, (key.id, 1)).handle  # type: ignore[union-attr]
        assert handle is not None and len(handle) == 16  # an object id, not key material
        attributes = ring.attributes(handle)
        assert attributes == {
            "sensitive": True,
            "extractable": False,
            "never_extractable": True,
            "always_sensitive": True,
        }
    finally:
        first.close()
    again = Platform(hsm_config)
    try:
        assert again.storage.open_object(alice, "risk-data", "hsm.txt").read() == b"sealed by the HSM"
        clock = _Clock()
        again.kms.clock = clock
        again.kms.schedule_deletion(admin, "risk", "default", 7 * 86400)
        clock.now += dt.timedelta(days=8)
        assert again.kms.run_deadlines() == [f"destroyed {key.id}"]
        with pytest.raises(IntegrityError, match="destroyed"):
            again.keyrings["pkcs11"].unwrap(handle, key.id, 1, b"\x02" + b"\x00" * 40, b"")
    finally:
        again.close()


def test_unknown_keyring_is_refused(world: World) -> None:
    with pytest.raises(InvalidInput, match="keyring"):
        world.platform.kms.create_key(world.admin, "risk", "hsm-key", keyring="pkcs11")
    assert isinstance(world.platform.kms, KmsService)
