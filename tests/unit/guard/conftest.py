"""The storage test world (two teams, keys, buckets, a caller per role) serves the guard tests."""

from tests.unit.storage.conftest import world  # noqa: F401
