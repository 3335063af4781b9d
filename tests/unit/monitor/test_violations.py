"""Checking captured windows against the workshop's baseline: the drift scenario of notebook 02,
no false alarms on unshifted data at any size, and every column and type problem named."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from strongroom.demo.data import credit_default
from strongroom.monitor import (
    ColumnRule,
    Constraints,
    DatasetStatistics,
    StatisticsAccumulator,
    check_window,
    compute_statistics,
    read_csv_statistics,
    suggest_constraints,
)

from .conftest import MODEL_FEATURES, capture_csv, drift


def _check(rows: bytes, baseline, constraints, rule: ColumnRule):
    window = read_csv_statistics(rows, feature_names=rule.feature_names)
    return check_window(window, baseline, constraints, excluded=rule.excluded)


def test_the_workshops_drifted_traffic_flags_exactly_limit_bal_and_education(
    split, baseline, constraints, rule, tmp_path
):
    _, test = split
    result = _check(capture_csv(drift(test)), baseline, constraints, rule)
    assert result.status == "CompletedWithViolations"
    assert result.flagged_features == {"LIMIT_BAL", "EDUCATION"}
    drifted = {v.feature_name for v in result.violations if v.constraint_check_type == "baseline_drift_check"}
    assert drifted == {"LIMIT_BAL", "EDUCATION"}
    assert result.distances["LIMIT_BAL"] == pytest.approx(0.5, abs=0.03)  # half the rows moved below all others
    assert result.distances["EDUCATION"] == pytest.approx(0.75, abs=0.03)
    education = [v.constraint_check_type for v in result.violations if v.feature_name == "EDUCATION"]
    assert "non_negative_check" in education

    document = json.loads(result.write(tmp_path).read_text())
    assert (tmp_path / "constraint_violations.json").is_file()
    assert set(document) == {"violations"}
    assert all(set(v) == {"feature_name", "constraint_check_type", "description"} for v in document["violations"])
    limit = next(v for v in document["violations"] if v["feature_name"] == "LIMIT_BAL")
    assert "0.1" in limit["description"] and "Kolmogorov-Smirnov" in limit["description"]


def test_an_unshifted_held_out_split_of_6000_rows_flags_nothing(split, baseline, constraints, rule):
    _, test = split
    result = _check(capture_csv(test), baseline, constraints, rule)
    assert result.violations == ()
    assert result.status == "Completed"
    assert max(result.distances.values()) < 0.05
    assert set(result.distances) == set(MODEL_FEATURES)  # the label is excluded, everything else compared


@pytest.mark.slow  # two 1,000,000-row tables
def test_identical_distributions_at_a_million_rows_flag_nothing():
    def statistics(seed: int) -> DatasetStatistics:
        accumulator = StatisticsAccumulator()
        for part in range(4):
            accumulator.update(credit_default(250_000, seed=seed * 10 + part))
        return accumulator.result()

    baseline, window = statistics(1), statistics(2)
    constraints = suggest_constraints(baseline)
    result = check_window(window, baseline, constraints)
    assert result.violations == ()
    # A distance, not a p-value: a million rows estimate it to within sampling and sketch error.
    assert max(result.distances.values()) < 0.01


def test_the_label_is_only_skipped_when_declared_excluded(split, baseline, constraints):
    _, test = split
    window = read_csv_statistics(capture_csv(test), feature_names=MODEL_FEATURES)
    result = check_window(window, baseline, constraints)  # nothing excluded
    assert [(v.feature_name, v.constraint_check_type) for v in result.violations] == [("Label", "missing_column_check")]


def test_rows_missing_a_column_are_a_missing_column_violation_never_a_shift(split, baseline, constraints, rule):
    _, test = split
    short = test[["Label", *MODEL_FEATURES[:-1]]]  # the client dropped the last feature (PAY_AMT6)
    result = _check(short[MODEL_FEATURES[:-1]].to_csv(header=False, index=False).encode(), baseline, constraints, rule)
    assert [(v.feature_name, v.constraint_check_type) for v in result.violations] == [
        ("PAY_AMT6", "missing_column_check")
    ]
    assert "6000 row(s)" in result.violations[0].description
    assert result.status == "CompletedWithViolations"
    assert "expected 23 fields" in result.message


def test_some_short_rows_are_reported_and_the_rest_still_checked(split, baseline, constraints, rule):
    _, test = split
    lines = capture_csv(test).decode().splitlines()
    for i in range(0, 30):
        lines[i] = ",".join(lines[i].split(",")[:20])  # fields 20, 21, 22 absent
    result = _check(("\n".join(lines) + "\n").encode(), baseline, constraints, rule)
    missing = [v for v in result.violations if v.constraint_check_type == "missing_column_check"]
    assert [v.feature_name for v in missing] == MODEL_FEATURES[20:]
    assert all(v.description.startswith("30 row(s)") for v in missing)
    assert result.flagged_features == set(MODEL_FEATURES[20:])


def test_an_extra_field_is_an_extra_column_violation(split, baseline, constraints, rule):
    _, test = split
    wide = test[MODEL_FEATURES].assign(request_id=range(len(test)))
    result = _check(wide.to_csv(header=False, index=False).encode(), baseline, constraints, rule)
    assert [(v.feature_name, v.constraint_check_type) for v in result.violations] == [("_c23", "extra_column_check")]


def test_a_named_window_is_matched_by_name(split, baseline, constraints):
    _, test = split
    window = compute_statistics([test.drop(columns=["Label", "AGE"]).assign(channel="web")])
    result = check_window(window, baseline, constraints, excluded=["Label"])
    assert sorted((v.feature_name, v.constraint_check_type) for v in result.violations) == [
        ("AGE", "missing_column_check"),
        ("channel", "extra_column_check"),
    ]


def test_wrong_types_are_a_data_type_violation(split, baseline, constraints, rule):
    _, test = split
    broken = test[MODEL_FEATURES].astype(object)
    broken.loc[:99, "AGE"] = "forty"  # text in an integer column
    broken.loc[:, "SEX"] = test["SEX"] + 0.5  # fractions in an integer column
    result = _check(broken.to_csv(header=False, index=False).encode(), baseline, constraints, rule)
    types = {v.feature_name: v.description for v in result.violations if v.constraint_check_type == "data_type_check"}
    assert set(types) == {"AGE", "SEX"}
    assert "Expected data type: Integral" in types["AGE"] and "98.33%" in types["AGE"]
    assert "0.00% of data is Integral" in types["SEX"]
    # An integral value is a valid Fractional: the scaled columns never trip on it.
    assert not {"PAY_AMT1", "BILL_AMT1"} & result.flagged_features


def test_missing_values_are_a_completeness_violation(split, baseline, constraints, rule):
    _, test = split
    holes = test[MODEL_FEATURES].copy()
    holes["AGE"] = holes["AGE"].astype(float)
    holes.loc[:9, "AGE"] = np.nan
    result = _check(holes.to_csv(header=False, index=False).encode(), baseline, constraints, rule)
    assert [(v.feature_name, v.constraint_check_type) for v in result.violations] == [("AGE", "completeness_check")]
    assert "10 of 6000 missing" in result.violations[0].description


def test_an_empty_window_has_a_clear_status_not_an_exception(baseline, constraints, rule):
    window = read_csv_statistics(b"", feature_names=rule.feature_names)
    result = check_window(window, baseline, constraints, excluded=rule.excluded, window_name="05:00 to 06:00 UTC")
    assert result.status == "NoData"
    assert result.message == "no data in 05:00 to 06:00 UTC: no row to compare with the baseline"
    assert result.to_json() == {"violations": []}


def test_unseen_categories_are_a_categorical_values_violation():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"channel": rng.choice(["web", "branch", "phone"], 5000), "amount": rng.gamma(2, 100, 5000)})
    baseline = compute_statistics([train])
    constraints = suggest_constraints(baseline)
    assert constraints.feature("channel").string_constraints.domains == ["branch", "phone", "web"]
    window = pd.DataFrame({"channel": ["web"] * 90 + ["crypto-atm"] * 10, "amount": rng.gamma(2, 100, 100)})
    result = check_window(compute_statistics([window]), baseline, constraints)
    checks = {(v.feature_name, v.constraint_check_type) for v in result.violations}
    assert ("channel", "categorical_values_check") in checks
    assert "'crypto-atm'" in next(v.description for v in result.violations if v.feature_name == "channel")
    assert ("channel", "baseline_drift_check") in checks  # 90% web against about a third
    assert "amount" not in {name for name, _ in checks}


def test_thresholds_are_editable(split, baseline, constraints: Constraints, rule):
    _, test = split
    relaxed = Constraints.from_json(constraints.to_json())
    relaxed.monitoring_config.distribution_constraints.comparison_threshold = 0.8
    result = _check(capture_csv(drift(test)), baseline, relaxed, rule)
    drifted = {v.feature_name for v in result.violations if v.constraint_check_type == "baseline_drift_check"}
    assert drifted == set()  # 0.50 and 0.75 are under 0.8
    assert {v.constraint_check_type for v in result.violations} == {"non_negative_check"}

    relaxed.monitoring_config.distribution_constraints.perform_comparison = "Disabled"
    relaxed.monitoring_config.evaluate_constraints = "Disabled"
    assert _check(capture_csv(drift(test)), baseline, relaxed, rule).violations == ()


def test_a_baseline_read_back_from_json_gives_the_same_verdicts(split, baseline, constraints, rule, tmp_path):
    _, test = split
    stored = DatasetStatistics.read(baseline.write(tmp_path))
    stored_constraints = Constraints.read(constraints.write(tmp_path))
    window = read_csv_statistics(capture_csv(drift(test)), feature_names=rule.feature_names)
    fresh = check_window(window, baseline, constraints, excluded=rule.excluded)
    again = check_window(window, stored, stored_constraints, excluded=rule.excluded)
    assert again.violations == fresh.violations


def test_the_simple_method_compares_bucket_shares(split, baseline, constraints, rule):
    _, test = split
    simple = Constraints.from_json(constraints.to_json())
    simple.monitoring_config.distribution_constraints.comparison_method = "Simple"
    unshifted = _check(capture_csv(test), baseline, simple, rule)
    assert unshifted.violations == ()
    drifted = _check(capture_csv(drift(test)), baseline, simple, rule)
    assert {v.feature_name for v in drifted.violations if v.constraint_check_type == "baseline_drift_check"} == {
        "LIMIT_BAL",
        "EDUCATION",
    }


def test_a_quiet_hour_of_100_requests_flags_drift_but_not_noise(split, baseline, constraints, rule):
    _, test = split
    few = test.sample(100, random_state=3)
    assert _check(capture_csv(few), baseline, constraints, rule).violations == ()
    drifted = _check(capture_csv(drift(few)), baseline, constraints, rule)
    assert drifted.flagged_features == {"LIMIT_BAL", "EDUCATION"}
