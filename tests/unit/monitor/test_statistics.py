"""Baseline and window statistics: the statistics.json shape, per-value type inference, streaming
CSV (with and without a header) and exact merging of partitions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from strongroom.core.errors import InvalidInput
from strongroom.demo.data import credit_default
from strongroom.monitor import (
    DatasetStatistics,
    StatisticsAccumulator,
    compute_statistics,
    read_csv_statistics,
)

from .conftest import MODEL_FEATURES, capture_csv


def test_baseline_statistics_json_has_the_managed_monitors_shape(baseline: DatasetStatistics, split, tmp_path):
    train, _ = split
    document = json.loads(baseline.write(tmp_path).read_text())
    assert (tmp_path / "statistics.json").is_file()
    assert document["version"] == 0
    assert document["dataset"] == {"item_count": 24_000}
    assert [f["name"] for f in document["features"]] == ["Label", *MODEL_FEATURES]
    types = {f["name"]: f["inferred_type"] for f in document["features"]}
    assert types["Label"] == types["LIMIT_BAL"] == types["EDUCATION"] == "Integral"
    assert types["PAY_AMT1"] == types["BILL_AMT1"] == "Fractional"  # the scaled columns

    limit = next(f for f in document["features"] if f["name"] == "LIMIT_BAL")["numerical_statistics"]
    assert set(limit) == {"common", "mean", "sum", "std_dev", "min", "max", "distribution"}
    assert limit["common"] == {"num_present": 24_000, "num_missing": 0}
    assert limit["mean"] == pytest.approx(train["LIMIT_BAL"].mean(), rel=1e-12)
    assert limit["sum"] == train["LIMIT_BAL"].sum()
    assert limit["std_dev"] == pytest.approx(train["LIMIT_BAL"].std(ddof=0), rel=1e-9)
    assert (limit["min"], limit["max"]) == (train["LIMIT_BAL"].min(), train["LIMIT_BAL"].max())
    kll = limit["distribution"]["kll"]
    assert len(kll["buckets"]) == 10
    assert set(kll["buckets"][0]) == {"lower_bound", "upper_bound", "count"}
    assert kll["buckets"][0]["lower_bound"] == limit["min"] and kll["buckets"][-1]["upper_bound"] == limit["max"]
    assert sum(b["count"] for b in kll["buckets"]) == pytest.approx(24_000)
    assert kll["sketch"]["parameters"] == {"c": pytest.approx(2 / 3), "k": 2048.0}
    levels = kll["sketch"]["data"]
    assert all(isinstance(level, list) for level in levels)
    # An item at level i stands for 2**i rows: the weights add up to the row count.
    assert sum(len(level) * 2**i for i, level in enumerate(levels)) == 24_000


def test_bucket_counts_follow_the_data(baseline: DatasetStatistics, split):
    train, _ = split
    buckets = baseline.feature("LIMIT_BAL").buckets()
    edges = [b["lower_bound"] for b in buckets] + [buckets[-1]["upper_bound"]]
    # Buckets are (lower, upper], the first one closed: count the rows at or below each upper bound.
    right_closed = np.diff(np.concatenate([[0], [np.sum(train["LIMIT_BAL"] <= e) for e in edges[1:]]]))
    assert [b["count"] for b in buckets] == pytest.approx(right_closed, abs=24_000 * 0.003)


def test_text_columns_get_string_statistics_with_distinct_count_and_top_values():
    frame = pd.DataFrame({"segment": ["retail"] * 5 + ["corporate"] * 3 + [None] * 2, "amount": range(10)})
    document = compute_statistics([frame]).to_json()
    segment = document["features"][0]
    assert segment["inferred_type"] == "String"
    stats = segment["string_statistics"]
    assert stats["common"] == {"num_present": 8, "num_missing": 2}
    assert stats["distinct_count"] == 2
    assert stats["distribution"]["categorical"]["buckets"] == [
        {"value": "retail", "count": 5},
        {"value": "corporate", "count": 3},
    ]
    assert document["features"][1]["inferred_type"] == "Integral"


def test_types_are_inferred_per_value_as_the_managed_monitor_does():
    csv = b"whole,halves,ratio,mixed\n50.0,1,0.5,7\n200000,2,1.5,x\n,3.0,2,8\n"
    stats = read_csv_statistics(csv)
    types = {f.name: f.inferred_type for f in stats.features}
    # 50.0 is an integral number whatever its spelling; any text makes a column String.
    assert types == {"whole": "Integral", "halves": "Integral", "ratio": "Fractional", "mixed": "String"}
    whole = stats.feature("whole")
    assert (whole.num_present, whole.num_missing) == (2, 1)
    mixed = stats.feature("mixed")
    assert mixed.type_counts.text == 1 and mixed.type_counts.integral == 2
    assert mixed.categories == {"x": 1}


def test_a_text_value_deep_in_a_numeric_column_rereads_that_column_as_text():
    rows = [f"{i},{i * 2}" for i in range(200_000)]
    rows[150_000] = "150000,n/a-ish"  # after the first blocks, which read as numbers
    stats = read_csv_statistics(("a,b\n" + "\n".join(rows) + "\n").encode(), block_size=1 << 16)
    assert stats.item_count == 200_000
    b = stats.feature("b")
    assert b.inferred_type == "String"
    assert b.type_counts.integral == 199_999 and b.categories == {"n/a-ish": 1}
    assert stats.feature("a").inferred_type == "Integral"


def test_headerless_capture_rows_map_onto_the_feature_names_by_position(split):
    _, test = split
    stats = read_csv_statistics(capture_csv(test), feature_names=MODEL_FEATURES)
    assert stats.names == MODEL_FEATURES
    assert stats.item_count == 6000 and stats.rejected_rows == {}
    assert stats.feature("LIMIT_BAL").mean == pytest.approx(test["LIMIT_BAL"].mean())
    assert stats.feature("PAY_AMT1").mean == pytest.approx(test["PAY_AMT1"].mean())


def test_rows_of_another_width_are_counted_not_read():
    csv = b"1,2,3\n4,5\n6,7,8,9\n10,11,12\n"
    stats = read_csv_statistics(csv, feature_names=["a", "b", "c"])
    assert stats.item_count == 2
    assert stats.rejected_rows == {2: 1, 4: 1}
    assert stats.feature("c").max == 12  # never 9 or 5: nothing shifted
    document = stats.to_json()
    assert document["dataset"] == {"item_count": 2, "rows_with_unexpected_width": {"2": 1, "4": 1}, "expected_width": 3}
    assert DatasetStatistics.from_json(document).rejected_rows == {2: 1, 4: 1}


def test_merged_statistics_of_two_halves_equal_those_of_the_whole():
    data = credit_default(60_000, seed=7)
    whole = StatisticsAccumulator()
    whole.update(data)
    first, second = StatisticsAccumulator(), StatisticsAccumulator()
    for start in range(0, 30_000, 7_000):  # uneven batches inside each half
        first.update(data.iloc[start : min(start + 7_000, 30_000)])
    second.update(data.iloc[30_000:])
    merged = first.merge(second).result()
    expected = whole.result()
    assert merged.item_count == expected.item_count == 60_000
    for name in data.columns:
        a, b = merged.feature(name), expected.feature(name)
        column = data[name].to_numpy(dtype=np.float64)
        assert (a.num_present, a.num_missing, a.min, a.max) == (b.num_present, b.num_missing, b.min, b.max)
        assert a.sum == b.sum == column.sum()  # integers: exact in float64
        assert a.mean == pytest.approx(b.mean, rel=1e-12) and a.mean == pytest.approx(column.mean(), rel=1e-12)
        assert a.std_dev == pytest.approx(column.std(), rel=1e-9) and a.std_dev == pytest.approx(b.std_dev, rel=1e-9)
        # Quantiles from the merged sketch sit within the KLL rank error of the true quantile.
        items, weights = a.sketch.weighted()
        cumulative = np.cumsum(weights) / weights.sum()
        ordered = np.sort(column)
        for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99):
            estimate = items[np.searchsorted(cumulative, q)]
            lo = np.searchsorted(ordered, estimate, side="left") / len(ordered)
            hi = np.searchsorted(ordered, estimate, side="right") / len(ordered)
            assert lo - 0.005 <= q <= hi + 0.005, (name, q, estimate, lo, hi)


def test_small_integer_columns_are_counted_exactly_and_switch_to_the_sketch_when_they_widen():
    rng = np.random.default_rng(4)
    codes = rng.integers(-2, 9, 50_000)  # repayment-status-like codes: counted exactly
    wide = np.concatenate([codes[:25_000], rng.integers(0, 1_000_000, 25_000)])  # widens halfway
    frame = pd.DataFrame({"codes": codes, "wide": wide})
    one = compute_statistics([frame.iloc[i : i + 10_000] for i in range(0, 50_000, 10_000)])
    left, right = StatisticsAccumulator(), StatisticsAccumulator()
    left.update(frame.iloc[:25_000])  # still exact for both columns
    right.update(frame.iloc[25_000:])  # "wide" is sketched here
    merged = left.merge(right).result()
    for stats in (one, merged):
        exact = stats.feature("codes").sketch
        items, weights = exact.weighted()
        values, counts = np.unique(codes, return_counts=True)
        assert {v: weights[items == v].sum() for v in values} == dict(zip(values, counts.astype(float), strict=True))
        sketched = stats.feature("wide").sketch
        _, w = sketched.weighted()
        assert w.sum() == 50_000
        for q in (0.6, 0.75, 0.9):  # the continuous half (the lower half is ties on 11 codes)
            point = np.quantile(wide, q)
            assert sketched.cdf(np.array([point]))[0] == pytest.approx(q, abs=0.005)


def test_partitions_from_other_processes_merge_through_a_json_state_not_pickle():
    data = credit_default(20_000, seed=8)
    parts = []
    for start in (0, 10_000):
        accumulator = StatisticsAccumulator()
        accumulator.update(data.iloc[start : start + 10_000])
        accumulator.update(pd.DataFrame({"note": [None] * 3}))  # a column with no value yet
        parts.append(json.loads(json.dumps(accumulator.to_state(), allow_nan=False)))  # crosses the process boundary
    merged = StatisticsAccumulator.from_state(parts[0]).merge(StatisticsAccumulator.from_state(parts[1])).result()
    whole = compute_statistics([data])
    assert merged.item_count == 20_006
    assert (merged.feature("note").num_missing, merged.feature("note").inferred_type) == (20_006, "Unknown")
    for name in data.columns:
        a, b = merged.feature(name), whole.feature(name)
        assert (a.num_present, a.sum, a.min, a.max) == (b.num_present, b.sum, b.min, b.max)
        assert a.std_dev == pytest.approx(b.std_dev, rel=1e-9)
    with pytest.raises(InvalidInput):
        StatisticsAccumulator.from_state({"k": 2048, "rows": 1})


def test_merging_partitions_with_different_columns_counts_the_absent_ones_as_missing():
    left = StatisticsAccumulator()
    left.update(pd.DataFrame({"a": [1, 2], "b": [3, 4]}))
    right = StatisticsAccumulator()
    right.update(pd.DataFrame({"a": [5.5]}))
    merged = left.merge(right).result()
    assert merged.item_count == 3
    assert (merged.feature("b").num_present, merged.feature("b").num_missing) == (2, 1)
    assert merged.feature("a").inferred_type == "Fractional"


def test_statistics_json_reads_back_into_the_same_statistics(baseline: DatasetStatistics, tmp_path):
    again = DatasetStatistics.read(baseline.write(tmp_path / "statistics.json"))
    assert again.to_json() == baseline.to_json()
    points = np.array([20_000.0, 50_000.0, 140_000.0, 500_000.0])
    original = baseline.feature("LIMIT_BAL").sketch.cdf(points)
    assert again.feature("LIMIT_BAL").sketch.cdf(points) == pytest.approx(original)


def test_a_statistics_file_that_is_not_one_is_refused_naming_the_field():
    with pytest.raises(InvalidInput) as caught:
        DatasetStatistics.from_json({"version": 0, "features": []})
    assert caught.value.field == "statistics"


def test_a_baseline_without_a_header_row_is_refused():
    with pytest.raises(InvalidInput, match="header"):
        read_csv_statistics(b"")


def test_a_csv_file_on_disk_reads_like_its_bytes(split, tmp_path):
    train, _ = split
    path = tmp_path / "train_headers.csv"
    train.to_csv(path, index=False)
    from_file, from_bytes = read_csv_statistics(path), read_csv_statistics(path.read_bytes())
    # KLL compaction flips coins, so the sketches (and buckets) differ within their error; the rest not.
    for a, b in zip(from_file.features, from_bytes.features, strict=True):
        assert (a.name, a.inferred_type, a.num_present, a.num_missing, a.sum, a.min, a.max) == (
            b.name, b.inferred_type, b.num_present, b.num_missing, b.sum, b.min, b.max)  # fmt: skip
        assert a.mean == pytest.approx(b.mean, rel=1e-12) and a.std_dev == pytest.approx(b.std_dev, rel=1e-9)
    with pytest.raises(InvalidInput, match="no CSV file"):
        read_csv_statistics(tmp_path / "missing.csv")


def test_large_batches_are_compacted_into_the_sketch_in_the_librarys_own_form():
    from datasketches import kll_doubles_sketch

    from strongroom.monitor.statistics import KLL_K, _compacted, _sketch_levels

    values = np.random.default_rng(3).lognormal(10, 1, 46_000)
    level = 5  # 46,000 values in at most 2,048 items: every 32nd
    kept = (len(values) >> level) << level
    sketch = _compacted(values[:kept], level, KLL_K, np.random.default_rng(0))
    assert sketch.n == kept and sketch.k == KLL_K
    assert sketch.get_min_value() == values[:kept].min() and sketch.get_max_value() == values[:kept].max()
    # The installed DataSketches reads it back as a valid sketch: sorted items at one level.
    levels = _sketch_levels(kll_doubles_sketch.deserialize(sketch.serialize()), KLL_K).levels
    assert [len(items) for items in levels] == [0] * level + [kept >> level]
    assert list(levels[level]) == sorted(levels[level])
    merged = kll_doubles_sketch(KLL_K)
    merged.update(values[kept:].copy())
    merged.merge(sketch)
    assert merged.n == len(values)


def test_sketched_quantiles_stay_within_the_rank_error_on_a_million_values():
    values = np.random.default_rng(4).lognormal(10, 1, 1_000_000)
    accumulator = StatisticsAccumulator()
    for start in range(0, len(values), 46_000):  # CSV blocks of about this many rows
        accumulator.update(pd.DataFrame({"amount": values[start : start + 46_000]}))
    feature = accumulator.result().feature("amount")
    assert feature is not None and feature.sketch is not None
    points = np.quantile(values, np.linspace(0.01, 0.99, 99))
    true = np.searchsorted(np.sort(values), points, side="right") / len(values)
    assert np.max(np.abs(feature.sketch.cdf(points) - true)) < 0.003  # KLL at k=2048: about 0.0014
    assert feature.min == values.min() and feature.max == values.max()
