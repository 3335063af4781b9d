"""Prometheus metrics of the control plane, one registry per ``Platform`` (no module-level state).

Counters and histograms are updated where things happen (the HTTP middleware, the audit append);
gauges of stored state (jobs, notebooks, storage bytes) are read from the database at scrape time,
so every process reports the same truth.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from strongroom.db.engine import Database

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_SIZED = 8  # a process's file starts with its used-bytes count and a pad: 8 bytes before any value
_AUDIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class _StoredState(Collector):
    """Jobs and notebooks by status, stored bytes by team: counted in the database on each scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> Iterator[Metric]:
        """The families without samples: registering must not query the database."""
        yield from self._families()

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("strongroom_jobs", "Jobs by kind and status", labels=["kind", "status"]),
            GaugeMetricFamily("strongroom_notebooks", "Notebook instances by status", labels=["status"]),
            GaugeMetricFamily(
                "strongroom_storage_bytes", "Plaintext bytes of stored object versions, by team", labels=["team"]
            ),
        )

    def collect(self) -> Iterator[Metric]:
        from strongroom.jobs.db import JobRow
        from strongroom.notebooks.db import NotebookRow
        from strongroom.storage.db import BucketRow, ObjectVersionRow

        jobs, notebooks, stored = self._families()
        with self.db.read() as session:
            for kind, status, count in session.execute(
                select(JobRow.kind, JobRow.status, func.count()).group_by(JobRow.kind, JobRow.status)
            ):
                jobs.add_metric([kind, status], count)
            for status, count in session.execute(select(NotebookRow.status, func.count()).group_by(NotebookRow.status)):
                notebooks.add_metric([status], count)
            for team, size in session.execute(
                select(BucketRow.team, func.coalesce(func.sum(ObjectVersionRow.size), 0))
                .join(ObjectVersionRow, ObjectVersionRow.bucket_id == BucketRow.id)
                .group_by(BucketRow.team)
            ):
                stored.add_metric([team], int(size))
        yield jobs
        yield notebooks
        yield stored


class _Monitoring(Collector):
    """Per monitoring schedule, from its latest finished execution: each feature's distance from
    the baseline, and the violations found (read from the database at scrape time)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "strongroom_monitor_feature_distance",
                "Distance of each feature from its baseline in the latest finished execution of a monitoring schedule",
                labels=["team", "schedule", "feature"],
            ),
            GaugeMetricFamily(
                "strongroom_monitor_violations",
                "Constraint violations in the latest finished execution of a monitoring schedule, by check",
                labels=["team", "schedule", "check"],
            ),
            GaugeMetricFamily(
                "strongroom_monitor_last_execution_timestamp_seconds",
                "When the latest execution of a monitoring schedule finished, by its status",
                labels=["team", "schedule", "status"],
            ),
        )

    def collect(self) -> Iterator[Metric]:
        from strongroom.monitor.db import MonitoringExecutionRow

        distance, violations, finished = self._families()
        done = ("Completed", "CompletedWithViolations", "Failed", "Stopped")
        latest = (
            select(MonitoringExecutionRow.schedule_id, func.max(MonitoringExecutionRow.ended_at).label("ended"))
            .where(MonitoringExecutionRow.status.in_(done))
            .group_by(MonitoringExecutionRow.schedule_id)
            .subquery()
        )
        with self.db.read() as session:
            rows = session.scalars(
                select(MonitoringExecutionRow).join(
                    latest,
                    (MonitoringExecutionRow.schedule_id == latest.c.schedule_id)
                    & (MonitoringExecutionRow.ended_at == latest.c.ended),
                )
            )
            for row in rows:
                for feature, value in sorted(row.distances.items()):
                    distance.add_metric([row.team, row.schedule, feature], float(value))
                counts: dict[str, int] = {}
                for violation in row.violations:
                    check = violation.get("constraint_check_type", "")
                    counts[check] = counts.get(check, 0) + 1
                for check, count in sorted(counts.items()):
                    violations.add_metric([row.team, row.schedule, check], count)
                if row.ended_at is not None:
                    finished.add_metric([row.team, row.schedule, row.status], row.ended_at.timestamp())
        yield distance
        yield violations
        yield finished


def shared_between_processes() -> bool:
    """True when ``PROMETHEUS_MULTIPROC_DIR`` was set before ``prometheus_client`` was imported
    (``up --workers N`` does): counters and histograms then live in files of that folder, one per
    process, and a scrape answered by any process sums them all."""
    return values.ValueClass is not values.MutexValue


class _SharedCollector(MultiProcessCollector):
    """prometheus-client's collector of every process's files, skipping a file a starting process
    has created but not yet sized: read as it is, such a file raised ``struct.error``, which made a
    sibling of ``up --workers N`` fail to start (its registry collects once on registration) and
    would fail a scrape. The skipped process has counted nothing yet."""

    def collect(self) -> Iterable[Metric]:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            with contextlib.suppress(OSError):  # gone since the listing: a process's file removed
                if os.path.getsize(path) >= _SIZED:
                    files.append(path)
        return self.merge(files, accumulate=True)


class Metrics:
    """The platform's metrics: record with the methods, expose with ``render``."""

    def __init__(self, db: Database) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # Shared between the API processes: the values are written to files, and the one collector
        # that reads every process's files stands in for the four metrics below.
        own = None if shared_between_processes() else self.registry
        if own is None:
            _SharedCollector(self.registry)
        self.requests = Counter(
            "strongroom_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=own,
        )
        self.latency = Histogram(
            "strongroom_http_request_duration_seconds",
            "Time from request to the response's start, by method and route template",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=own,
        )
        self.decisions = Counter(
            "strongroom_policy_decisions",
            "Audited calls by action, decision (Allow, Deny, Invalid) and outcome",
            ["action", "decision", "outcome"],
            registry=own,
        )
        self.audit_append = Histogram(
            "strongroom_audit_append_duration_seconds",
            "Time to append one event to the audit hash chain (inside the caller's transaction)",
            buckets=_AUDIT_BUCKETS,
            registry=own,
        )
        self.registry.register(_StoredState(db))
        self.registry.register(_Monitoring(db))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request (``route`` is the template, never the concrete path)."""
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def audited(self, action: str, decision: str, outcome: str, seconds: float) -> None:
        """Count one audit append: the policy decision it records and how long the append took."""
        # Calls the API could not route are recorded as "HTTP <method> <path>": one label for all.
        self.decisions.labels(action if not action.startswith("HTTP ") else "HTTP", decision, outcome).inc()
        self.audit_append.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
