"""Per-feature statistics of a dataset in one streaming, vectorised pass, in the managed model
monitor's ``statistics.json`` shape.

A :class:`StatisticsAccumulator` takes Arrow record batches or pandas DataFrames one at a time and
keeps, per column, what it needs and nothing more: counts, sum, mean and M2 (Chan's parallel
update, so two accumulators merge exactly), min, max, a KLL quantile sketch (Apache DataSketches)
for numbers (exact counts for integers of a small span, see ``EXACT_SPAN``), and value counts for
text. Memory is bounded by the sketch size and the number of
distinct text values, not by the row count. :meth:`StatisticsAccumulator.result` gives an immutable
:class:`DatasetStatistics`, which writes and reads ``statistics.json``.

Types are inferred per value, as the managed monitor does: a value is ``Integral`` if it is a number
with no fractional part (``50`` and ``50.0`` alike), ``Fractional`` if it is any other number, and
``String`` if it is not a number. A column is ``String`` if any present value is text, else
``Fractional`` if any is fractional, else ``Integral``; a column with no present value is
``Unknown``.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

from strongroom.core.errors import InvalidInput

InferredType = Literal["Integral", "Fractional", "String", "Unknown"]

KLL_K = 2048
"""The sketch size the managed monitor uses; rank error about 0.14% of n (KS distances of 0.1 are
70 times larger)."""
KLL_C = 2 / 3
"""Apache DataSketches' KLL shrinks each lower level's capacity by this factor; reported as the
sketch's ``c`` parameter."""
DISTRIBUTION_BUCKETS = 10
PRECOMPACT_ROWS = 4 * KLL_K
"""A batch of at least this many values to sketch is sorted and compacted in one step before it
is merged into the column's sketch (see :func:`_compacted`)."""
EXACT_SPAN = 4096
"""A column of integers spanning fewer values than this (codes, ages, months of delay) is counted
exactly instead of sketched: cheaper, and its distribution has no sketch error."""
MAX_CATEGORIES = 1000
"""How many of a text column's most frequent values ``statistics.json`` lists."""

# A number as text (what Arrow's string-to-double cast accepts, minus inf/nan, which count as text).
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


@dataclass(frozen=True)
class TypeCounts:
    """How many present values of a column were integral numbers, other numbers and text."""

    integral: int
    fractional: int
    text: int


@dataclass(frozen=True)
class Sketch:
    """A KLL sketch as ``statistics.json`` carries it: retained items by level (an item at level
    ``i`` stands for ``2**i`` values), and the sketch's ``k``."""

    levels: tuple[tuple[float, ...], ...]
    k: int

    def weighted(self) -> tuple[np.ndarray, np.ndarray]:
        """The retained items, sorted, and their weights."""
        return self._weighted

    @cached_property
    def _weighted(self) -> tuple[np.ndarray, np.ndarray]:
        items = np.fromiter((x for level in self.levels for x in level), dtype=np.float64)
        weights = np.repeat(2.0 ** np.arange(len(self.levels)), [len(level) for level in self.levels])
        order = np.argsort(items, kind="stable")
        return items[order], weights[order]

    def cdf(self, points: np.ndarray) -> np.ndarray:
        """The share of values ``<= x`` for each of ``points``, as the sketch estimates it."""
        items, weights = self.weighted()
        total = weights.sum()
        if total == 0:
            return np.zeros(len(points))
        cumulative = np.concatenate([[0.0], np.cumsum(weights)])
        return cumulative[np.searchsorted(items, points, side="right")] / total


