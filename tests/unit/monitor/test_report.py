"""The HTML report of a checked window: what a reader of the workshop's drifted traffic sees, and
that it stays inert and escaped whatever the data's names and values are."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from strongroom.monitor import (
    StatisticsAccumulator,
    check_window,
    read_csv_statistics,
    render_report,
    suggest_constraints,
)
from strongroom.monitor.attribution import check_attribution_drift
from strongroom.monitor.report import histogram

from .conftest import capture_csv, drift

HOSTILE = "<script>alert(1)</script>"


class _Tags(HTMLParser):
    """Collects start tags and their attributes, and the text of each <section>."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(document: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(document)
    return parser.tags


def _section(document: str, feature: str) -> str:
    found = re.search(rf"<section[^>]*><h3>{re.escape(feature)} .*?</section>", document)
    assert found, f"no section for {feature}"
    return found.group(0)


@pytest.fixture(scope="module")
def drifted(split, baseline, constraints, rule):
    _, test = split
    window = read_csv_statistics(capture_csv(drift(test)), feature_names=rule.feature_names)
    return window, check_window(window, baseline, constraints, excluded=rule.excluded)


def test_the_workshops_drift_shows_both_flagged_features_their_distance_and_the_threshold(baseline, drifted):
    window, result = drifted
    document = render_report(baseline, window, result, title="credit-monitor 2026-12-06 08:00-09:00")

    assert document.startswith("<!DOCTYPE html>")
    assert "<h1>credit-monitor 2026-12-06 08:00-09:00</h1>" in document
    assert "CompletedWithViolations" in document
    limit = _section(document, "LIMIT_BAL")
    assert "badge violation" in limit and "baseline_drift_check" in limit
    assert f"Distance <strong>{result.distances['LIMIT_BAL']:.4g}</strong>, threshold 0.1" in limit
    education = _section(document, "EDUCATION")
    assert "baseline_drift_check" in education and "non_negative_check" in education
    unchanged = _section(document, "AGE")
    assert "badge pass" in unchanged and "threshold 0.1" in unchanged
    assert "not compared" in _section(document, "Label")  # excluded: the label is never compared
    # The violations table lists each violation with its description.
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", document)
    assert len(rows) == len(result.violations)
    assert {(f, c) for f, c, _ in rows} == {(v.feature_name, v.constraint_check_type) for v in result.violations}
    # One chart per feature with a distribution, each valid SVG with a bar pair per bucket.
    charts = re.findall(r"<svg.*?</svg>", document)
    assert len(charts) == len(baseline.names)
    for chart in charts:
        ET.fromstring(chart)  # noqa: S314 - our own output, checked to be well-formed XML


def test_the_bars_show_where_the_window_moved(baseline, drifted):
    window, _ = drifted
    education = histogram(baseline.feature("EDUCATION"), window.feature("EDUCATION"))
    assert education is not None
    # A small integer code: one bar per value from the window's -6 to the baseline's 6.
    assert education.labels[0] == "-6" and education.labels[-1] == "6"
    negative = [i for i, label in enumerate(education.labels) if float(label) < 0]
    assert sum(education.baseline[i] for i in negative) == 0
    assert sum(education.window[i] for i in negative) == pytest.approx(0.75, abs=0.03)
    assert sum(education.baseline) == pytest.approx(1.0) and sum(education.window) == pytest.approx(1.0)

    limit = histogram(baseline.feature("LIMIT_BAL"), window.feature("LIMIT_BAL"))
    assert limit is not None and len(limit.labels) == 10
    # Half the window was divided by 1000 and lands in the lowest bucket, with its share of the rest.
    assert limit.window[0] == pytest.approx(0.5 + limit.baseline[0] / 2, abs=0.03)
    assert sum(limit.baseline) == pytest.approx(1.0, abs=1e-9) and sum(limit.window) == pytest.approx(1.0, abs=1e-9)


