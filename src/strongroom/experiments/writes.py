"""Bulk writes of trial-component data inside a caller's transaction.

One batch (many components, many metrics) costs a handful of statements whatever its size:
parameters, tags and artifacts are replaced with one delete and one multi-row insert each,
metric points are one ``executemany`` insert, and metric summaries are merged in Python with
Chan's parallel update of (count, mean, M2) and written back with one insert and one update.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, delete, insert, or_, select
from sqlalchemy.orm import Session

from strongroom.core.errors import InvalidInput
from strongroom.db.driver import Statement, driver
from strongroom.experiments.db import (
    ArtifactRow,
    ComponentTagRow,
    MetricRow,
    MetricSummaryRow,
    ParameterRow,
    TrialComponentRow,
)
from strongroom.experiments.models import MAX_PARAMETER_NAME, MAX_STRING_VALUE, ArtifactValue, ParameterValue

PARAMS = cast(Table, ParameterRow.__table__)
TAGS = cast(Table, ComponentTagRow.__table__)
ARTIFACTS = cast(Table, ArtifactRow.__table__)
METRICS = cast(Table, MetricRow.__table__)
SUMMARIES = cast(Table, MetricSummaryRow.__table__)
COMPONENTS = cast(Table, TrialComponentRow.__table__)
MAX_METRICS_PER_BATCH = 100_000
_INSERT_METRICS = Statement.of(
    "INSERT INTO trial_component_metrics (component_id, name, value, step, timestamp) VALUES (?, ?, ?, ?, ?)"
)


@dataclass
class Summary:
    count: int = 0
    min: float = math.inf
    max: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    last: float = 0.0
    last_step: int | None = None
    last_timestamp: float = 0.0

    def add(self, value: float, step: int | None, timestamp: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        self.min = min(self.min, value)
        self.max = max(self.max, value)
        self.last, self.last_step, self.last_timestamp = value, step, timestamp

    def merge_into(self, older: Mapping[str, Any]) -> dict[str, Any]:
        """This batch's summary combined with the stored one (the batch is newer)."""
        n_a, n_b = int(older["count"]), self.count
        n = n_a + n_b
        delta = self.mean - float(older["mean"])
        return {
            "count": n,
            "min": min(float(older["min"]), self.min),
            "max": max(float(older["max"]), self.max),
            "mean": float(older["mean"]) + delta * n_b / n,
            "m2": float(older["m2"]) + self.m2 + delta * delta * n_a * n_b / n,
            "last": self.last,
            "last_step": self.last_step,
            "last_timestamp": self.last_timestamp,
        }

    def values(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "m2": self.m2,
            "last": self.last,
            "last_step": self.last_step,
            "last_timestamp": self.last_timestamp,
        }


@dataclass
class MetricBatch:
    """Metric points gathered from a request: parallel columns, one entry per point."""

    component_ids: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    steps: list[int | None] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)

    def extend(
        self,
        component_id: int,
        names: Sequence[str],
        values: Sequence[float],
        steps: Sequence[int | None],
        timestamps: Sequence[float | None],
    ) -> None:
        if not len(names) == len(values) == len(steps) == len(timestamps):
            raise InvalidInput("metric columns must all have the same length", field="metrics")
        now = time.time()
        for name in set(names):
            check_key(name, "metrics.name")
        for value in values:
            if not math.isfinite(value):
                raise InvalidInput("metric values must be finite numbers", field="metrics.value")
        self.component_ids.extend([component_id] * len(names))
        self.names.extend(names)
        self.values.extend(float(v) for v in values)
        self.steps.extend(steps)
        self.timestamps.extend(now if t is None else float(t) for t in timestamps)
        if len(self.names) > MAX_METRICS_PER_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_METRICS_PER_BATCH} metric points", field="metrics")

    def __len__(self) -> int:
        return len(self.names)


def check_key(name: object, field: str) -> str:
    """Parameter, metric, tag and artifact names: 1-256 printable characters."""
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_PARAMETER_NAME or not name.isprintable():
        raise InvalidInput(f"{field} {name!r} must be 1-{MAX_PARAMETER_NAME} printable characters", field=field)
    return name


def parameter_row(component_id: int, name: str, value: ParameterValue) -> dict[str, Any]:
    check_key(name, "parameters")
    if isinstance(value, bool | str):
        text = str(value)
        if len(text) > MAX_STRING_VALUE:
            raise InvalidInput(f"parameter {name!r} is longer than {MAX_STRING_VALUE} characters", field="parameters")
        return {"component_id": component_id, "name": name, "number_value": None, "string_value": text}
    if isinstance(value, int | float):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInput(f"parameter {name!r} must be a finite number or a string", field="parameters")
        return {"component_id": component_id, "name": name, "number_value": number, "string_value": None}
    raise InvalidInput(f"parameter {name!r} must be a number or a string", field="parameters")


