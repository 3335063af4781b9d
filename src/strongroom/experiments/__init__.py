"""Experiments: experiments, trials, trial components, metrics, and analytics DataFrames.

The workshop-style classes (``Tracker``, ``Experiment``, ``Trial``, ``ExperimentAnalytics``)
are the SDK's; they are importable from here too.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Experiment", "ExperimentAnalytics", "Tracker", "Trial", "TrialComponent"]


def __getattr__(name: str) -> Any:
    # Lazy, so the server-side domain does not import the SDK (and its HTTP client) on start-up.
    if name in __all__:
        from strongroom.sdk import experiments

        return getattr(experiments, name)
    raise AttributeError(name)
