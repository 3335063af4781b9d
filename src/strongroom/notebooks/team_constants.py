"""The team's constants a notebook's ``strongroom_environment`` module shows (its buckets, key,
repository and git remote), read when the notebook starts."""

from __future__ import annotations

from sqlalchemy import select

from strongroom.catalog.team_environment import data_bucket, model_bucket
from strongroom.db.engine import Database
from strongroom.gitrepo.db import RepositoryRow
from strongroom.kms.service import KmsService
from strongroom.notebooks.spawner import FORWARDER_PORT
from strongroom.storage.db import BucketRow


def team_constants(db: Database, kms: KmsService, team: str) -> dict[str, str]:
    """``DATA_BUCKET``, ``MODEL_BUCKET``, ``KMS_KEY_ALIAS``/``KMS_KEY_ID``, ``GIT_REPOSITORY`` and
    ``GIT_REMOTE`` of ``team`` (empty where the team has none)."""
    found: dict[str, str] = {"KMS_KEY_ALIAS": "default", "KMS_KEY_ID": kms.resolve_id(team, "default") or ""}
    with db.read() as session:
        buckets = set(session.scalars(select(BucketRow.name).where(BucketRow.team == team)))
        repos = set(session.scalars(select(RepositoryRow.name).where(RepositoryRow.team == team)))
    found["DATA_BUCKET"] = data_bucket(team) if data_bucket(team) in buckets else ""
    found["MODEL_BUCKET"] = model_bucket(team) if model_bucket(team) in buckets else ""
    repo = team if team in repos else (sorted(repos)[0] if repos else "")
    found["GIT_REPOSITORY"] = repo
    found["GIT_REMOTE"] = f"http://127.0.0.1:{FORWARDER_PORT}/git/{team}/{repo}.git" if repo else ""
    return found
