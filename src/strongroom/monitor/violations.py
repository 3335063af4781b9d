"""A window's statistics checked against the baseline and its constraints:
``constraint_violations.json``.

Checks, per baseline feature (excluded ones, such as the label, are skipped):

- ``missing_column_check``: the feature is not in the window, or some rows had too few fields to
  reach its position (see :mod:`strongroom.monitor.sources` for the column rule);
- ``extra_column_check``: a window column the baseline does not have, or fields past the model's
  last feature;
- ``completeness_check``: the window's share of present values is below ``completeness``;
- ``data_type_check``: the share of present values of the baseline's type (an integral number is
  also a valid ``Fractional``; anything is a valid ``String``) is below ``datatype_check_threshold``;
- ``non_negative_check``: negative values where the baseline had none (``is_non_negative``), more
  of them than sampling explains (see :func:`_negative_violation`);
- ``categorical_values_check``: the share of text values inside the baseline's ``domains`` is
  below ``domain_content_threshold``;
- ``baseline_drift_check``: the distance from the baseline (:mod:`strongroom.monitor.distance`) is
  above ``comparison_threshold`` and above the sampling noise of a window that small
  (:func:`noise_floor`).

``evaluate_constraints="Disabled"`` turns off the completeness, type, non-negative and
categorical checks; ``perform_comparison="Disabled"`` the drift check. Column checks always run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from strongroom.monitor.constraints import Constraints, FeatureConstraints
from strongroom.monitor.distance import bucket_distance, categorical_distance, ks_distance
from strongroom.monitor.statistics import DatasetStatistics, FeatureStatistics

CheckType = Literal[
    "data_type_check",
    "completeness_check",
    "baseline_drift_check",
    "missing_column_check",
    "extra_column_check",
    "categorical_values_check",
    "non_negative_check",
]
Status = Literal["Completed", "CompletedWithViolations", "NoData"]
_NUMERIC = ("Integral", "Fractional")


@dataclass(frozen=True)
class Violation:
    feature_name: str
    constraint_check_type: CheckType
    description: str

    def to_json(self) -> dict[str, str]:
        return {
            "feature_name": self.feature_name,
            "constraint_check_type": self.constraint_check_type,
            "description": self.description,
        }


@dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one window.

    ``status`` is ``"NoData"`` for a window without rows (``message`` says so; no violation),
    ``"CompletedWithViolations"`` when any check failed, else ``"Completed"``. ``distances``
    holds every compared feature's distance from the baseline, flagged or not; the bound it was
    held to is ``max(threshold, noise_floors[name])``.
    """

    status: Status
    message: str
    violations: tuple[Violation, ...]
    distances: Mapping[str, float] = field(default_factory=dict)
    threshold: float | None = None
    """``comparison_threshold`` of the drift check (``None``: the comparison did not run)."""
    noise_floors: Mapping[str, float] = field(default_factory=dict)
    """Per compared feature, :func:`noise_floor` of its sample sizes: a distance is drift only
    above both the threshold and this."""

    @property
    def flagged_features(self) -> set[str]:
        return {v.feature_name for v in self.violations}

    def to_json(self) -> dict[str, Any]:
        """``constraint_violations.json``: ``{"violations": [{"feature_name", "constraint_check_type",
        "description"}, ...]}``."""
        return {"violations": [v.to_json() for v in self.violations]}

    def write(self, path: str | Path) -> Path:
        """Write ``constraint_violations.json`` to ``path`` (a file, or a folder to put it in)."""
        target = Path(path)
        if target.is_dir():
            target = target / "constraint_violations.json"
        target.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return target


