"""Imports every domain's rows so ``Base.metadata`` knows all tables (for Alembic and tests)."""

from __future__ import annotations

from sqlalchemy import MetaData

import strongroom.alerts.db
import strongroom.audit.db
import strongroom.catalog.db
import strongroom.db.changes
import strongroom.experiments.db
import strongroom.gitrepo.db
import strongroom.identity.db
import strongroom.jobs.db
import strongroom.kms.db
import strongroom.lineage.db
import strongroom.monitor.db
import strongroom.notebooks.db
import strongroom.policy.db
import strongroom.serving.db
import strongroom.serving.registry_db
import strongroom.storage.db  # noqa: F401
from strongroom.db.base import Base


def metadata() -> MetaData:
    return Base.metadata
