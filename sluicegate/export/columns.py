"""A table's columns as an export writes them, each with a kind that says how.

The kinds come from the schema's column types, so a column added to `db/schema.py` is
exported without a change here. A time column (float unix seconds in the database) is
written twice: `NAME` as a timestamp (ISO 8601 in UTC in CSV, a UTC timestamp in Parquet)
and `NAME_unix` as the float, so a reader can take whichever its loader wants and the
exact value survives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import orjson
from sqlalchemy import JSON, Boolean, Float, Integer, String, Table


class Kind(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    FLOAT = "float"
    BOOLEAN = "boolean"
    JSON = "json"  # written as JSON text (keys sorted, so both databases write the same)
    TIMESTAMP = "timestamp"  # from float unix seconds, to the microsecond


@dataclass(frozen=True, slots=True)
class ExportColumn:
    name: str
    kind: Kind
    source: int  # position of the value in a row read from the table


def export_columns(table: Table, time_columns: tuple[str, ...]) -> tuple[ExportColumn, ...]:
    columns: list[ExportColumn] = []
    for position, column in enumerate(table.columns):
        if column.name in time_columns:
            columns.append(ExportColumn(column.name, Kind.TIMESTAMP, position))
            columns.append(ExportColumn(f"{column.name}_unix", Kind.FLOAT, position))
        else:
            columns.append(ExportColumn(column.name, _kind(column.type), position))
    return tuple(columns)


def _kind(sql_type: object) -> Kind:
    # Boolean before Integer, JSON before String: the narrower type decides.
    if isinstance(sql_type, Boolean):
        return Kind.BOOLEAN
    if isinstance(sql_type, JSON):
        return Kind.JSON
    if isinstance(sql_type, Integer):
        return Kind.INTEGER
    if isinstance(sql_type, Float):
        return Kind.FLOAT
    if isinstance(sql_type, String):
        return Kind.STRING
    raise TypeError(f"no export kind for column type {sql_type!r}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros(seconds: float) -> int:
    """Unix seconds as whole microseconds (what both formats write)."""
    return round(seconds * 1_000_000)


def iso_utc(seconds: float) -> str:
    """`2026-12-07T14:30:00.123456Z`: ISO 8601, UTC, to the microsecond."""
    moment = _EPOCH + timedelta(microseconds=micros(seconds))
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def canonical_json(text: str) -> str:
    """A JSON column's text as read (each database writes it its own way) in one form:
    compact, keys sorted."""
    return orjson.dumps(orjson.loads(text), option=orjson.OPT_SORT_KEYS).decode()
