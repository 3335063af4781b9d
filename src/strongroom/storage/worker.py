"""Housekeeping for the blob store: removing blobs a crash mid-upload left unreferenced."""

from __future__ import annotations

import datetime as dt
import logging

from strongroom.core.workers import Worker
from strongroom.storage.service import StorageService

log = logging.getLogger(__name__)


class OrphanBlobWorker(Worker):
    name = "storage-orphans"

    def __init__(self, storage: StorageService, grace_seconds: float, interval_seconds: float = 600.0) -> None:
        self.storage = storage
        self.grace = dt.timedelta(seconds=grace_seconds)
        self.interval_seconds = interval_seconds

    def run_once(self) -> None:
        removed = self.storage.sweep_orphans(self.grace)
        if removed:
            log.info("storage: removed %d unreferenced blobs", len(removed))
