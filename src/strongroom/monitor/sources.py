"""Reading a baseline or a window from CSV, and the rule that lines a window's columns up with the
baseline's.

**The column rule.**

- A *baseline* is CSV with a header row (the workshop's ``train_headers``: ``Label`` then the 23
  features); its columns are named by the header.
- A *window* of captured requests is headerless CSV rows holding only the model's features. Field
  ``i`` of a row is ``feature_names[i]``: the model's feature names in the order the model takes
  them. By default (:meth:`ColumnRule.from_baseline`) those are the baseline's columns in the
  baseline's order, less the ones declared *excluded* (the label, which callers do not send).
- A row whose number of fields is not the number of feature names is **not read**: its values are
  never shifted onto other names. The window counts such rows by width, and the check reports the
  features those rows lack (``missing_column_check``) or the fields no feature name covers
  (``extra_column_check``, named ``_c<position>``, counted from 0).
- A window with a header (or a DataFrame) is matched by name: a baseline column that is neither in
  the window nor excluded is a ``missing_column_check``; a window column the baseline does not have
  is an ``extra_column_check``. Excluded columns are never compared.
"""

from __future__ import annotations

import io
import queue
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from strongroom.core.errors import InvalidInput
from strongroom.monitor.statistics import KLL_K, DatasetStatistics, StatisticsAccumulator

CsvSource = str | Path | bytes
BLOCK_SIZE = 4 << 20
"""Bytes of CSV parsed at a time; peak memory grows with it (a few blocks are in flight)."""

_FAILED_COLUMN = re.compile(r"In CSV column #(\d+)")


@dataclass(frozen=True)
class ColumnRule:
    """How a headerless window's fields map onto names: field ``i`` is ``feature_names[i]``;
    ``excluded`` names baseline columns the model does not receive (never compared)."""

    feature_names: tuple[str, ...]
    excluded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.feature_names:
            raise InvalidInput("the model needs at least one feature name", field="feature_names")
        if len(set(self.feature_names)) != len(self.feature_names):
            raise InvalidInput("feature names must be unique", field="feature_names")
        overlap = set(self.feature_names) & set(self.excluded)
        if overlap:
            raise InvalidInput(f"{sorted(overlap)} cannot be both a feature and excluded", field="excluded")

    @classmethod
    def from_baseline(cls, baseline: DatasetStatistics, excluded: Sequence[str] = ("Label",)) -> ColumnRule:
        """The baseline's columns in its order, less ``excluded`` (those the baseline does not have
        are ignored, so the default ``("Label",)`` fits a baseline without a label too)."""
        dropped = tuple(name for name in excluded if name in baseline.names)
        return cls(tuple(name for name in baseline.names if name not in dropped), dropped)


def read_csv_statistics(
    source: CsvSource,
    *,
    feature_names: Sequence[str] | None = None,
    k: int = KLL_K,
    block_size: int = BLOCK_SIZE,
) -> DatasetStatistics:
    """Statistics of a CSV file (a path) or CSV bytes, streamed in blocks of ``block_size``.

    With ``feature_names=None`` the first row is the header (a baseline). With ``feature_names``
    the rows are headerless and field ``i`` is ``feature_names[i]`` (a window of captured
    requests); rows of another width are counted, not read (see the module's column rule).

    Raises:
        InvalidInput: the source is not readable CSV.
    """
    names = list(feature_names) if feature_names is not None else None
    header = _header(source, min(block_size, 1 << 20)) if names is None else names
    text: set[str] = set()
    for _ in range(len(header) + 1):
        accumulator = StatisticsAccumulator(header, k=k)
        accumulator.expected_width = len(header)

        def invalid(row: Any, accumulator: StatisticsAccumulator = accumulator) -> str:
            accumulator.reject(int(row.actual_columns))
            return "skip"

        try:
            reader = _open(source, header, names is None, text, block_size, invalid)
            for batch in _prefetch(reader):
                accumulator.update(batch)
        except pa.ArrowInvalid as exc:
            # A value that is not a number in a column read as numbers: read that column as text
            # from the start (columns are numbers unless they prove otherwise: the fast path).
            found = _FAILED_COLUMN.search(str(exc))
            if found is None or int(found.group(1)) >= len(header) or header[int(found.group(1))] in text:
                raise InvalidInput(f"could not read the CSV: {exc}", field="dataset") from exc
            text.add(header[int(found.group(1))])
            continue
        return accumulator.result()
    raise AssertionError("unreachable: each retry reads one more column as text")


def _input(source: CsvSource) -> Any:
    if isinstance(source, bytes | bytearray | memoryview):
        return io.BytesIO(bytes(source))
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"no CSV file at {str(path)!r}", field="dataset")
    return str(path)


def _header(source: CsvSource, block_size: int) -> list[str]:
    try:
        reader = pacsv.open_csv(
            _input(source),
            read_options=pacsv.ReadOptions(block_size=block_size),
            parse_options=pacsv.ParseOptions(invalid_row_handler=lambda row: "skip"),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise InvalidInput("the baseline CSV is empty: it needs a header row", field="dataset") from exc
        raise InvalidInput(f"could not read the CSV header: {exc}", field="dataset") from exc
    names = list(reader.schema.names)
    reader.close()
    if len(set(names)) != len(names):
        raise InvalidInput(f"the CSV header repeats a column name: {names}", field="dataset")
    return names


def _open(
    source: CsvSource, names: list[str], header: bool, text: set[str], block_size: int, invalid: Any
) -> Iterator[pa.RecordBatch]:
    read = pacsv.ReadOptions(block_size=block_size, column_names=None if header else names)
    convert = pacsv.ConvertOptions(
        column_types={n: (pa.string() if n in text else pa.float64()) for n in names}, strings_can_be_null=True
    )
    try:
        reader = pacsv.open_csv(
            _input(source),
            read_options=read,
            convert_options=convert,
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return iter(())
        raise
    return iter(reader)


def _prefetch(batches: Iterator[pa.RecordBatch], depth: int = 2) -> Iterator[pa.RecordBatch]:
    """Parse the next blocks in a thread (Arrow releases the GIL) while the caller sketches this one."""
    slots: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    worker = threading.Thread(target=produce, name="monitor-csv-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