@dataclass(frozen=True)
class FeatureStatistics:
    """One column's statistics. Numeric fields are ``None`` for a ``String`` or ``Unknown`` column,
    text fields ``None`` for a numeric one. ``type_counts`` is known for statistics computed here
    (not for ones read from JSON, whose schema has no place for it)."""

    name: str
    inferred_type: InferredType
    num_present: int
    num_missing: int
    mean: float | None = None
    sum: float | None = None
    std_dev: float | None = None
    min: float | None = None
    max: float | None = None
    sketch: Sketch | None = None
    distinct_count: int | None = None
    categories: Mapping[str, int] | None = None
    type_counts: TypeCounts | None = None
    numeric_present: int | None = None
    """Present values that are numbers (in a ``String`` column, some may be)."""
    num_negative: int | None = None
    """Values below 0 (known for statistics computed here, not for ones read from JSON)."""

    @property
    def completeness(self) -> float:
        """The share of rows with a value (1.0 for an empty dataset)."""
        total = self.num_present + self.num_missing
        return self.num_present / total if total else 1.0

    def buckets(self) -> list[dict[str, float]]:
        """Ten equal-width buckets from min to max, counts estimated from the sketch."""
        if self.sketch is None or self.min is None or self.max is None:
            return []
        n = float(self.numeric_present if self.numeric_present is not None else self.num_present)
        if self.min == self.max:
            return [{"lower_bound": self.min, "upper_bound": self.max, "count": n}]
        edges = np.linspace(self.min, self.max, DISTRIBUTION_BUCKETS + 1)
        shares = self.sketch.cdf(edges[1:])
        shares[-1] = 1.0
        counts = np.diff(np.concatenate([[0.0], shares])) * n
        return [
            {"lower_bound": float(lo), "upper_bound": float(hi), "count": float(c)}
            for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
        ]

    def to_json(self) -> dict[str, Any]:
        """This feature in the managed monitor's ``statistics.json`` shape."""
        common = {"common": {"num_present": self.num_present, "num_missing": self.num_missing}}
        out: dict[str, Any] = {"name": self.name, "inferred_type": self.inferred_type}
        if self.inferred_type == "String":
            categories = sorted((self.categories or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_CATEGORIES]
            out["string_statistics"] = {
                **common,
                "distinct_count": float(self.distinct_count or 0),
                "distribution": {"categorical": {"buckets": [{"value": v, "count": c} for v, c in categories]}},
            }
            return out
        numeric: dict[str, Any] = dict(common)
        if self.sketch is not None:
            numeric.update(mean=self.mean, sum=self.sum, std_dev=self.std_dev, min=self.min, max=self.max)
            numeric["distribution"] = {
                "kll": {
                    "buckets": self.buckets(),
                    "sketch": {
                        "parameters": {"c": KLL_C, "k": float(self.sketch.k)},
                        "data": [list(level) for level in self.sketch.levels],
                    },
                }
            }
        out["numerical_statistics"] = numeric
        return out

    @classmethod
    def from_json(cls, feature: Mapping[str, Any]) -> FeatureStatistics:
        """Read one feature of a ``statistics.json`` (ours or the managed monitor's)."""
        try:
            name = str(feature["name"])
            inferred: InferredType = feature["inferred_type"]
            if "string_statistics" in feature:
                block = feature["string_statistics"]
                buckets = block.get("distribution", {}).get("categorical", {}).get("buckets", [])
                return cls(
                    name=name,
                    inferred_type=inferred,
                    num_present=int(block["common"]["num_present"]),
                    num_missing=int(block["common"]["num_missing"]),
                    distinct_count=int(block.get("distinct_count", len(buckets))),
                    categories={str(b["value"]): int(b["count"]) for b in buckets},
                )
            block = feature["numerical_statistics"]
            kll = block.get("distribution", {}).get("kll")
            sketch = None
            if kll is not None:
                sketch = Sketch(
                    levels=tuple(tuple(float(x) for x in level) for level in kll["sketch"]["data"]),
                    k=int(kll["sketch"]["parameters"]["k"]),
                )
            return cls(
                name=name,
                inferred_type=inferred,
                num_present=int(block["common"]["num_present"]),
                num_missing=int(block["common"]["num_missing"]),
                mean=_opt_float(block.get("mean")),
                sum=_opt_float(block.get("sum")),
                std_dev=_opt_float(block.get("std_dev")),
                min=_opt_float(block.get("min")),
                max=_opt_float(block.get("max")),
                sketch=sketch,
                numeric_present=int(block["common"]["num_present"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"not a statistics.json feature: {exc!r} in {str(feature)[:200]}"
            raise InvalidInput(detail, field="statistics") from exc


@dataclass(frozen=True)
class DatasetStatistics:
    """A dataset's statistics: ``item_count`` rows read, one :class:`FeatureStatistics` per column.

    ``rejected_rows`` counts the rows left out because their number of fields was not the
    expected one (width -> rows); see :mod:`strongroom.monitor.sources`.
    """

    item_count: int
    features: tuple[FeatureStatistics, ...]
    rejected_rows: Mapping[int, int] = field(default_factory=dict)
    expected_width: int | None = None

    def feature(self, name: str) -> FeatureStatistics | None:
        """The named feature's statistics, or ``None``."""
        return next((f for f in self.features if f.name == name), None)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def to_json(self) -> dict[str, Any]:
        """``statistics.json``: ``{"version": 0, "dataset": {"item_count": N}, "features": [...]}``.

        When rows were rejected for their width, ``dataset`` also carries
        ``rows_with_unexpected_width`` (``{"<fields>": rows}``) and ``expected_width``.
        """
        dataset: dict[str, Any] = {"item_count": self.item_count}
        if self.rejected_rows:
            dataset["rows_with_unexpected_width"] = {str(w): n for w, n in sorted(self.rejected_rows.items())}
            dataset["expected_width"] = self.expected_width
        return {"version": 0, "dataset": dataset, "features": [f.to_json() for f in self.features]}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> DatasetStatistics:
        """Read a ``statistics.json`` document (ours or the managed monitor's)."""
        try:
            dataset = document["dataset"]
            features = tuple(FeatureStatistics.from_json(f) for f in document["features"])
            rejected = {int(w): int(n) for w, n in dataset.get("rows_with_unexpected_width", {}).items()}
            return cls(int(dataset["item_count"]), features, rejected, dataset.get("expected_width"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not a statistics.json document: {exc!r}", field="statistics") from exc

    def write(self, path: str | Path) -> Path:
        """Write ``statistics.json`` to ``path`` (a file, or a folder to put it in)."""
        target = Path(path)
        if target.is_dir():
            target = target / "statistics.json"
        target.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return target

    @classmethod
    def read(cls, path: str | Path) -> DatasetStatistics:
        """Read a ``statistics.json`` file."""
        return cls.from_json(json.loads(Path(path).read_text()))


class _Column:
    """One column's running state."""

    def __init__(self, name: str, k: int, missing: int = 0) -> None:
        self.name = name
        self.k = k
        self.missing = missing
        self.count = 0  # present numbers
        self.integral = 0
        self.negative = 0
        self.total = 0.0
        self.mean = 0.0
        self.m2 = 0.0
        self.low = math.inf
        self.high = -math.inf
        self.sketch = kll_doubles_sketch(k)
        self._random = np.random.default_rng()
        # While every number is an integer within EXACT_SPAN, counts[i] is how often offset + i came.
        self.exact = True
        self.offset = 0.0
        self.counts = np.zeros(0, dtype=np.int64)
        self.text: Counter[str] = Counter()

    def add_numbers(self, values: np.ndarray, known_integral: bool = False) -> None:
        """Add float64 values; NaN counts as missing."""
        present = ~np.isnan(values)
        n = int(np.count_nonzero(present))
        self.missing += len(values) - n
        if n == 0:
            return
        v = values if n == len(values) else values[present]
        total = float(v.sum())
        mean = total / n
        # Not np.dot: BLAS threads spin-wait beside Arrow's reader threads and triple the CPU time.
        m2 = float(np.square(v - mean).sum())
        integral = n if known_integral else int(np.count_nonzero(v == np.rint(v)))
        low = float(v.min())
        self._combine(n, total, mean, m2, low, float(v.max()), integral)
        if low < 0:
            self.negative += int(np.count_nonzero(v < 0))
        if self.exact:
            if integral == n and self.high - self.low < EXACT_SPAN:
                self._rebase()
                self.counts += np.bincount((v - self.offset).astype(np.int64), minlength=len(self.counts))
                return
            self._spill()
        self._sketch(v)

    def _sketch(self, values: np.ndarray) -> None:
        """Add values to the KLL sketch; a large batch is compacted first (:func:`_compacted`)."""
        size = len(values)
        if size < PRECOMPACT_ROWS:
            # The binding takes only writable float64 arrays; Arrow's zero-copy views are read-only.
            self.sketch.update(values if values.flags.writeable else values.copy())
            return
        level = ((size - 1) // self.k).bit_length()  # the lowest level holding the batch in k items
        kept = (size >> level) << level
        self.sketch.merge(_compacted(values[:kept], level, self.k, self._random))
        if kept < size:
            self.sketch.update(values[kept:].copy())

    def _combine(self, n: int, total: float, mean: float, m2: float, low: float, high: float, integral: int) -> None:
        # Chan et al.'s pairwise update: exact for any split of the rows.
        count = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / count
        self.m2 += m2 + delta * delta * self.count * n / count
        self.count = count
        self.total += total
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        self.integral += integral

    def add_text(self, values: pa.Array) -> None:
        """Add Arrow strings: numbers among them count as numbers, the rest as text."""
        values = pc.utf8_trim_whitespace(values)
        try:
            numbers = pc.cast(values, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        else:
            self.add_numbers(_to_float(numbers))
            return
        self.missing += values.null_count
        is_number = pc.fill_null(pc.match_substring_regex(values, _NUMBER), False)
        self.add_numbers(_to_float(pc.cast(pc.filter(values, is_number), pa.float64())))
        text = pc.filter(values, pc.and_(pc.invert(is_number), pc.is_valid(values)))
        if len(text):
            counts = pc.value_counts(text)
            self.text.update(
                dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
            )

    def _rebase(self) -> None:
        """Widen the exact counts to cover [low, high]."""
        size = int(self.high - self.low) + 1
        if self.offset == self.low and len(self.counts) == size:
            return
        counts = np.zeros(size, dtype=np.int64)
        if self.counts.any():
            shift = int(self.offset - self.low)
            counts[shift : shift + len(self.counts)] = self.counts
        self.offset, self.counts = self.low, counts

    def _exact_values(self) -> np.ndarray:
        return np.repeat(self.offset + np.arange(len(self.counts), dtype=np.float64), self.counts)

    def _spill(self) -> None:
        """Leave exact counting: feed what was counted into the sketch."""
        if self.counts.any():
            self._sketch(self._exact_values())
        self.exact, self.counts = False, np.zeros(0, dtype=np.int64)

    def merge(self, other: _Column) -> None:
        self.missing += other.missing
        self.text.update(other.text)
        if not other.count:
            return
        self._combine(other.count, other.total, other.mean, other.m2, other.low, other.high, other.integral)
        self.negative += other.negative
        if self.exact and other.exact and self.high - self.low < EXACT_SPAN:
            self._rebase()
            shift = int(other.offset - self.offset)
            self.counts[shift : shift + len(other.counts)] += other.counts
            return
        if self.exact:
            self._spill()
        if other.exact:
            incoming = kll_doubles_sketch(self.k)
            incoming.update(other._exact_values())
            self.sketch.merge(incoming)
        else:
            self.sketch.merge(other.sketch)

    _NUMBERS = ("missing", "count", "integral", "negative", "total", "mean", "m2", "low", "high")

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {key: getattr(self, key) for key in self._NUMBERS}
        if not self.count:  # strict JSON has no infinities
            state.update(low=None, high=None)
        state.update(name=self.name, k=self.k, text=dict(self.text))
        if self.exact:
            state["exact"] = {"offset": self.offset, "counts": self.counts.tolist()}
        else:
            state["sketch"] = base64.b64encode(self.sketch.serialize()).decode()
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> _Column:
        column = cls(str(state["name"]), int(state["k"]))
        for key in cls._NUMBERS:
            if state[key] is not None:
                setattr(column, key, type(getattr(column, key))(state[key]))
        column.text = Counter({str(v): int(n) for v, n in state["text"].items()})
        if "exact" in state:
            column.offset = float(state["exact"]["offset"])
            column.counts = np.asarray(state["exact"]["counts"], dtype=np.int64)
        else:
            column.exact = False
            column.sketch = kll_doubles_sketch.deserialize(base64.b64decode(state["sketch"]))
        return column

    def result(self) -> FeatureStatistics:
        text = sum(self.text.values())
        present = self.count + text
        counts = TypeCounts(self.integral, self.count - self.integral, text)
        inferred: InferredType
        if text:
            inferred = "String"
        elif self.count:
            inferred = "Integral" if self.integral == self.count else "Fractional"
        else:
            inferred = "Unknown"
        base = FeatureStatistics(
            name=self.name,
            inferred_type=inferred,
            num_present=present,
            num_missing=self.missing,
            type_counts=counts,
            numeric_present=self.count,
            num_negative=self.negative,
        )
        numeric: dict[str, Any] = {}
        if self.count:
            numeric = {
                "mean": self.mean,
                "sum": self.total,
                "std_dev": math.sqrt(max(self.m2, 0.0) / self.count),
                "min": self.low,
                "max": self.high,
                "sketch": _exact_levels(self.offset, self.counts, self.k)
                if self.exact
                else _sketch_levels(self.sketch, self.k),
            }
        if inferred == "String":
            return replace(base, distinct_count=len(self.text), categories=dict(self.text), **numeric)
        return replace(base, **numeric)


class StatisticsAccumulator:
    """Running statistics over batches; merge two to combine windows or partitions.

    Columns are matched by name; a column that appears in a later batch counts as missing in the
    earlier rows, and one absent from a batch counts as missing in that batch's rows.
    """

    def __init__(self, names: Sequence[str] = (), *, k: int = KLL_K) -> None:
        self.k = k
        self.rows = 0
        self.rejected: Counter[int] = Counter()
        self.expected_width: int | None = None
        self._columns: dict[str, _Column] = {name: _Column(name, k) for name in names}

    def update(self, batch: pa.RecordBatch | pa.Table | pd.DataFrame) -> None:
        """Add one batch of rows."""
        if isinstance(batch, pd.DataFrame):
            batch = _from_pandas(batch)
        rows = batch.num_rows
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            state = self._columns.get(name)
            if state is None:
                state = self._columns[name] = _Column(name, self.k, missing=self.rows)
            _add_column(state, column)
        seen = set(batch.schema.names)
        for name, state in self._columns.items():
            if name not in seen:
                state.missing += rows
        self.rows += rows

    def reject(self, width: int, rows: int = 1) -> None:
        """Count rows left out because they had ``width`` fields."""
        self.rejected[width] += rows

    def merge(self, other: StatisticsAccumulator) -> StatisticsAccumulator:
        """Fold ``other`` into this accumulator (in place) and return it."""
        for name in self._columns.keys() - other._columns.keys():
            self._columns[name].missing += other.rows
        for name, state in other._columns.items():
            mine = self._columns.get(name)
            if mine is None:
                mine = self._columns[name] = _Column(name, self.k, missing=self.rows)
            mine.merge(state)
        self.rows += other.rows
        self.rejected.update(other.rejected)
        self.expected_width = self.expected_width or other.expected_width
        return self

    def to_state(self) -> dict[str, Any]:
        """The running state as a JSON-safe document (sketches in their own binary format, base64),
        to merge partitions computed in other processes. Never pickled."""
        return {
            "k": self.k,
            "rows": self.rows,
            "rejected": {str(w): n for w, n in self.rejected.items()},
            "expected_width": self.expected_width,
            "columns": [state.state() for state in self._columns.values()],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> StatisticsAccumulator:
        """Rebuild an accumulator from :meth:`to_state`'s document.

        Raises:
            InvalidInput: the document is not an accumulator state.
        """
        try:
            accumulator = cls(k=int(state["k"]))
            accumulator.rows = int(state["rows"])
            accumulator.rejected = Counter({int(w): int(n) for w, n in state["rejected"].items()})
            accumulator.expected_width = state["expected_width"]
            for column in state["columns"]:
                accumulator._columns[str(column["name"])] = _Column.from_state(column)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise InvalidInput(f"not a statistics accumulator state: {exc!r}", field="state") from exc
        return accumulator

    def result(self) -> DatasetStatistics:
        """The statistics so far."""
        return DatasetStatistics(
            item_count=self.rows,
            features=tuple(state.result() for state in self._columns.values()),
            rejected_rows=dict(self.rejected),
            expected_width=self.expected_width,
        )


def compute_statistics(
    batches: Iterable[pa.RecordBatch | pa.Table | pd.DataFrame], *, k: int = KLL_K
) -> DatasetStatistics:
    """Statistics of a stream of Arrow batches or DataFrames, in one pass."""
    accumulator = StatisticsAccumulator(k=k)
    for batch in batches:
        accumulator.update(batch)
    return accumulator.result()


def _add_column(state: _Column, column: pa.Array | pa.ChunkedArray) -> None:
    chunks: Iterator[pa.Array] = iter(column.chunks) if isinstance(column, pa.ChunkedArray) else iter([column])
    for chunk in chunks:
        kind = chunk.type
        if pa.types.is_dictionary(kind):
            chunk = chunk.dictionary_decode()
            kind = chunk.type
        if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
            state.add_numbers(_to_float(pc.cast(chunk, pa.float64())), known_integral=True)
        elif kind == pa.float64():
            state.add_numbers(_to_float(chunk))
        elif pa.types.is_floating(kind) or pa.types.is_decimal(kind) or pa.types.is_null(kind):
            state.add_numbers(_to_float(pc.cast(chunk, pa.float64())))
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            state.add_text(chunk)
        else:  # dates, times, binary...: compared as their text
            state.add_text(pc.cast(chunk, pa.string()))


def _to_float(array: pa.Array) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=np.float64)


def _from_pandas(frame: pd.DataFrame) -> pa.RecordBatch:
    columns = {}
    for name, series in frame.items():
        try:
            columns[str(name)] = pa.array(series, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: compare them as text
            text = series.astype(str).where(series.notna(), None)
            columns[str(name)] = pa.array(text, type=pa.string(), from_pandas=True)
    return pa.RecordBatch.from_pydict(columns)


_POWERS_OF_THREE = tuple(3**i for i in range(31))


def _compacted(values: np.ndarray, level: int, k: int, random: np.random.Generator) -> kll_doubles_sketch:
    """A KLL sketch of ``values`` (``q * 2**level`` of them, ``q <= k``) holding ``q`` items at ``level``.

    What KLL's own compactions would do, in one vectorised step: sort, then keep every
    ``2**level``-th value from a random offset below ``2**level``. Each kept item stands for the
    ``2**level`` values of its stride, so any rank is off by less than ``2**level`` (under
    ``2/k`` of the batch, about 0.1% at k=2048) and is unbiased over the random offset; KLL's
    update adds the same kind of error value by value at about five times the cost. The result
    is built in DataSketches' serialised form (version 1, full sketch: levels below ``level``
    empty) so that the library's own merge folds it in; ``tests/unit/monitor`` checks the form
    against the installed library.
    """
    ordered = np.sort(values)
    stride = 1 << level
    items = np.ascontiguousarray(ordered[int(random.integers(stride)) :: stride], dtype="<f8")
    levels = level + 1
    capacity = sum(max(8, _level_capacity(k, levels - height - 1)) for height in range(levels))
    head = struct.pack("<BBBBHBBQHBB", 5, 1, 15, 0, k, 8, 0, len(items) << level, k, levels, 0)
    offsets = struct.pack(f"<{levels}I", *([capacity - len(items)] * levels))
    bounds = struct.pack("<dd", float(ordered[0]), float(ordered[-1]))
    return kll_doubles_sketch.deserialize(head + offsets + bounds + items.tobytes())


def _level_capacity(k: int, depth: int) -> int:
    """DataSketches' KLL capacity of the level ``depth`` below the top: round(k * (2/3)**depth)."""
    return (((2 * k) << depth) // _POWERS_OF_THREE[depth] + 1) >> 1


def _exact_levels(offset: float, counts: np.ndarray, k: int) -> Sketch:
    """Exact counts in the sketch's form: a value sits at level i for each bit i of its count."""
    present = np.flatnonzero(counts)
    values, weights = offset + present.astype(np.float64), counts[present]
    depth = int(weights.max()).bit_length() if len(weights) else 0
    return Sketch(tuple(tuple(values[(weights >> i) & 1 == 1].tolist()) for i in range(depth)), k)


def _sketch_levels(sketch: kll_doubles_sketch, k: int) -> Sketch:
    """The sketch's retained items by level, read from its serialised form.

    Not from iterating the sketch: the binding's iterator reports weight 1 for every item of the
    lowest non-empty level when level 0 is empty (as merging a batch from :func:`_compacted` into
    an empty sketch leaves it), so the weights would no longer add up to the count.
    """
    if sketch.is_empty():
        return Sketch((), k)
    if sketch.n == 1:  # serialised in the short single-item form
        return Sketch(((float(sketch.get_min_value()),),), k)
    data = sketch.serialize()
    preamble, version, family = struct.unpack_from("<BBB", data, 0)
    if (preamble, version, family) != (5, 1, 15):
        raise RuntimeError(f"unexpected KLL serialisation {(preamble, version, family)}: datasketches changed")
    depth = data[18]
    offsets = np.frombuffer(data, dtype="<u4", count=depth, offset=20).astype(np.int64)
    items = np.frombuffer(data, dtype="<f8", offset=20 + 4 * depth + 16)
    bounds = np.append(offsets - offsets[0], len(items))
    return Sketch(tuple(tuple(items[bounds[i] : bounds[i + 1]].tolist()) for i in range(depth)), k)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
