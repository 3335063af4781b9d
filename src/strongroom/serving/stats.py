"""Per endpoint and variant counters of the data plane, for the API and for Prometheus ``/metrics``.

Counted in this platform process since it started (not persisted). Each invocation adds one count
(2xx, 4xx or 5xx) and, when a worker answered, its model latency (the round trip to the worker)
and its overhead (everything else the platform spent: routing, the capture's group commit, the
answer). Recording is one lock and two bisects, so it stays off the hot path's profile.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from strongroom.serving.models import CaptureStats, InvocationStats, LatencySummary, VariantMetrics

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass
class Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def cumulative(self) -> list[int]:
        out, running = [], 0
        for count in self.counts:
            running += count
            out.append(running)
        return out

    def quantile(self, q: float) -> float:
        """The quantile in seconds, interpolated inside its bucket (as Prometheus' histogram_quantile)."""
        cumulative = self.cumulative()
        n = cumulative[-1]
        if not n:
            return 0.0
        rank = q * n
        index = bisect.bisect_left(cumulative, rank)
        if index >= len(BUCKETS):
            return BUCKETS[-1]
        lower = BUCKETS[index - 1] if index else 0.0
        below = cumulative[index - 1] if index else 0
        inside = cumulative[index] - below
        return lower + (BUCKETS[index] - lower) * ((rank - below) / inside if inside else 1.0)

    def summary(self) -> LatencySummary:
        cumulative = self.cumulative()
        bounds = [*(f"{b:g}" for b in BUCKETS), "+Inf"]
        return LatencySummary(
            count=cumulative[-1],
            sum_seconds=round(self.total, 6),
            p50_ms=round(self.quantile(0.5) * 1000, 3),
            p99_ms=round(self.quantile(0.99) * 1000, 3),
            buckets=dict(zip(bounds, cumulative, strict=True)),
        )


@dataclass
class VariantCounters:
    ok: int = 0
    client_errors: int = 0
    server_errors: int = 0
    model: Histogram = field(default_factory=Histogram)
    overhead: Histogram = field(default_factory=Histogram)


class EndpointStats:
    """Counters keyed by (team, endpoint, variant); the variant is "" when none was chosen yet
    (a request refused before routing: wrong content type, empty body, endpoint not in service)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str, str], VariantCounters] = {}

    def record(self, team: str, endpoint: str, variant: str, status: int, model: float, total: float) -> None:
        with self._lock:
            counters = self._counters.get((team, endpoint, variant))
            if counters is None:
                counters = self._counters[(team, endpoint, variant)] = VariantCounters()
            if status < 400:
                counters.ok += 1
            elif status < 500:
                counters.client_errors += 1
            else:
                counters.server_errors += 1
            if model > 0:
                counters.model.observe(model)
                counters.overhead.observe(max(total - model, 0.0))

    def forget(self, team: str, endpoint: str) -> None:
        with self._lock:
            for key in [k for k in self._counters if k[:2] == (team, endpoint)]:
                del self._counters[key]

    def _of(self, team: str, endpoint: str) -> list[tuple[str, VariantCounters]]:
        with self._lock:
            return sorted((k[2], v) for k, v in self._counters.items() if k[:2] == (team, endpoint))

    def totals(self, team: str, endpoint: str) -> InvocationStats | None:
        found = self._of(team, endpoint)
        if not found:
            return None
        ok = sum(c.ok for _, c in found)
        client = sum(c.client_errors for _, c in found)
        server = sum(c.server_errors for _, c in found)
        answered = sum(sum(c.model.counts) for _, c in found)
        seconds = sum(c.model.total + c.overhead.total for _, c in found)
        return InvocationStats(
            invocations=ok + client + server,
            client_errors=client,
            server_errors=server,
            mean_latency_ms=round(seconds / answered * 1000, 3) if answered else 0.0,
        )

    def variants(self, team: str, endpoint: str) -> list[VariantMetrics]:
        return [
            VariantMetrics(
                variant=name,
                invocations=c.ok + c.client_errors + c.server_errors,
                client_errors=c.client_errors,
                server_errors=c.server_errors,
                model_latency=c.model.summary(),
                overhead_latency=c.overhead.summary(),
            )
            for name, c in self._of(team, endpoint)
        ]

    def snapshot(self) -> list[tuple[tuple[str, str, str], VariantCounters]]:
        with self._lock:
            return list(self._counters.items())


def capture_stats(
    captured: int, dropped: int, pending: int, uploaded: int, oldest: float | None, flushes: int = 0
) -> CaptureStats:
    lag = max(time.time() - oldest, 0.0) if oldest is not None else 0.0
    return CaptureStats(
        captured=captured,
        dropped=dropped,
        pending=pending,
        uploaded_objects=uploaded,
        flushes=flushes,
        lag_seconds=round(lag, 3),
    )


class ServingCollector(Collector):
    """The data plane's families, read at scrape time from the service's counters."""

    def __init__(self, stats: EndpointStats, captures: Callable[[], list[tuple[str, str, CaptureStats]]]) -> None:
        self.stats = stats
        self.captures = captures

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    @staticmethod
    def _families() -> tuple[Metric, ...]:
        variant = ["team", "endpoint", "variant"]
        endpoint = ["team", "endpoint"]
        return (
            CounterMetricFamily(
                "strongroom_endpoint_invocations",
                "Invocations by endpoint, variant and status class (2xx, 4xx, 5xx)",
                labels=[*variant, "code"],
            ),
            HistogramMetricFamily(
                "strongroom_endpoint_model_latency_seconds",
                "Round trip to the variant's worker process (parse, predict, answer)",
                labels=variant,
            ),
            HistogramMetricFamily(
                "strongroom_endpoint_overhead_seconds",
                "Time the platform added to an answered invocation (routing, capture commit, proxying)",
                labels=variant,
            ),
            CounterMetricFamily(
                "strongroom_endpoint_capture_records", "Capture records made durable in the spool", labels=endpoint
            ),
            CounterMetricFamily(
                "strongroom_endpoint_capture_flushes",
                "Group commits of the capture spool (one synchronous write each, covering every record waiting)",
                labels=endpoint,
            ),
            CounterMetricFamily(
                "strongroom_endpoint_capture_dropped",
                "Capture records that could not be spooled (their request was refused 503)",
                labels=endpoint,
            ),
            GaugeMetricFamily(
                "strongroom_endpoint_capture_lag_seconds",
                "Age of the oldest spooled capture record not yet uploaded to the bucket (0: none)",
                labels=endpoint,
            ),
        )

    def collect(self) -> Iterator[Metric]:
        invocations, model, overhead, records, flushes, dropped, lag = self._families()
        assert isinstance(invocations, CounterMetricFamily)
        for (team, endpoint, variant), c in self.stats.snapshot():
            labels = [team, endpoint, variant]
            for code, value in (("2xx", c.ok), ("4xx", c.client_errors), ("5xx", c.server_errors)):
                invocations.add_metric([*labels, code], value)
            for family, histogram in ((model, c.model), (overhead, c.overhead)):
                assert isinstance(family, HistogramMetricFamily)
                bounds = [*(f"{b:g}" for b in BUCKETS), "+Inf"]
                family.add_metric(
                    labels, list(zip(bounds, [float(n) for n in histogram.cumulative()], strict=True)), histogram.total
                )
        for team, endpoint, capture in self.captures():
            records.add_metric([team, endpoint], float(capture.captured))  # type: ignore[attr-defined]
            flushes.add_metric([team, endpoint], float(capture.flushes))  # type: ignore[attr-defined]
            dropped.add_metric([team, endpoint], float(capture.dropped))  # type: ignore[attr-defined]
            lag.add_metric([team, endpoint], capture.lag_seconds)  # type: ignore[attr-defined]
        yield from (invocations, model, overhead, records, flushes, dropped, lag)
