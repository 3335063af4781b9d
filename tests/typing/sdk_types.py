"""The SDK's public types as a user's editor and type checker see them.

Checked by mypy (``make test`` runs ``mypy tests/typing``), never run: ``assert_type`` fails the
type check when a public method's declared type drifts (as ``list`` methods did when they shadowed
the builtin in their own class's annotations).
"""

from __future__ import annotations

from typing import assert_type

import strongroom
from strongroom.gitrepo.models import Repository
from strongroom.identity.models import ApiToken, IssuedToken, SessionToken, Team, User
from strongroom.jobs.models import Job
from strongroom.kms.models import Key
from strongroom.sdk.model_registry import ModelPackage
from strongroom.sdk.serving import Model
from strongroom.serving.registry_models import ModelPackage as ModelPackageInfo
from strongroom.serving.registry_models import ModelPackageGroup
from strongroom.storage.models import Bucket


def public_types(s: strongroom.Session) -> None:
    assert_type(s, strongroom.Session)
    assert_type(s.users.create("alice"), User)
    assert_type(s.users.list(), list[User])
    assert_type(s.teams.create("risk"), Team)
    assert_type(s.teams.list(), list[Team])
    assert_type(s.tokens.create("ci"), IssuedToken)
    assert_type(s.tokens.list(), list[ApiToken])
    assert_type(s.jobs.describe("risk", "train"), Job)
    assert_type(s.jobs.list("risk"), list[Job])
    assert_type(s.repositories.list("risk"), list[Repository])
    assert_type(s.keys.describe("risk", "default"), Key)
    assert_type(s.buckets.list("risk"), list[Bucket])
    assert_type(s.call("POST", "/api/v1/sessions", SessionToken), SessionToken)
    assert_type(s.assume_role("DataScientist", "risk"), strongroom.Session)
    assert_type(s.model_registry.list_groups("risk"), list[ModelPackageGroup])
    assert_type(s.model_registry.versions("risk", "credit-default"), list[ModelPackageInfo])
    assert_type(s.model_registry.approve("risk", "credit-default", 1, "AUC 0.78"), ModelPackageInfo)
    model = Model(name="xgb-train-1-model", training_job="xgb-train-1", session=s, team="risk")
    assert_type(model.register(model_package_group_name="credit-default"), ModelPackage)
