"""The storage test world is shared with the key tests."""

from tests.unit.storage.conftest import world  # noqa: F401
