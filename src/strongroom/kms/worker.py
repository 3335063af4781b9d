"""The key lifecycle worker: automatic rotation and deletion deadlines."""

from __future__ import annotations

import logging

from strongroom.core.workers import Worker
from strongroom.kms.service import KmsService

log = logging.getLogger(__name__)


class KeyLifecycleWorker(Worker):
    name = "kms-lifecycle"

    def __init__(self, kms: KmsService, interval_seconds: float = 60.0) -> None:
        self.kms = kms
        self.interval_seconds = interval_seconds

    def run_once(self) -> None:
        for line in self.kms.run_deadlines():
            log.info("kms: %s", line)
