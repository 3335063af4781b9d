"""The monitoring scheduler: the platform worker that opens due windows, starts their sandboxed
jobs and records their outcome. Its state is in the database, so a restarted platform carries on:
pending executions run, and one whose job died with the old process ends Failed with the reason."""

from __future__ import annotations

import threading

from strongroom.audit.events import Event
from strongroom.core.workers import Worker
from strongroom.monitor.executions import ExecutionRunner

WAKE_ON = ("MonitoringExecutionScheduled", "JobFinished", "MonitoringScheduleCreated", "MonitoringScheduleStarted")


class MonitoringScheduler(Worker):
    name = "monitoring-scheduler"
    interval_seconds = 5.0
    busy_interval_seconds = 1.0

    def __init__(self, runner: ExecutionRunner) -> None:
        self.runner = runner
        self.wakeup = threading.Event()

    def on_event(self, event: Event) -> None:
        if event.kind == "state" and event.name in WAKE_ON:
            self.wake()

    def run_once(self) -> bool:
        return self.runner.tick()
