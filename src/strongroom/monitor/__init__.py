"""Model monitoring: baseline statistics, suggested constraints and violation checks.

The compute core of the managed model monitor's workflow, as plain functions over files and
DataFrames: :func:`read_csv_statistics` / :func:`compute_statistics` (``statistics.json``),
:func:`suggest_constraints` (``constraints.json``) and :func:`check_window`
(``constraint_violations.json``) and :func:`render_report` (the HTML report). See ``docs/monitoring.md``.
"""

from strongroom.monitor.constraints import (
    Constraints,
    DistributionConstraints,
    FeatureConstraints,
    MonitoringConfig,
    constraints_frame,
    statistics_frame,
    suggest_constraints,
)
from strongroom.monitor.distance import bucket_distance, categorical_distance, ks_distance
from strongroom.monitor.report import render_report
from strongroom.monitor.sources import ColumnRule, read_csv_statistics
from strongroom.monitor.statistics import (
    DatasetStatistics,
    FeatureStatistics,
    Sketch,
    StatisticsAccumulator,
    compute_statistics,
)
from strongroom.monitor.violations import CheckResult, Violation, check_window

__all__ = [
    "CheckResult",
    "ColumnRule",
    "Constraints",
    "DatasetStatistics",
    "DistributionConstraints",
    "FeatureConstraints",
    "FeatureStatistics",
    "MonitoringConfig",
    "Sketch",
    "StatisticsAccumulator",
    "Violation",
    "bucket_distance",
    "categorical_distance",
    "check_window",
    "compute_statistics",
    "constraints_frame",
    "ks_distance",
    "read_csv_statistics",
    "render_report",
    "statistics_frame",
    "suggest_constraints",
]
