"""What a notebook's ``strongroom_environment`` module shows of its team."""

from __future__ import annotations

from strongroom.notebooks.team_constants import team_constants
from strongroom.platform import Platform
from tests.unit.storage.conftest import World
from tests.unit.storage.conftest import world as world


def test_the_team_constants_name_what_the_team_has(world: World) -> None:
    platform: Platform = world.platform
    constants = team_constants(platform.db, platform.kms, "risk")
    assert constants["DATA_BUCKET"] == "risk-data"
    assert constants["MODEL_BUCKET"] == ""  # the team has no risk-models bucket
    assert constants["KMS_KEY_ALIAS"] == "default" and constants["KMS_KEY_ID"]
    assert constants["GIT_REPOSITORY"] == "" and constants["GIT_REMOTE"] == ""
    platform.git.create(world.dsa, "risk", "risk")
    assert team_constants(platform.db, platform.kms, "risk")["GIT_REMOTE"].endswith("/git/risk/risk.git")
