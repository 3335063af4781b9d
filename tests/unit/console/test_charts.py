"""The console's server-drawn charts: a latency histogram kept cumulatively comes out as one column
per bucket, bars scale to a round maximum, and a threshold line sits where its value is."""

from __future__ import annotations

from strongroom.console import charts
from strongroom.serving.stats import Histogram


def test_a_cumulative_histogram_becomes_one_column_per_bucket_in_milliseconds() -> None:
    histogram = Histogram()
    for seconds in (0.0008, 0.003, 0.003, 0.004, 0.02, 45.0):
        histogram.observe(seconds)
    chart = charts.histogram("model-0", "Model latency", histogram.summary().buckets)

    counted = {b.label: int(b.value) for b in chart.bars if b.value != "0"}
    assert counted == {"≤1ms": 1, "≤5ms": 3, "≤25ms": 1, ">30s": 1}
    assert [b.tick for b in chart.bars][:3] == ["0.5ms", "1ms", "2ms"] and chart.bars[-1].tick == ">30s"
    assert chart.line_label == "5"  # the axis' round maximum above the tallest column (3)
    tallest = max(chart.bars, key=lambda b: b.height)
    assert tallest.label == "≤5ms" and tallest.y + tallest.height == chart.plot_bottom
    assert chart.description == "≤1ms: 1; ≤5ms: 3; ≤25ms: 1; >30s: 1"


def test_an_empty_histogram_says_so() -> None:
    chart = charts.histogram("overhead-0", "Overhead", Histogram().summary().buckets)
    assert all(b.height == 0 for b in chart.bars) and chart.description == "no invocation answered yet"


def test_rows_flag_features_and_draw_the_threshold_where_its_value_is() -> None:
    chart = charts.rows(
        "drift",
        "Distance from the baseline",
        [("LIMIT_BAL", 0.51, "flagged"), ("EDUCATION", 0.05, ""), ("AGE", float("nan"), "")],
        line=0.2,
        line_label="threshold 0.2",
        fmt="{:.3f}",
    )
    limit, education, age = chart.bars
    assert limit.kind == "flagged" and education.kind == ""
    assert chart.line is not None
    scale = limit.width / 0.51  # px per unit of distance
    assert abs((chart.line - charts.LABEL) - 0.2 * scale) < 1e-6
    assert abs(education.width - 0.05 * scale) < 1e-6
    assert age.value == "nan" and age.width == 0 and chart.description.startswith("LIMIT_BAL: 0.510; EDUCATION: 0.050")