def check_window(
    window: DatasetStatistics,
    baseline: DatasetStatistics,
    constraints: Constraints,
    *,
    excluded: Sequence[str] = (),
    window_name: str = "the window",
) -> CheckResult:
    """Check a window's statistics against the baseline's statistics and constraints.

    Args:
        window: the window's statistics (from :func:`~strongroom.monitor.sources.read_csv_statistics`
            with the model's feature names, or from a DataFrame).
        baseline: the baseline's statistics (computed here, or read from a ``statistics.json``).
        constraints: the (possibly edited) suggested constraints.
        excluded: baseline columns the window is not expected to have (the label).
        window_name: how messages name the window (for example its time range).
    """
    if window.item_count == 0 and not window.rejected_rows:
        return CheckResult("NoData", f"no data in {window_name}: no row to compare with the baseline", ())
    skip = set(excluded)
    violations = _column_violations(window, baseline, constraints, skip)
    distances: dict[str, float] = {}
    floors: dict[str, float] = {}
    config = constraints.monitoring_config
    for wanted in constraints.features:
        observed = window.feature(wanted.name)
        if wanted.name in skip or observed is None or observed.num_present + observed.num_missing == 0:
            continue
        reference = baseline.feature(wanted.name)
        if config.evaluate_constraints == "Enabled":
            violations += _constraint_violations(wanted, observed, reference, constraints)
        if config.distribution_constraints.perform_comparison == "Enabled" and reference is not None:
            distance = _distance(reference, observed, config.distribution_constraints.comparison_method)
            if distance is None:
                continue
            distances[wanted.name] = distance
            threshold = config.distribution_constraints.comparison_threshold
            method = config.distribution_constraints.comparison_method
            floor = floors[wanted.name] = noise_floor(_values(reference), _values(observed))
            if distance > max(threshold, floor):
                limit = f"threshold: {threshold:g}"
                if floor > threshold:
                    limit += f" and the sampling noise bound {floor:.3g} of so small a sample"
                violations.append(
                    Violation(
                        wanted.name,
                        "baseline_drift_check",
                        f"Baseline drift distance: {distance:.4g} exceeds {limit} "
                        f"({_DISTANCE_NAME[reference.inferred_type == 'String', method]}"
                        " between the baseline's and the window's distributions)",
                    )
                )
    if window.item_count == 0:
        message = f"no row of {window_name} had the expected {window.expected_width} fields"
    elif violations:
        message = f"{len(violations)} violation(s) in {window_name} ({window.item_count} rows)"
    else:
        message = f"no violation in {window_name} ({window.item_count} rows)"
    comparing = config.distribution_constraints.perform_comparison == "Enabled"
    return CheckResult(
        "CompletedWithViolations" if violations else "Completed",
        message,
        tuple(violations),
        distances,
        threshold=config.distribution_constraints.comparison_threshold if comparing else None,
        noise_floors=floors,
    )


def noise_floor(baseline_values: int, window_values: int) -> float:
    """The distance two samples of these sizes from one distribution exceed only once in a thousand.

    The two-sample Kolmogorov-Smirnov bound ``c(a) * sqrt(1/n + 1/m)`` with ``a = 0.001``
    (``c = sqrt(-ln(a/2) / 2)``, about 1.95). A small window (a quiet hour) is noisy: its distance
    must clear this as well as ``comparison_threshold``, or noise alone would raise alarms. For the
    workshop's 24,000 vs 6,000 rows it is 0.028, so the threshold of 0.1 governs.
    """
    if baseline_values <= 0 or window_values <= 0:
        return math.inf
    return _KS_C * math.sqrt(1 / baseline_values + 1 / window_values)


_KS_C = math.sqrt(-math.log(0.001 / 2) / 2)


def _values(feature: FeatureStatistics) -> int:
    if feature.inferred_type == "String" and feature.categories is not None:
        return sum(feature.categories.values())
    return feature.numeric_present if feature.numeric_present is not None else feature.num_present


_DISTANCE_NAME = {
    (False, "Robust"): "Kolmogorov-Smirnov distance",
    (False, "Simple"): "largest bucket share difference",
    (True, "Robust"): "L-infinity distance",
    (True, "Simple"): "L-infinity distance",
}


def _column_violations(
    window: DatasetStatistics, baseline: DatasetStatistics, constraints: Constraints, skip: set[str]
) -> list[Violation]:
    violations = []
    known = {f.name for f in constraints.features} | set(baseline.names)
    present = set(window.names)
    for wanted in constraints.features:
        if wanted.name not in skip and wanted.name not in present:
            violations.append(
                Violation(
                    wanted.name,
                    "missing_column_check",
                    f"Baseline column {wanted.name!r} is not in the window (its columns: {', '.join(window.names)})",
                )
            )
    for name in window.names:
        if name not in known and name not in skip:
            violations.append(Violation(name, "extra_column_check", f"Column {name!r} is not in the baseline"))
    width = window.expected_width
    if width is None or not window.rejected_rows:
        return violations
    for position, name in enumerate(window.names):
        short = sum(n for w, n in window.rejected_rows.items() if w <= position)
        if short and name not in skip:
            violations.append(
                Violation(
                    name,
                    "missing_column_check",
                    f"{short} row(s) had too few fields to reach {name!r} (field {position} of {width}); "
                    "they were not read, so no value moved onto another column",
                )
            )
    widest = max(window.rejected_rows)
    for position in range(width, widest):
        extra = sum(n for w, n in window.rejected_rows.items() if w > position)
        violations.append(
            Violation(
                f"_c{position}",
                "extra_column_check",
                f"{extra} row(s) had a field {position} past the model's {width} features; "
                "they were not read, so no value moved onto another column",
            )
        )
    return violations


