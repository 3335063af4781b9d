"""Model monitoring: baseline statistics, suggested constraints and violation checks.

The compute core of the managed model monitor's workflow, as plain functions over files and
DataFrames: :func:`read_csv_statistics` / :func:`compute_statistics` (``statistics.json``),
:func:`suggest_constraints` (``constraints.json``) and :func:`check_window`
(``constraint_violations.json``) and :func:`render_report` (the HTML report). See ``docs/monitoring.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module: loaded on first use, so the SDK (a client-only install, without numpy or
# pyarrow) can import strongroom.monitor.models without the compute core.
_LAZY = {
    "CheckResult": "strongroom.monitor.violations",
    "ColumnRule": "strongroom.monitor.sources",
    "Constraints": "strongroom.monitor.constraints",
    "DatasetStatistics": "strongroom.monitor.statistics",
    "DistributionConstraints": "strongroom.monitor.constraints",
    "FeatureConstraints": "strongroom.monitor.constraints",
    "FeatureStatistics": "strongroom.monitor.statistics",
    "MonitoringConfig": "strongroom.monitor.constraints",
    "Sketch": "strongroom.monitor.statistics",
    "StatisticsAccumulator": "strongroom.monitor.statistics",
    "Violation": "strongroom.monitor.violations",
    "bucket_distance": "strongroom.monitor.distance",
    "categorical_distance": "strongroom.monitor.distance",
    "check_window": "strongroom.monitor.violations",
    "compute_statistics": "strongroom.monitor.statistics",
    "constraints_frame": "strongroom.monitor.constraints",
    "ks_distance": "strongroom.monitor.distance",
    "read_csv_statistics": "strongroom.monitor.sources",
    "render_report": "strongroom.monitor.report",
    "statistics_frame": "strongroom.monitor.constraints",
    "suggest_constraints": "strongroom.monitor.constraints",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'strongroom.monitor' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
