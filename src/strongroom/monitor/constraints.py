"""Suggested constraints (``constraints.json``) from baseline statistics, and the DataFrame views
the workshop notebook shows of both files.

Every threshold is a field of :class:`Constraints` a user may edit before monitoring with it
(``constraints.monitoring_config.distribution_constraints.comparison_threshold = 0.2``) or edit in
the JSON file; :meth:`Constraints.read` validates an edited file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from strongroom.core.errors import InvalidInput
from strongroom.monitor.statistics import DatasetStatistics, InferredType

Switch = Literal["Enabled", "Disabled"]
MAX_DOMAIN = 20
"""A text column with at most this many distinct values gets a domain (``string_constraints``)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class NumConstraints(_Model):
    is_non_negative: bool


class StringConstraints(_Model):
    domains: list[str]


class FeatureConstraints(_Model):
    """What a window's column must satisfy."""

    name: str
    inferred_type: InferredType
    completeness: float = Field(ge=0.0, le=1.0)
    num_constraints: NumConstraints | None = None
    string_constraints: StringConstraints | None = None


class DistributionConstraints(_Model):
    perform_comparison: Switch = "Enabled"
    comparison_threshold: float = Field(default=0.1, gt=0.0, le=1.0)
    """The largest distance from the baseline that is not drift (see ``strongroom.monitor.distance``)."""
    comparison_method: Literal["Robust", "Simple"] = "Robust"


class MonitoringConfig(_Model):
    evaluate_constraints: Switch = "Enabled"
    emit_metrics: Switch = "Enabled"
    datatype_check_threshold: float = Field(default=1.0, ge=0.0, le=1.0)
    """The smallest share of a window's present values that must have the baseline's type."""
    domain_content_threshold: float = Field(default=1.0, ge=0.0, le=1.0)
    """The smallest share of a window's text values that must be in the baseline's domain."""
    distribution_constraints: DistributionConstraints = Field(default_factory=DistributionConstraints)


class Constraints(_Model):
    """``constraints.json``."""

    version: int = 0
    features: list[FeatureConstraints]
    monitoring_config: MonitoringConfig = Field(default_factory=MonitoringConfig)

    def feature(self, name: str) -> FeatureConstraints | None:
        """The named feature's constraints, or ``None``."""
        return next((f for f in self.features if f.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Constraints:
        """Read and validate a ``constraints.json`` document (an edited one too).

        Raises:
            InvalidInput: a field is missing, unknown or out of range (named in the message).
        """
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidInput(f"constraints.json: {where}: {first['msg']}", field=where or "constraints") from exc

    def write(self, path: str | Path) -> Path:
        """Write ``constraints.json`` to ``path`` (a file, or a folder to put it in)."""
        target = Path(path)
        if target.is_dir():
            target = target / "constraints.json"
        target.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return target

    @classmethod
    def read(cls, path: str | Path) -> Constraints:
        """Read and validate a ``constraints.json`` file."""
        return cls.from_json(json.loads(Path(path).read_text()))


def suggest_constraints(
    statistics: DatasetStatistics,
    *,
    config: MonitoringConfig | None = None,
    excluded: Sequence[str] = (),
) -> Constraints:
    """Constraints a window should meet, suggested from baseline statistics.

    Per feature: its inferred type; ``completeness`` 1.0 if the baseline has no missing value,
    else the lower end of the baseline share's 95% confidence interval, rounded down to two
    decimals (so ordinary sampling noise in a window passes); ``is_non_negative`` for numeric
    features whose baseline minimum is not below 0; the ``domains`` of text features with at most
    ``MAX_DOMAIN`` distinct values. Features named in ``excluded`` (the label) get none.
    """
    features = []
    for feature in statistics.features:
        if feature.name in excluded:
            continue
        suggestion = FeatureConstraints(
            name=feature.name,
            inferred_type=feature.inferred_type,
            completeness=_completeness(feature.num_present, feature.num_present + feature.num_missing),
        )
        if feature.inferred_type in ("Integral", "Fractional"):
            suggestion.num_constraints = NumConstraints(is_non_negative=feature.min is not None and feature.min >= 0)
        elif (
            feature.inferred_type == "String"
            and feature.categories is not None
            and (feature.distinct_count or 0) <= MAX_DOMAIN
        ):
            suggestion.string_constraints = StringConstraints(domains=sorted(feature.categories))
        features.append(suggestion)
    return Constraints(features=features, monitoring_config=config or MonitoringConfig())


def _completeness(present: int, total: int) -> float:
    if total == 0 or present == total:
        return 1.0
    share = present / total
    low = share - 1.96 * math.sqrt(share * (1 - share) / total)
    return max(0.0, math.floor(low * 100) / 100)


def statistics_frame(statistics: DatasetStatistics | Mapping[str, Any]) -> pd.DataFrame:
    """``statistics.json``'s features as the notebook shows them: one row per feature, nested fields
    flattened (``numerical_statistics.mean``, ...), the sketch data left out for readability."""
    document = statistics.to_json() if isinstance(statistics, DatasetStatistics) else statistics
    features = []
    for feature in document["features"]:
        shown = json.loads(json.dumps(feature))
        shown.get("numerical_statistics", {}).get("distribution", {}).get("kll", {}).pop("sketch", None)
        features.append(shown)
    return pd.json_normalize(features)


def constraints_frame(constraints: Constraints | Mapping[str, Any]) -> pd.DataFrame:
    """``constraints.json``'s features, one row per feature, as the notebook shows them."""
    document = constraints.to_json() if isinstance(constraints, Constraints) else constraints
    return pd.json_normalize(document["features"])