def _constraint_violations(
    wanted: FeatureConstraints,
    observed: FeatureStatistics,
    reference: FeatureStatistics | None,
    constraints: Constraints,
) -> list[Violation]:
    config = constraints.monitoring_config
    violations = []
    name = wanted.name
    if observed.completeness < wanted.completeness - 1e-12:
        violations.append(
            Violation(
                name,
                "completeness_check",
                f"Data completeness requirement is not met. Expected: at least {wanted.completeness:.2%} present; "
                f"observed: {observed.completeness:.2%} ({observed.num_missing} of "
                f"{observed.num_present + observed.num_missing} missing)",
            )
        )
    share = _type_share(wanted, observed)
    if share is not None and share < config.datatype_check_threshold - 1e-12:
        violations.append(
            Violation(
                name,
                "data_type_check",
                f"Data type match requirement is not met. Expected data type: {wanted.inferred_type}, "
                f"expected match: {config.datatype_check_threshold:.2%}. "
                f"Observed: only {share:.2%} of data is {wanted.inferred_type} (inferred: {observed.inferred_type})",
            )
        )
    if wanted.num_constraints is not None and wanted.num_constraints.is_non_negative:
        violation = _negative_violation(name, observed, reference)
        if violation is not None:
            violations.append(violation)
    categories = observed.categories
    if wanted.string_constraints is not None and categories:
        domain = set(wanted.string_constraints.domains)
        total = sum(categories.values())
        inside = sum(n for v, n in categories.items() if v in domain)
        if total and inside / total < config.domain_content_threshold - 1e-12:
            unseen = sorted((v for v in categories if v not in domain), key=lambda v: -categories[v])
            violations.append(
                Violation(
                    name,
                    "categorical_values_check",
                    f"Data content requirement is not met. Expected: {config.domain_content_threshold:.2%} of values "
                    f"in the baseline's domain; observed: {inside / total:.2%}. "
                    f"Values not in the domain: {', '.join(repr(v) for v in unseen[:5])}"
                    + (f" and {len(unseen) - 5} more" if len(unseen) > 5 else ""),
                )
            )
    return violations


def _negative_violation(
    name: str, observed: FeatureStatistics, reference: FeatureStatistics | None
) -> Violation | None:
    """A negative value where the baseline had none, beyond what sampling explains.

    The baseline's minimum is a sample minimum: with no drift, each window value falls below the
    minimum of ``n`` baseline values with probability at most ``1/(n+1)`` (exchangeability; ties
    only lower it). Negative values are below that minimum, so with no drift their count in a
    window of ``m`` values is at most Binomial(m, 1/(n+1)); the check flags a count above its mean
    plus three standard deviations plus one. A hard floor (amounts, codes) has no value below it,
    so any real drift below 0 shows up as far more.
    """
    if observed.min is None or observed.min >= 0:
        return None
    values = observed.numeric_present or 0
    if observed.num_negative is not None:
        negative = float(observed.num_negative)
    elif observed.sketch is not None:  # read from JSON: estimate from the sketch
        negative = float(observed.sketch.cdf(np.array([np.nextafter(0.0, -1.0)]))[0]) * values
    else:
        negative = 1.0
    baseline_values = (reference.numeric_present or reference.num_present) if reference is not None else 0
    expected = values / (baseline_values + 1)
    allowed = expected + 3 * math.sqrt(expected) + 1
    if negative <= allowed:
        return None
    return Violation(
        name,
        "non_negative_check",
        f"Data contains negative values: {negative:.0f} of {values} (minimum {observed.min:g}); the baseline had none, "
        f"and sampling alone explains at most {allowed:.1f} below its minimum",
    )


def _type_share(wanted: FeatureConstraints, observed: FeatureStatistics) -> float | None:
    """The share of the window's present values that have the wanted type (None: nothing to check)."""
    if observed.num_present == 0 or wanted.inferred_type in ("String", "Unknown"):
        return None
    counts = observed.type_counts
    if counts is None:  # statistics read from JSON: only the column's inferred type is known
        fits = observed.inferred_type == wanted.inferred_type or (
            wanted.inferred_type == "Fractional" and observed.inferred_type == "Integral"
        )
        return 1.0 if fits else 0.0
    conforming = counts.integral if wanted.inferred_type == "Integral" else counts.integral + counts.fractional
    return conforming / observed.num_present


def _distance(reference: FeatureStatistics, observed: FeatureStatistics, method: str) -> float | None:
    if reference.inferred_type in _NUMERIC:
        if reference.sketch is None or observed.sketch is None:
            return None
        if method == "Simple" and reference.min is not None and reference.max is not None:
            return bucket_distance(reference.sketch, observed.sketch, reference.min, reference.max)
        return ks_distance(reference.sketch, observed.sketch)
    if reference.inferred_type == "String" and reference.categories and observed.categories:
        return categorical_distance(reference.categories, observed.categories)
    return None
