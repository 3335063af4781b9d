"""Suggested constraints: the constraints.json shape, editable validated thresholds, and the
DataFrame views notebook 02 shows."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from strongroom.core.errors import InvalidInput
from strongroom.monitor import (
    Constraints,
    DatasetStatistics,
    compute_statistics,
    constraints_frame,
    statistics_frame,
    suggest_constraints,
)

from .conftest import MODEL_FEATURES


def test_constraints_json_has_the_managed_monitors_shape(constraints: Constraints, tmp_path):
    document = json.loads(constraints.write(tmp_path).read_text())
    assert (tmp_path / "constraints.json").is_file()
    assert document["version"] == 0
    assert document["monitoring_config"] == {
        "evaluate_constraints": "Enabled",
        "emit_metrics": "Enabled",
        "datatype_check_threshold": 1.0,
        "domain_content_threshold": 1.0,
        "distribution_constraints": {
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.1,
            "comparison_method": "Robust",
        },
    }
    features = {f["name"]: f for f in document["features"]}
    assert list(features) == ["Label", *MODEL_FEATURES]
    assert features["LIMIT_BAL"] == {
        "name": "LIMIT_BAL",
        "inferred_type": "Integral",
        "completeness": 1.0,
        "num_constraints": {"is_non_negative": True},
    }
    # Bills can be credits (negative); the standard-scaled payment is negative below its mean.
    assert features["BILL_AMT2"]["num_constraints"] == {"is_non_negative": False}
    assert features["PAY_AMT1"]["inferred_type"] == "Fractional"
    assert features["PAY_AMT1"]["num_constraints"] == {"is_non_negative": False}


def test_a_column_with_gaps_gets_a_completeness_below_its_share_and_text_a_domain():
    frame = {"segment": (["retail", "corporate"] * 500), "age": [30.0] * 900 + [None] * 100}
    constraints = suggest_constraints(compute_statistics([pd.DataFrame(frame)]))
    age, segment = constraints.feature("age"), constraints.feature("segment")
    assert 0.85 <= age.completeness < 0.9  # 90% present, less the 95% interval, rounded down
    assert segment.string_constraints is not None and segment.string_constraints.domains == ["corporate", "retail"]
    assert segment.num_constraints is None


def test_excluded_columns_get_no_constraints(baseline: DatasetStatistics):
    assert suggest_constraints(baseline, excluded=["Label"]).feature("Label") is None


def test_an_edited_file_is_validated_naming_the_field(constraints: Constraints):
    document = constraints.to_json()
    document["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = 0.25
    assert Constraints.from_json(document).monitoring_config.distribution_constraints.comparison_threshold == 0.25

    document["monitoring_config"]["distribution_constraints"]["comparison_threshold"] = 2
    with pytest.raises(InvalidInput) as caught:
        Constraints.from_json(document)
    assert caught.value.field == "monitoring_config.distribution_constraints.comparison_threshold"

    document = constraints.to_json()
    document["monitoring_config"]["datatype_check_treshold"] = 0.9  # a typo must not pass silently
    with pytest.raises(InvalidInput, match="datatype_check_treshold"):
        Constraints.from_json(document)


def test_assigning_an_out_of_range_threshold_fails_at_once(constraints: Constraints):
    edited = Constraints.from_json(constraints.to_json())
    with pytest.raises(ValueError, match="less than or equal to 1"):
        edited.monitoring_config.datatype_check_threshold = 1.5


def test_the_notebooks_dataframe_views(baseline: DatasetStatistics, constraints: Constraints):
    stats = statistics_frame(baseline)
    assert list(stats["name"]) == ["Label", *MODEL_FEATURES]
    for column in ("inferred_type", "numerical_statistics.common.num_present", "numerical_statistics.mean",
                   "numerical_statistics.std_dev", "numerical_statistics.distribution.kll.buckets"):  # fmt: skip
        assert column in stats.columns
    assert not any("sketch" in column for column in stats.columns)  # thousands of numbers: not a table cell
    limits = stats.set_index("name").loc["LIMIT_BAL"]
    assert limits["numerical_statistics.min"] == baseline.feature("LIMIT_BAL").min

    view = constraints_frame(constraints)
    assert {"name", "inferred_type", "completeness", "num_constraints.is_non_negative"} <= set(view.columns)
    assert view.set_index("name").loc["EDUCATION", "num_constraints.is_non_negative"]
    assert statistics_frame(baseline.to_json()).equals(stats)  # a loaded statistics.json shows the same
