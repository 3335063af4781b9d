"""The Python client library used by notebooks, the CLI and users."""

from __future__ import annotations

from typing import Any

from strongroom.sdk.session import PlatformUnreachable, Session

__all__ = ["Experiment", "ExperimentAnalytics", "PlatformUnreachable", "Session", "Tracker", "Trial", "TrialComponent"]


def __getattr__(name: str) -> Any:
    # The experiment classes pull in pandas/pyarrow only when used.
    if name in ("Experiment", "ExperimentAnalytics", "Tracker", "Trial", "TrialComponent"):
        from strongroom.sdk import experiments

        return getattr(experiments, name)
    raise AttributeError(name)
