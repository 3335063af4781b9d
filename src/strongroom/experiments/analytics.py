"""Experiment analytics: a search expression in, one row per trial component out, in columns.

The search expression is the managed service's shape::

    {"Filters": [{"Name": "Parents.TrialName", "Operator": "Equals", "Value": "my-trial"}],
     "Operator": "And"}

Filters are compiled to SQLAlchemy expressions with bound parameters only: the field path must
match one of the whitelisted forms below and the operator one of ``OPERATORS``; anything else
is ``InvalidInput`` naming the filter. The table is built with one query per kind of data
(components, parameters, metric summaries, artifacts, trials), each joined to the same filtered
id subquery, and returned column by column (JSON or Arrow) so 10,000 components stay cheap.

Field paths: ``TrialComponentName``, ``DisplayName``, ``Status``, ``Source``, ``SourceType``,
``CreatedBy``, ``Parents.TrialName``, ``Parents.ExperimentName``, ``Parameters.<name>``,
``Metrics.<name>.<Min|Max|Avg|Last|Count>`` (``Metrics.<name>`` means Last), ``Tags.<key>``.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from strongroom.core.errors import InvalidInput
from strongroom.experiments.db import (
    ArtifactRow,
    ComponentTagRow,
    ExperimentRow,
    MetricSummaryRow,
    ParameterRow,
    TrialComponentRow,
    TrialLinkRow,
    TrialRow,
)

OPERATORS = (
    "Equals",
    "NotEquals",
    "GreaterThan",
    "GreaterThanOrEqualTo",
    "LessThan",
    "LessThanOrEqualTo",
    "Contains",
    "In",
)
STATS = {"Min": "min", "Max": "max", "Avg": "mean", "Last": "last", "Count": "count"}
COLUMN_STATS = ("Min", "Max", "Avg", "StdDev", "Last", "Count")
TIME_COLUMNS = ("StartTime", "EndTime", "CreationTime")
MAX_FILTERS = 50
MAX_IN_VALUES = 1000
C = TrialComponentRow.__table__
P = ParameterRow.__table__
S = MetricSummaryRow.__table__
A = ArtifactRow.__table__
T = ComponentTagRow.__table__
L = TrialLinkRow.__table__
TR = TrialRow.__table__
E = ExperimentRow.__table__
BASE_FIELDS = {
    "TrialComponentName": C.c.name,
    "DisplayName": C.c.display_name,
    "Status": C.c.status,
    "Status.PrimaryStatus": C.c.status,
    "Source": C.c.source,
    "Source.SourceArn": C.c.source,
    "SourceType": C.c.source_type,
    "CreatedBy": C.c.created_by,
}


class Filter(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(alias="Name", max_length=512)
    operator: str = Field(alias="Operator", max_length=32)
    value: str | float | int | list[str | float | int] = Field(alias="Value")


class SearchExpression(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    filters: list[Filter] = Field(default_factory=list, alias="Filters", max_length=MAX_FILTERS)
    operator: Literal["And", "Or"] = Field(default="And", alias="Operator")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_name: str | None = Field(default=None, max_length=64)
    search_expression: SearchExpression | None = None
    sort_by: str | None = Field(default=None, max_length=512)
    sort_order: Literal["Ascending", "Descending"] = "Ascending"
    max_results: int = Field(default=100_000, ge=1, le=100_000)


class Columns(BaseModel):
    """A table in columns: ``data[column][row]``; ``columns`` gives the order.

    Times (``StartTime``, ``EndTime``, ``CreationTime``) are UTC datetimes, ISO 8601 in JSON.
    """

    columns: list[str]
    data: dict[str, list[Any]]
    count: int


def std_dev(count: int, m2: float) -> float:
    """Sample standard deviation from Welford's M2 (0 for fewer than two points)."""
    return math.sqrt(max(m2, 0.0) / (count - 1)) if count > 1 else 0.0


def _bad(index: int, flt: Filter, why: str) -> InvalidInput:
    return InvalidInput(f"filter {index} ({flt.name!r} {flt.operator!r}): {why}", field=f"Filters[{index}]")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _values(index: int, flt: Filter) -> list[Any]:
    raw = flt.value
    items = raw if isinstance(raw, list) else [v.strip() for v in str(raw).split(",")]
    if not items or len(items) > MAX_IN_VALUES:
        raise _bad(index, flt, f"In takes 1-{MAX_IN_VALUES} values")
    return items