def _replace(session: Session, table: Any, key_columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    """Delete the rows with these keys, then insert them (an upsert that works everywhere)."""
    if not rows:
        return
    columns = [table.c[k] for k in key_columns]
    keys = {tuple(r[k] for k in key_columns) for r in rows}
    for chunk in _chunks(sorted(keys), 300):
        if len(columns) == 1:
            session.execute(delete(table).where(columns[0].in_([k[0] for k in chunk])))
        else:
            session.execute(
                delete(table).where(or_(*(and_(*(c == v for c, v in zip(columns, k, strict=True))) for k in chunk)))
            )
    session.execute(insert(table), rows)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def put_parameters(session: Session, rows: list[dict[str, Any]]) -> None:
    _replace(session, PARAMS, ("component_id", "name"), rows)


def put_tags(session: Session, rows: list[dict[str, Any]]) -> None:
    _replace(session, TAGS, ("component_id", "key"), rows)


def artifact_rows(component_id: int, direction: str, artifacts: Mapping[str, ArtifactValue]) -> list[dict[str, Any]]:
    return [
        {
            "component_id": component_id,
            "direction": direction,
            "name": check_key(name, f"{direction}s"),
            "uri": a.value,
            "media_type": a.media_type,
            "sha256": a.sha256,
            "version_id": a.version_id,
        }
        for name, a in artifacts.items()
    ]


def put_artifacts(session: Session, rows: list[dict[str, Any]]) -> None:
    _replace(session, ARTIFACTS, ("component_id", "direction", "name"), rows)


def component_ids(session: Session, team: str, names: Sequence[str]) -> dict[str, int]:
    """The ids of ``team``'s components named ``names`` (those that exist)."""
    found: dict[str, int] = {}
    if len(names) == 1:  # the hottest case (a tracker's own component), sent to the driver
        found.update(driver(session).execute(_COMPONENT_ID, {"team": team, "name": names[0]}))
        return found
    connection = session.connection()
    for chunk in _chunks(names, 500):
        found.update(
            (name, id_) for name, id_ in connection.execute(_COMPONENT_IDS, {"team": team, "names": list(chunk)})
        )
    return found


def put_metrics(session: Session, batch: MetricBatch) -> None:
    """Insert the points and fold them into the stored summaries."""
    if not len(batch):
        return
    # Bound straight through the driver's executemany (SQLAlchemy's per-row parameter
    # processing would cost more than the insert itself).
    db = driver(session)
    db.execute_many(
        _INSERT_METRICS,
        zip(batch.component_ids, batch.names, batch.values, batch.steps, batch.timestamps, strict=True),
    )
    fresh: dict[tuple[int, str], Summary] = {}
    for c, n, v, s, t in zip(
        batch.component_ids, batch.names, batch.values, batch.steps, batch.timestamps, strict=True
    ):
        summary = fresh.get((c, n))
        if summary is None:
            summary = fresh[(c, n)] = Summary()
        summary.add(v, s, t)
    stored: dict[tuple[int, str], Any] = {}
    keys = sorted(fresh)
    for chunk in _chunks(keys, 400):
        wanted: dict[str, Any]
        found: Sequence[Mapping[Any, Any]]
        if len(chunk) == 1:  # one series (a durable log_metric): sent to the driver
            wanted = {"component_id": chunk[0][0], "name": chunk[0][1]}
            found = [dict(zip(_SUMMARY_COLUMNS, row, strict=True)) for row in db.execute(_STORED_SUMMARY, wanted)]
        else:
            # One cached statement whatever the batch (a tuple IN list is rebuilt and re-coerced
            # for every batch); it may return a few pairs not in the batch, which the dict
            # lookup below ignores.
            wanted = {"component_ids": sorted({c for c, _ in chunk}), "names": sorted({n for _, n in chunk})}
            found = session.connection().execute(_STORED_SUMMARIES, wanted).mappings().all()
        for row in found:
            stored[(row["component_id"], row["name"])] = row
    inserts = [{"component_id": c, "name": n, **fresh[(c, n)].values()} for c, n in keys if (c, n) not in stored]
    updates = [
        {"b_component_id": c, "b_name": n, **fresh[(c, n)].merge_into(stored[(c, n)])}
        for c, n in keys
        if (c, n) in stored
    ]
    if inserts:
        db.execute_many(_INSERT_SUMMARY, inserts)
    if updates:
        db.execute_many(_MERGE_SUMMARY, updates)


_COMPONENT_ID = Statement.of("SELECT name, id FROM trial_components WHERE team = :team AND name = :name")
_COMPONENT_IDS = select(COMPONENTS.c.name, COMPONENTS.c.id).where(
    COMPONENTS.c.team == bindparam("team"), COMPONENTS.c.name.in_(bindparam("names", expanding=True))
)
_SUMMARY_COLUMNS = tuple(c.name for c in SUMMARIES.columns)
_STORED_SUMMARY = Statement.of(
    f"SELECT {', '.join(_SUMMARY_COLUMNS)} FROM {SUMMARIES.name}"  # noqa: S608 (names of the schema)
    " WHERE component_id = :component_id AND name = :name"
)
_STORED_SUMMARIES = select(SUMMARIES).where(
    SUMMARIES.c.component_id.in_(bindparam("component_ids", expanding=True)),
    SUMMARIES.c.name.in_(bindparam("names", expanding=True)),
)
_INSERT_SUMMARY = Statement.insert(SUMMARIES, ("component_id", "name", *Summary().values()))
_MERGE_SUMMARY = Statement.of(
    f"UPDATE {SUMMARIES.name} SET {', '.join(f'{k} = :{k}' for k in Summary().values())}"  # noqa: S608 (names of the schema)
    " WHERE component_id = :b_component_id AND name = :b_name"
)
