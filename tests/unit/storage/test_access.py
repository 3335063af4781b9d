"""Who may do what to buckets and objects: team boundary, tag-based sharing, platform roles,
bucket policies, and object keys that try to escape."""

from __future__ import annotations

import pytest

from strongroom.core.errors import Forbidden, InvalidInput, NotFound
from strongroom.storage.keys import check_object_key
from tests.unit.storage.conftest import World


def test_cross_team_reads_and_writes_are_denied(world: World) -> None:
    """Denied, and answered exactly as a missing bucket (the events record the denials)."""
    s = world.platform.storage
    s.put_object(world.alice, "risk-data", "secret.csv", [b"risk only"])
    with pytest.raises(NotFound, match="does not exist"):
        s.open_object(world.fred, "risk-data", "secret.csv")
    with pytest.raises(NotFound, match="does not exist"):
        s.put_object(world.fred, "risk-data", "planted.csv", [b"x"])
    with pytest.raises(NotFound, match="does not exist"):
        s.list_objects(world.fred, "risk-data")
    with pytest.raises(NotFound, match="does not exist"):
        s.delete_object(world.fred, "risk-data", "secret.csv")


def test_objects_tagged_shared_are_readable_by_other_teams_and_nothing_more(world: World) -> None:
    s = world.platform.storage
    s.put_object(world.alice, "risk-data", "public/rates.csv", [b"rate,1\n"], tags={"shared": "true"})
    s.put_object(world.alice, "risk-data", "private.csv", [b"p"], tags={"shared": "false"})
    assert s.open_object(world.fred, "risk-data", "public/rates.csv").read() == b"rate,1\n"
    assert s.head_object(world.fred, "risk-data", "public/rates.csv").tags == {"shared": "true"}
    with pytest.raises(NotFound):
        s.open_object(world.fred, "risk-data", "private.csv")
    with pytest.raises(NotFound):
        s.put_object_tags(world.fred, "risk-data", "public/rates.csv", {"shared": "true", "x": "y"})
    with pytest.raises(NotFound):
        s.delete_object(world.fred, "risk-data", "public/rates.csv")
    s.put_object_tags(world.alice, "risk-data", "public/rates.csv", {})  # unshared again
    with pytest.raises(NotFound):
        s.open_object(world.fred, "risk-data", "public/rates.csv")


def test_platform_roles_see_buckets_but_never_data(world: World) -> None:
    s = world.platform.storage
    s.put_object(world.alice, "risk-data", "raw.csv", [b"x"])
    for who in (world.admin, world.auditor):
        assert "risk-data" in {b.name for b in s.list_buckets(who)}
        with pytest.raises(Forbidden, match="never read or write team data"):
            s.open_object(who, "risk-data", "raw.csv")
        with pytest.raises(Forbidden):
            s.list_objects(who, "risk-data")
    # not even a team policy that permits everything lets the platform admin read team data
    world.platform.policies.attach(world.admin, "risk", "open", "permit (principal, action, resource);")
    with pytest.raises(Forbidden, match="never read or write team data"):
        s.open_object(world.admin, "risk-data", "raw.csv")


def test_mlops_reads_but_cannot_change_data(world: World) -> None:
    s = world.platform.storage
    s.put_object(world.alice, "risk-data", "captures/1.jsonl", [b"{}"])
    assert s.open_object(world.mo, "risk-data", "captures/1.jsonl").read() == b"{}"
    with pytest.raises(Forbidden):
        s.put_object(world.mo, "risk-data", "raw/new.csv", [b"x"])


def test_a_bucket_policy_applies_to_its_bucket_only(world: World) -> None:
    s = world.platform.storage
    world.platform.storage.create_bucket(world.dsa, "risk", "risk-models")
    policy = """
    @id("no-deletes")
    @message("this bucket keeps every version")
    forbid (principal, action == Action::"DeleteObject", resource);
    """
    s.put_bucket_policy(world.dsa, "risk-models", policy)
    s.put_object(world.alice, "risk-models", "m.json", [b"{}"])
    s.put_object(world.alice, "risk-data", "d.csv", [b"d"])
    with pytest.raises(Forbidden, match="keeps every version"):
        s.delete_object(world.alice, "risk-models", "m.json")
    s.delete_object(world.alice, "risk-data", "d.csv")  # other buckets are unaffected
    with pytest.raises(Forbidden):
        s.put_bucket_policy(world.alice, "risk-models", "")  # only the team admin manages policies
    s.put_bucket_policy(world.dsa, "risk-models", "")
    s.delete_object(world.alice, "risk-models", "m.json")


def test_a_bucket_policy_can_require_tags(world: World) -> None:
    s = world.platform.storage
    s.put_bucket_policy(
        world.dsa,
        "risk-data",
        """@id("classified")
        @message("objects in risk-data need a classification tag")
        forbid (principal, action == Action::"PutObject", resource)
        unless { resource.hasTag("classification") };""",
    )
    with pytest.raises(Forbidden, match="classification"):
        s.put_object(world.alice, "risk-data", "x.csv", [b"x"])
    s.put_object(world.alice, "risk-data", "x.csv", [b"x"], tags={"classification": "internal"})


def test_invalid_bucket_policies_are_refused(world: World) -> None:
    with pytest.raises(InvalidInput):
        world.platform.storage.put_bucket_policy(world.dsa, "risk-data", "permit (principal, action, resource")


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "raw/../../secret",
        "raw/./x",
        "/absolute",
        "raw//x",
        "trailing/",
        "nul\x00byte",
        "tab\tkey",
        "line\nbreak",
        "del\x7f",
        "back\\slash",
        "bidi\u202etxt.exe",
        "x" * 1025,
        "é" * 600,
        "",
        "..",
        ".",
    ],
)
def test_traversal_and_control_keys_are_rejected(world: World, key: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        world.platform.storage.put_object(world.alice, "risk-data", key, [b"x"])
    assert caught.value.field == "key"


def test_keys_are_checked_after_normalisation() -> None:
    decomposed = "cafe\u0301/data.csv"
    assert check_object_key(decomposed) == "caf\u00e9/data.csv"
    assert check_object_key("%2e%2e/literal") == "%2e%2e/literal"  # never decoded a second time
    assert check_object_key("a/b c/€.csv") == "a/b c/€.csv"