def _compare(index: int, flt: Filter, column: Any, value: Any, numeric: bool) -> ColumnElement[bool]:
    op = flt.operator
    if op == "In":
        values = _values(index, flt)
        if numeric:
            numbers = [_number(v) for v in values]
            if any(n is None for n in numbers):
                raise _bad(index, flt, "In on a number field takes numbers")
            return column.in_(numbers)
        return column.in_([str(v) for v in values])
    if isinstance(value, list):
        raise _bad(index, flt, "a list value is only allowed with In")
    if op == "Contains":
        if numeric:
            raise _bad(index, flt, "Contains applies to text fields")
        return column.like(_like(str(value)), escape="\\")
    if numeric:
        number = _number(value)
        if number is None:
            raise _bad(index, flt, f"{value!r} is not a number")
        value = number
    else:
        value = str(value)
    comparisons = {
        "Equals": column == value,
        "NotEquals": column != value,
        "GreaterThan": column > value,
        "GreaterThanOrEqualTo": column >= value,
        "LessThan": column < value,
        "LessThanOrEqualTo": column <= value,
    }
    return comparisons[op]


def _check_key(index: int, flt: Filter, key: str) -> str:
    if not key or len(key) > 256 or not key.isprintable():
        raise _bad(index, flt, "the name after the prefix must be 1-256 printable characters")
    return key


def compile_filter(index: int, flt: Filter) -> ColumnElement[bool]:
    """One filter as a SQL condition on ``trial_components`` (bound parameters only)."""
    if flt.operator not in OPERATORS:
        raise _bad(index, flt, f"unknown operator; use one of {', '.join(OPERATORS)}")
    field = flt.name
    if field in BASE_FIELDS:
        return _compare(index, flt, BASE_FIELDS[field], flt.value, numeric=False)
    if field in ("Parents.TrialName", "Parents.ExperimentName"):
        column = TR.c.name if field == "Parents.TrialName" else E.c.name
        where = _compare(index, flt, column, flt.value, numeric=False)
        sub = select(L.c.component_id).join(TR, TR.c.id == L.c.trial_id)
        if field == "Parents.ExperimentName":
            sub = sub.join(E, E.c.id == TR.c.experiment_id)
        if flt.operator == "NotEquals":  # no parent with that name (not: some other parent)
            positive = _compare(index, flt.model_copy(update={"operator": "Equals"}), column, flt.value, False)
            return C.c.id.not_in(sub.where(positive))
        return C.c.id.in_(sub.where(where))
    prefix, _, rest = field.partition(".")
    if prefix == "Parameters":
        key = _check_key(index, flt, rest)
        sample = flt.value[0] if isinstance(flt.value, list) and flt.value else flt.value
        numeric = flt.operator != "Contains" and _number(sample) is not None
        column = P.c.number_value if numeric else P.c.string_value
        where = and_(P.c.component_id == C.c.id, P.c.name == key, _compare(index, flt, column, flt.value, numeric))
        return exists().where(where)
    if prefix == "Metrics":
        name, dot, stat = rest.rpartition(".")
        if not dot or stat not in STATS:
            name, stat = rest, "Last"
        key = _check_key(index, flt, name)
        column = S.c[STATS[stat]]
        where = and_(S.c.component_id == C.c.id, S.c.name == key, _compare(index, flt, column, flt.value, True))
        return exists().where(where)
    if prefix == "Tags":
        key = _check_key(index, flt, rest)
        where = and_(T.c.component_id == C.c.id, T.c.key == key, _compare(index, flt, T.c.value, flt.value, False))
        return exists().where(where)
    raise _bad(
        index,
        flt,
        "unknown field; use TrialComponentName, DisplayName, Status, Source, SourceType, CreatedBy, "
        "Parents.TrialName, Parents.ExperimentName, Parameters.<name>, Metrics.<name>[.<stat>] or Tags.<key>",
    )


