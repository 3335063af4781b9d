"""The Python client library used by notebooks, the CLI and users."""

from __future__ import annotations

from typing import Any

from strongroom.sdk.session import PlatformUnreachable, Session

__all__ = [
    "CronExpressionGenerator",
    "DatasetFormat",
    "DefaultModelMonitor",
    "Experiment",
    "ExperimentAnalytics",
    "PlatformUnreachable",
    "Session",
    "Tracker",
    "Trial",
    "TrialComponent",
]
_MONITOR = ("CronExpressionGenerator", "DatasetFormat", "DefaultModelMonitor", "ModelExplainabilityMonitor")


def __getattr__(name: str) -> Any:
    # The experiment classes pull in pandas/pyarrow only when used.
    if name in ("Experiment", "ExperimentAnalytics", "Tracker", "Trial", "TrialComponent"):
        from strongroom.sdk import experiments

        return getattr(experiments, name)
    if name in _MONITOR:
        from strongroom.sdk import monitor

        return getattr(monitor, name)
    raise AttributeError(name)
