"""Parquet through pyarrow (the `parquet` extra), one row group per page.

Typed columns: text as UTF-8 strings, counts as int64, money and durations as float64,
flags as booleans, times as `timestamp[us, UTC]` (with `NAME_unix` float64 beside each),
JSON columns as strings of JSON text; every column nullable. zstd-compressed, which
pyarrow, DuckDB, Spark, BigQuery and Snowflake read. The file's key-value metadata holds
the export's manifest under `sluicegate.export` (JSON: source, window, filters, the
cursor to continue from, rows), written in the footer once the last page is in.

The writer writes into a sink that hands its bytes over after each page, so nothing
accumulates but the footer's row-group index.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from sluicegate.export.columns import ExportColumn, Kind, canonical_json, micros

_TYPES: dict[Kind, Any] = {
    Kind.STRING: pa.string(),
    Kind.INTEGER: pa.int64(),
    Kind.FLOAT: pa.float64(),
    Kind.BOOLEAN: pa.bool_(),
    Kind.JSON: pa.string(),
    Kind.TIMESTAMP: pa.timestamp("us", tz="UTC"),
}


_CONVERT: dict[Kind, Callable[[Any], Any]] = {Kind.JSON: canonical_json, Kind.TIMESTAMP: micros}


class _Sink:
    """A write-only file for pyarrow whose bytes are taken after each page."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data


class ParquetEncoder:
    def __init__(self, columns: tuple[ExportColumn, ...]) -> None:
        self._columns = columns
        self._schema = pa.schema(
            [
                pa.field(c.name, _TYPES[c.kind], metadata={"sluicegate.kind": c.kind.value})
                for c in columns
            ]
        )
        self._width = 1 + max(c.source for c in columns)
        self._sink = _Sink()
        self._writer: Any = None

    def begin(self) -> bytes:
        self._writer = pq.ParquetWriter(self._sink, self._schema, compression="zstd")
        return self._sink.take()

    def page(self, rows: Sequence[Sequence[Any]]) -> bytes:
        by_column = list(zip(*rows, strict=True)) if rows else [()] * self._width
        arrays = []
        for column in self._columns:
            values: Sequence[Any] = by_column[column.source]
            convert = _CONVERT.get(column.kind)
            if convert is not None:
                values = [None if v is None else convert(v) for v in values]
            arrays.append(pa.array(values, type=_TYPES[column.kind]))
        table = pa.Table.from_arrays(arrays, schema=self._schema)
        self._writer.write_table(table, row_group_size=max(len(rows), 1))
        return self._sink.take()

    def end(self, manifest: dict[str, Any]) -> bytes:
        self._writer.add_key_value_metadata(
            {"sluicegate.export": orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS).decode()}
        )
        self._writer.close()
        return self._sink.take()


def encoder(columns: tuple[ExportColumn, ...]) -> ParquetEncoder:
    return ParquetEncoder(columns)