def matching_ids(team: str, request: SearchRequest) -> Any:
    """The filtered component ids as a subquery (``experiment_name`` narrows to that experiment)."""
    query = select(C.c.id).where(C.c.team == team)
    if request.experiment_name:
        in_experiment = (
            select(L.c.component_id)
            .join(TR, TR.c.id == L.c.trial_id)
            .join(E, E.c.id == TR.c.experiment_id)
            .where(E.c.name == request.experiment_name, E.c.team == team)
        )
        query = query.where(C.c.id.in_(in_experiment))
    expression = request.search_expression
    if expression and expression.filters:
        conditions = [compile_filter(i, f) for i, f in enumerate(expression.filters)]
        query = query.where(and_(true(), *conditions) if expression.operator == "And" else or_(false(), *conditions))
    return query


def _fix_type(values: list[Any]) -> list[Any]:
    """A parameter column that mixes numbers and strings becomes all strings."""
    kinds = {type(v) for v in values if v is not None}
    if float in kinds and str in kinds:
        return [None if v is None else (format(v, "g") if isinstance(v, float) else v) for v in values]
    return values


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while the rows are fetched and pivoted.

    10,000 components are 110,000 row tuples: their allocation triggers collections that walk
    the whole server heap, which cost as much as the queries themselves (measured: 1.5 s with,
    0.7 s without). The rows hold no cycles; reference counting still frees them. Another
    thread's search may re-enable the collector early: that only costs time.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def build(session: Session, team: str, request: SearchRequest) -> Columns:
    """Run the search and pivot parameters, metric summaries and artifacts into columns.

    The table is read in six statements, from one snapshot: under PostgreSQL's default (read
    committed) a component created between the first and a later one would bring rows that no
    row of the table belongs to. SQLite's read transaction is a snapshot from its first read.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    with _no_cyclic_gc():
        return _build(session, team, request)


def _build(session: Session, team: str, request: SearchRequest) -> Columns:
    ids = matching_ids(team, request)
    base = session.execute(
        select(
            C.c.id,
            C.c.name,
            C.c.display_name,
            C.c.source,
            C.c.source_type,
            C.c.status,
            C.c.start_time,
            C.c.end_time,
            C.c.created_at,
            C.c.created_by,
        )
        .where(C.c.id.in_(ids))
        .order_by(C.c.id)
    ).all()
    n = len(base)
    columns_of_base: list[Any] = list(zip(*base, strict=True)) if base else [()] * 10
    row_of = {cid: i for i, cid in enumerate(columns_of_base[0])}
    data: dict[str, list[Any]] = {
        "TrialComponentName": list(columns_of_base[1]),
        "DisplayName": list(columns_of_base[2]),
        "SourceArn": list(columns_of_base[3]),
        "SourceType": list(columns_of_base[4]),
        "Status": list(columns_of_base[5]),
        "StartTime": list(columns_of_base[6]),
        "EndTime": list(columns_of_base[7]),
        "CreationTime": list(columns_of_base[8]),
        "CreatedBy": list(columns_of_base[9]),
    }
    fixed = list(data)
    params: dict[str, list[Any]] = {}
    for cid, name, number, text in session.execute(
        select(P.c.component_id, P.c.name, P.c.number_value, P.c.string_value).where(P.c.component_id.in_(ids))
    ).all():
        column = params.get(name)
        if column is None:
            column = params[name] = [None] * n
        column[row_of[cid]] = number if number is not None else text
    metrics: dict[str, list[list[Any]]] = {}  # name -> [Min, Max, Avg, StdDev, Last, Count] columns
    for cid, name, count, low, high, mean, m2, last in session.execute(
        select(S.c.component_id, S.c.name, S.c.count, S.c.min, S.c.max, S.c.mean, S.c.m2, S.c.last).where(
            S.c.component_id.in_(ids)
        )
    ).all():
        stats = metrics.get(name)
        if stats is None:
            stats = metrics[name] = [[None] * n for _ in COLUMN_STATS]
        i = row_of[cid]
        stats[0][i], stats[1][i], stats[2][i], stats[4][i], stats[5][i] = low, high, mean, last, count
        stats[3][i] = math.sqrt(max(m2, 0.0) / (count - 1)) if count > 1 else 0.0  # std_dev, inlined
    artifacts: dict[tuple[str, str], list[Any]] = {}
    for cid, direction, name, uri, media_type in session.execute(
        select(A.c.component_id, A.c.direction, A.c.name, A.c.uri, A.c.media_type).where(A.c.component_id.in_(ids))
    ).all():
        for suffix, value in (("MediaType", media_type), ("Value", uri)):
            column = artifacts.get((direction, f"{name} - {suffix}"))
            if column is None:
                column = artifacts[(direction, f"{name} - {suffix}")] = [None] * n
            column[row_of[cid]] = value
    trials: list[list[str]] = [[] for _ in range(n)]
    experiments: list[list[str]] = [[] for _ in range(n)]
    for cid, trial, experiment in session.execute(
        select(L.c.component_id, TR.c.name, E.c.name)
        .join(TR, TR.c.id == L.c.trial_id)
        .join(E, E.c.id == TR.c.experiment_id)
        .where(L.c.component_id.in_(ids))
        .order_by(TR.c.name)
    ).all():
        i = row_of[cid]
        trials[i].append(trial)
        if experiment not in experiments[i]:
            experiments[i].append(experiment)
    for name in sorted(params):
        data.setdefault(name, _fix_type(params[name]))
    for name in sorted(metrics):
        for stat, column in zip(COLUMN_STATS, metrics[name], strict=True):
            data.setdefault(f"{name} - {stat}", column)
    for direction in ("input", "output"):
        for (d, name), column in sorted(artifacts.items()):
            if d == direction:
                data.setdefault(name, column)
    data["Trials"] = trials
    data["Experiments"] = experiments
    order = _order(data, n, request)
    if order is not None:
        data = {k: [v[i] for i in order] for k, v in data.items()}
    if n > request.max_results:
        data = {k: v[: request.max_results] for k, v in data.items()}
        n = request.max_results
    columns = fixed + [c for c in data if c not in fixed]
    return Columns.model_construct(columns=columns, data=data, count=n)


def _sort_column(data: dict[str, list[Any]], sort_by: str) -> list[Any]:
    aliases = {"Name": "TrialComponentName", "CreationTime": "CreationTime", "StartTime": "StartTime"}
    if sort_by in aliases:
        return data[aliases[sort_by]]
    if sort_by in data:
        return data[sort_by]
    prefix, _, rest = sort_by.partition(".")
    if prefix.lower() == "parameters" and rest in data:
        return data[rest]
    if prefix.lower() == "metrics":
        name, _, stat = rest.rpartition(".")
        if f"{name} - {stat}" in data:
            return data[f"{name} - {stat}"]
        if f"{rest} - Last" in data:
            return data[f"{rest} - Last"]
    raise InvalidInput(
        f"cannot sort by {sort_by!r}: use Name, CreationTime, StartTime, Parameters.<name> or "
        "Metrics.<name>.<Min|Max|Avg|StdDev|Last|Count> of a column in the result",
        field="sort_by",
    )


def _order(data: dict[str, list[Any]], n: int, request: SearchRequest) -> list[int] | None:
    """Row order for ``sort_by`` (missing values last); ``None`` keeps creation order."""
    if not request.sort_by or n == 0:
        return None if request.sort_order == "Ascending" else list(range(n - 1, -1, -1))
    column = _sort_column(data, request.sort_by)
    present = [i for i in range(n) if column[i] is not None]
    missing = [i for i in range(n) if column[i] is None]
    kinds = {type(column[i]) for i in present}
    key = (lambda i: str(column[i])) if len(kinds) > 1 else (lambda i: column[i])
    present.sort(key=key, reverse=request.sort_order == "Descending")
    return present + missing


def to_arrow(table: Columns) -> bytes:
    import pyarrow as pa  # only analytics responses need it; keeps the server's footprint small

    """The table as an Arrow IPC stream (what the SDK turns into a DataFrame)."""
    arrays: dict[str, Any] = {}
    for name in table.columns:
        values = table.data[name]
        if name in TIME_COLUMNS:
            arrays[name] = pa.array(values, pa.timestamp("us", tz="UTC"))
        elif name in ("Trials", "Experiments"):
            arrays[name] = pa.array(values, pa.list_(pa.string()))
        else:
            arrays[name] = pa.array(values)
    batch = pa.table(arrays)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_table(batch)
    return bytes(sink.getvalue().to_pybytes())


def columns_to_rows(table: Columns) -> Iterable[dict[str, Any]]:
    for i in range(table.count):
        yield {c: table.data[c][i] for c in table.columns}