def test_an_unshifted_window_reports_no_violation(split, baseline, constraints, rule):
    _, test = split
    window = read_csv_statistics(capture_csv(test), feature_names=rule.feature_names)
    result = check_window(window, baseline, constraints, excluded=rule.excluded)
    document = render_report(baseline, window, result, title="unshifted")
    assert "<p>No violation.</p>" in document
    assert "badge violation" not in document
    assert document.count('<span class="badge pass">pass</span>') == len(rule.feature_names)


def test_an_empty_window_renders_its_status_not_an_error(baseline, constraints, rule):
    window = read_csv_statistics(b"", feature_names=rule.feature_names)
    result = check_window(window, baseline, constraints, excluded=rule.excluded, window_name="08:00-09:00")
    document = render_report(baseline, window, result, title="quiet hour")
    assert "NoData" in document and "no data in 08:00-09:00" in document
    assert "<p>No violation.</p>" in document


def test_hostile_names_and_values_render_as_text_and_the_page_loads_nothing():
    base = StatisticsAccumulator()
    base.update(pd.DataFrame({HOSTILE: [1.0, 2.0, 3.0] * 100, "segment": ["retail", "corporate", "retail"] * 100}))
    baseline = base.result()
    now = StatisticsAccumulator()
    evil_value = '"><img src=x onerror=alert(2)>'
    now.update(
        pd.DataFrame(
            {
                HOSTILE: [1.0, 2.0, 3.0] * 100,
                "segment": ["retail", evil_value, "retail"] * 100,
                "<b onmouseover=alert(3)>": [1] * 300,
            }
        )
    )
    window = now.result()
    result = check_window(window, baseline, suggest_constraints(baseline))
    assert result.flagged_features == {"segment", "<b onmouseover=alert(3)>"}

    document = render_report(baseline, window, result, title=f"{HOSTILE} monitor")

    assert "<script" not in document.lower()
    assert "<img" not in document and "<b " not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in document  # the category value, in its bar's title
    assert "&lt;b onmouseover=alert(3)&gt;" in document
    tags = _tags(document)
    assert not [t for t, attrs in tags if any(k.startswith("on") for k in attrs)]
    assert {t for t, _ in tags} <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "dl", "dt", "dd", "span",
        "table", "thead", "tbody", "tr", "th", "td", "div", "section", "strong", "svg", "line", "rect", "text",
    }  # fmt: skip
    # Nothing to fetch: no link, image, frame or stylesheet URL; a CSP forbids them anyway.
    assert not [attrs for _, attrs in tags if {"src", "href"} & set(attrs)]
    assert "url(" not in document
    csp = next(a["content"] for t, a in tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None and csp.startswith("default-src 'none'")


def test_an_attribution_check_gets_its_own_section_with_both_rankings(baseline, drifted):
    window, result = drifted
    reference = {"PAY_0": 0.5, "LIMIT_BAL": 0.33, "PAY_2": 0.29, HOSTILE: 0.14, "AGE": 0.05}
    names = list(reference)
    # The window's requests lean on AGE and barely on PAY_0: the order changed.
    contributions = np.tile([0.01, 0.3, 0.25, 0.1, 0.6, 0.0], (100, 1))  # five features, then the bias
    attribution = check_attribution_drift(reference, contributions, feature_names=names, window_name="08:00-09:00")
    assert attribution.status == "CompletedWithViolations"

    document = render_report(baseline, window, result, title="with attribution", attribution=attribution)
    section = document[document.index("<h2>Feature attribution</h2>") : document.index("<h2>Features</h2>")]
    assert "feature_attribution_drift_check" in section and f"{attribution.score:.6f}" in section
    assert "below 0.9" in section
    ranks = re.findall(r'<tr><td>(.*?)</td><td class="num">(\d+)</td><td class="num">(\d+)</td>', section)
    assert ranks[0] == ("PAY_0", "1", "5") and ("AGE", "5", "1") in ranks
    assert ("&lt;script&gt;alert(1)&lt;/script&gt;", "4", "4") in ranks
    assert "<script" not in document.lower()
    assert "Feature attribution" not in render_report(baseline, window, result, title="without")
