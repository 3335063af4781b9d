"""Error outcomes in the capture, the monitor's window of served inputs, and the latency histograms."""

from __future__ import annotations

import datetime as dt

import pytest

from strongroom.core.errors import InvalidInput
from strongroom.serving import capture
from strongroom.serving.models import DataCaptureConfig
from strongroom.serving.stats import BUCKETS, EndpointStats, Histogram

CONFIG = DataCaptureConfig.model_validate({"DestinationS3Uri": "sr://risk-data/monitoring/datacapture"})
WHEN = dt.datetime(2026, 12, 6, 5, 7, 9, 123456, tzinfo=dt.UTC)


def test_a_refused_request_is_an_error_outcome_with_no_output() -> None:
    problem = InvalidInput(
        "row 1 has 3 columns; the model takes 4 features (no header, no label)",
        field="body[row 1][column 4]",
        row=1,
        column=4,
    ).to_problem()
    record = capture.error_record(CONFIG, "text/csv", b"20000,2,2", problem, WHEN)
    assert record["captureData"] == {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "20000,2,2", "encoding": "CSV"}
    }
    metadata = record["eventMetadata"]
    assert isinstance(metadata, dict)
    assert metadata["outcome"] == "error" and metadata["inferenceTime"] == "2026-12-06T05:07:09.123Z"
    assert metadata["error"] == {
        "status": 422,
        "title": "Invalid input",
        "detail": "row 1 has 3 columns; the model takes 4 features (no header, no label)",
        "field": "body[row 1][column 4]",
        "row": 1,
        "column": 4,
    }
    assert capture.is_error(record)


def test_the_monitor_window_holds_only_served_csv_inputs() -> None:
    served = capture.capture_record(CONFIG, "text/csv", b"20000,2,2,1", "text/csv", b"0.1", WHEN)
    many = capture.capture_record(CONFIG, "text/csv", b"1,2,3,4\n5,6,7,8\n", "text/csv", b"0.2\n0.3", WHEN)
    as_json = capture.capture_record(CONFIG, "application/json", b"[[1,2,3,4]]", "application/json", b"{}", WHEN)
    refused = capture.error_record(CONFIG, "text/csv", b"1,2,x,4", {"status": 422, "detail": "x"}, WHEN)
    assert not capture.is_error(served)
    assert capture.served_csv([served, refused, as_json, many]) == b"20000,2,2,1\n1,2,3,4\n5,6,7,8\n"
    assert capture.served_csv([refused]) == b""


def test_histogram_quantiles_interpolate_inside_buckets() -> None:
    histogram = Histogram()
    for _ in range(98):
        histogram.observe(0.0015)  # in (0.001, 0.002]
    histogram.observe(0.2)
    histogram.observe(100.0)  # over the last bound: +Inf
    summary = histogram.summary()
    assert summary.count == 100 and summary.buckets["+Inf"] == 100 and summary.buckets["0.002"] == 98
    assert 1.0 < summary.p50_ms <= 2.0
    assert summary.p99_ms == pytest.approx(250.0)  # the 99th falls in (0.1, 0.25]: its upper bound
    assert len(summary.buckets) == len(BUCKETS) + 1


def test_counters_per_variant_and_totals() -> None:
    stats = EndpointStats()
    stats.record("risk", "credit", "AllTraffic", 200, 0.002, 0.003)
    stats.record("risk", "credit", "AllTraffic", 422, 0.001, 0.0015)
    stats.record("risk", "credit", "", 415, 0.0, 0.0001)  # refused before a variant was chosen
    stats.record("risk", "credit", "Green", 503, 0.0, 0.01)
    by_variant = {v.variant: v for v in stats.variants("risk", "credit")}
    assert set(by_variant) == {"", "AllTraffic", "Green"}
    assert (by_variant["AllTraffic"].invocations, by_variant["AllTraffic"].client_errors) == (2, 1)
    assert by_variant["AllTraffic"].model_latency.count == 2 and by_variant["Green"].server_errors == 1
    totals = stats.totals("risk", "credit")
    assert totals is not None
    assert (totals.invocations, totals.client_errors, totals.server_errors) == (4, 2, 1)
    stats.forget("risk", "credit")
    assert stats.totals("risk", "credit") is None
